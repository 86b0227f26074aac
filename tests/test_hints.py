"""Hints teach without giving the line (issue 26): no failure message of the banks quotes a line of
the reference solution that the submission itself lacks.

Every edit of tests/bank (mutants, mistakes, alternatives) is loaded IN-PROCESS (``LocalSubmission``
runs the very checks the grader runs, hidden ones against the reference too) and each failure
message is compared with the reference's solution lines: the code between ``### BEGIN SOLUTION``
and ``### END SOLUTION`` in solutions/gpt_lab.ipynb, whitespace, comments and ``self.`` left out
(a hint that writes ``idx[:, -block_size:]`` gives the line as surely as one with ``self.``),
trivial lines left out, and so are the lines the submission holds itself: quoting the student's
own line back is fine, writing the missing one is not. Besides whole lines, the right-hand side
of an assignment counts (a message that prints ``x + self.sa(self.ln1(x))`` gives the line).
"""

from __future__ import annotations

import ast
import re

import pytest

from tests.bank import banks
from tests.conftest import EditError, read_reference, write_edit

# the parts whose checks and messages the verdicts engineer (issue 22) rewrites: a line that their
# messages still give is a known failure until that work lands (strict xfail: it flips then)
OTHERS = {"feedforward", "decoder_block", "gpt", "train", "estimate_loss"}
MIN_CHARS = 10  # shorter pieces ("x = x", "T = 8", "out") teach nothing a message must hide


def _norm(code: str) -> str:
    """Whitespace, ``self.`` and the kind of quotes left out: how a hint could write the same code."""
    return re.sub(r"\s+", "", code).replace("self.", "").replace('"', "'").rstrip(";:")


def _code_pieces(line: str) -> set[str]:
    """A line of code, normalised, with every compound expression in it (an assignment's right-hand side,
    a call, its arguments, a slice, a sum) and each method call without its receiver
    (``masked_fill(tril[:T, :T] == 0, ...)`` gives ``wei.masked_fill(...)`` away)."""
    line = line.split("  #", 1)[0].strip()
    found = {_norm(line)}
    tree = None
    for attempt in (line, line + " pass", line.rstrip(",")):
        try:
            tree = ast.parse(attempt)
            break
        except SyntaxError:
            continue
    for node in ast.walk(tree) if tree is not None else ():
        if isinstance(node, (ast.Name, ast.Constant, ast.Attribute)) or (
                isinstance(node, ast.UnaryOp) and isinstance(node.operand, (ast.Name, ast.Constant, ast.Attribute))):
            continue  # a name or a number ("-block_size") is a word of the lab, not a line of it
        if isinstance(node, ast.expr):
            found.add(_norm(ast.unparse(node)))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                args = [ast.unparse(a) for a in node.args] + [ast.unparse(k) for k in node.keywords]
                found.add(_norm(f"{node.func.attr}({', '.join(args)})"))
    return {p for p in found if len(p) >= MIN_CHARS}



def solution_lines(nb) -> set[str]:
    """The normalised pieces of every line between BEGIN/END SOLUTION in the notebook's code cells."""
    found: set[str] = set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        inside = False
        for line in cell.source.splitlines():
            s = line.strip()
            if s.startswith("### BEGIN SOLUTION"):
                inside = True
            elif s.startswith("### END SOLUTION"):
                inside = False
            elif inside:
                found |= _code_pieces(s)
    return found


def _all_lines(path) -> set[str]:
    """Normalised pieces of every line of a submission (a notebook or a .py file)."""
    import nbformat

    if str(path).endswith(".ipynb"):
        text = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
    else:
        text = path.read_bytes().decode("utf-8", "replace")
    pieces: set[str] = set()
    for line in text.splitlines():
        pieces |= _code_pieces(line)
    return pieces


def handout_text() -> str:
    """The student notebook's whole text (given code, docstrings, markdown), normalised: what it shows is
    no secret a message could give away."""
    import nbformat

    from tests.conftest import ASSIGNMENT

    return _norm("\n".join(c.source for c in nbformat.read(ASSIGNMENT, as_version=4).cells))


def gather_messages(path, only: tuple[str, ...] = ()) -> list[tuple[str, str, str]]:
    """[(part, check, message)] of every failing check, visible and hidden, of the submission at
    ``path`` (of the parts ``only``, or all): the shared in-process bank runner's results.json
    (tests/bank/inprocess.py: graded once per content, so the bank's in-process test and this one
    share every grading)."""
    from tests.bank import inprocess

    data = inprocess.grade(path)
    return [((t.get("tags") or [""])[0], t["name"], str(t.get("output", ""))) for t in data["tests"]
            if t.get("status") != "passed" and (not only or (t.get("tags") or [""])[0] in only)]


def given_lines(message: str, solution: set[str], own: set[str], shown: str = "") -> list[str]:
    """The solution pieces that ``message`` writes out, that the submission does not hold and the
    handout's text (``shown``, normalised) does not show."""
    text = _norm(message.replace("`", " "))
    return sorted(p for p in solution - own if p in text and p not in shown)


# an edit loses points in its own part only (tests/test_mutants.py holds every bank to that), so its
# part's checks give all its messages; alternatives earn full marks (tests/test_alternatives.py): no message
# edits whose messages (in the parts of OTHERS) still give a line today: a known failure until issue 22 lands,
# strict, so that each one flips to a failure to remove from here the day its messages are fixed
KNOWN_IN_OTHERS: set[str] = set()


def _bank() -> list:
    seen, out = set(), []
    for edit in [e for _, e in banks.all_cases()]:
        # a mistake that repeats a mutant's edit gives the same messages
        key = (edit.cell_grade_id, edit.old, edit.new) if hasattr(edit, "old") else edit.id
        if key in seen:
            continue
        seen.add(key)
        marks = ()
        if edit.id in KNOWN_IN_OTHERS:
            assert edit.part in OTHERS, f"{edit.id}: a known failure outside issue 22's parts"
            marks = pytest.mark.xfail(strict=True, reason="issue 22 (verdicts) rewrites these messages")
        out.append(pytest.param(edit, id=edit.id, marks=marks))
    return out


BANK = _bank()


@pytest.fixture(scope="module")
def reference():
    return read_reference()


def test_the_comparison_catches_a_message_that_gives_the_line(reference):
    solution = solution_lines(reference)
    line = "x = x + self.sa(self.ln1(x))"
    assert _norm(line) in solution
    assert {_norm(line), "x+sa(ln1(x))"} <= set(given_lines("write `x = x + sa(ln1(x))` here", solution, set()))
    # a piece of a line, in other quotes and without its receiver, is caught too
    assert given_lines("Hint: masked_fill(tril[:T, :T] == 0, float('-inf')) first", solution, set())
    assert given_lines("each step must feed idx[:, -block_size:] to the model", solution, set())
    assert given_lines("the residual around attention is missing", solution, set()) == []
    # the student's own line quoted back, or what the handout itself shows, gives nothing away
    assert given_lines("your line x = x + self.sa(self.ln1(x)) adds", solution, _code_pieces(line)) == []
    shown = handout_text()
    assert _norm("torch.arange(T, device=idx.device)") in shown
    assert not given_lines("use torch.arange(T, device=idx.device)", solution, set(), shown)


@pytest.mark.parametrize("edit", BANK)
def test_no_message_gives_a_solution_line(edit, reference, tmp_path):
    try:
        path = write_edit(edit, tmp_path, reference)
    except EditError as exc:
        pytest.skip(str(exc))
    solution, own, shown = solution_lines(reference), _all_lines(path), handout_text()
    bad = [(part, name, lines) for part, name, message in gather_messages(path, (edit.part,))
           if (lines := given_lines(message, solution, own, shown))]
    assert not bad, "messages that give a solution line: " + "; ".join(
        f"[{part}] {name}: {lines}" for part, name, lines in bad)
