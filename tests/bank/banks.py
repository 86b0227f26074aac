"""The banks of edits of the reference, and what each kind of edit must get. The one list every bank
test reads (in process: tests/test_bank_inprocess.py; end to end: tests/test_mutants.py,
test_alternatives.py, test_mistakes.py; both ways: tests/test_bank_drift.py).

A new bank is one line in ``BANKS``: its module, the list it exports, and its kind:
- ``mutant``: loses points in its own part and only there; its part's message holds ``expect``;
- ``alternative``: full marks in every part;
- ``do_nothing``: keeps its shapes, skips its work: at most a quarter of its part, nothing lost elsewhere;
- ``mistake`` (tests/bank/mistakes.py's ``Mistake``): a mutant whose part's message holds its ``hint``,
  reported by exactly one visible check (``check``) when ``visible``, the other failing visible checks
  saying "not measured" and naming that check.

The rules are functions returning what is wrong (``[]``: nothing), so that the in-process and the
end-to-end tests apply the very same ones to their grades.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

# GPTLAB_BANK=full also judges the extra mutants and alternatives (ALL_MUTANTS, ALL_ALTERNATIVES)
FULL_BANK = os.environ.get("GPTLAB_BANK", "") == "full"


@dataclass(frozen=True)
class Bank:
    name: str
    module: str
    attr: str  # the list of edits the module exports
    kind: str  # mutant | alternative | mistake
    full_attr: str = ""  # the longer list GPTLAB_BANK=full judges ("" = the same)

    def cases(self, full: bool = FULL_BANK) -> list:
        module = importlib.import_module(self.module)
        return list(getattr(module, self.full_attr if full and self.full_attr else self.attr))


BANKS = [
    Bank("mutants", "tests.bank.mutants", "MUTANTS", "mutant", full_attr="ALL_MUTANTS"),
    Bank("alternatives", "tests.bank.alternatives", "ALTERNATIVES", "alternative", full_attr="ALL_ALTERNATIVES"),
    Bank("mistakes", "tests.bank.mistakes", "MISTAKES", "mistake"),
    Bank("do_nothing", "tests.bank.do_nothing", "DO_NOTHING", "do_nothing"),
    Bank("blind_spots", "tests.bank.blind_spots", "BLIND_SPOTS", "mutant"),
    Bank("now_accepted", "tests.bank.blind_spots", "NOW_ACCEPTED", "alternative"),
]


def bank(name: str) -> Bank:
    return next(b for b in BANKS if b.name == name)


def all_cases(full: bool = FULL_BANK) -> list[tuple[Bank, object]]:
    """(bank, edit) for every case of every bank."""
    return [(b, edit) for b in BANKS for edit in b.cases(full)]


# -- reading a grade ------------------------------------------------------------------------------
# A grade is a grade_class result (status, parts, max, json) or tests.bank.inprocess.result's
# (status, parts, max, data): the same fields, results.json read from its file or held.

def data_of(result: dict) -> dict:
    if "data" in result:
        return result["data"]
    return json.loads(Path(result["json"]).read_text())


def same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=0, abs_tol=1e-6)


def failed_tests(result: dict, part: str | None = None) -> list[dict]:
    return [t for t in data_of(result).get("tests", [])
            if t.get("status") != "passed" and (part is None or (t.get("tags") or [""])[0] == part)]


def failures(result: dict, part: str | None = None, limit: int = 3) -> str:
    """The grader's messages for the failed checks (of one part), for assertion messages."""
    try:
        tests = failed_tests(result, part)
    except (OSError, ValueError, KeyError):
        return result.get("message", "")
    lines = [f"{t['name']}: {str(t.get('output', '')).splitlines()[0] if t.get('output') else ''}" for t in tests]
    more = f" (+{len(lines) - limit} more)" if len(lines) > limit else ""
    return "; ".join(lines[:limit]) + more or result.get("message", "")


def part_messages(result: dict, part: str) -> list[str]:
    """The full messages of a part's failed checks."""
    return [str(t.get("output", "")) for t in failed_tests(result, part)]


NOT_MEASURED = "not measured:"


def check_of(test: dict) -> str:
    """A check's name in results.json without its part and parameters: "head: causal [x]" -> "causal"."""
    name = str(test.get("name", "")).split(": ", 1)[-1]
    return re.sub(r" \[.*\]$", "", name)


# -- the rules ------------------------------------------------------------------------------------

def _graded(edit, r: dict) -> list[str]:
    # "hung": graded, some of its code ran past its limit (a mutant's infinite loop is a mutant's answer);
    # "tampered": graded, and flagged because the case edits a locked cell (the given MultiHeadAttention)
    from tests.bank import edits_locked_cell

    locked = edits_locked_cell(edit)
    if r.get("status") not in ("ok", "hung") + (("tampered",) if locked else ()):
        return [f"{edit.id} ({edit.why}) was not graded: {r.get('status')}: {r.get('message')}"]
    if locked and "json" in r and r.get("status") != "tampered":  # graded by the class tools, which compare cells
        return [f"{edit.id} edits the locked cell {getattr(edit, 'cell_grade_id', '')} but was not flagged "
                f"tampered: {r.get('status')}"]
    return []


def mutant_problems(edit, r: dict, ref: dict) -> list[str]:
    """A mutant loses points in its own part and only there; its part says ``expect``."""
    if edit.part not in ref["parts"]:
        return [f"mutant {edit.id}: unknown part {edit.part!r}"]
    problems = _graded(edit, r)
    if problems:
        return problems
    wrong = [p for p in ref["parts"] if p != edit.part and not same(r["parts"][p], ref["parts"][p])]
    if wrong:
        problems.append(f"{edit.id} ({edit.why}) lost points in {', '.join(wrong)}, expected only in {edit.part}: "
                        + " | ".join(f"{p} {r['parts'][p]:g}/{ref['parts'][p]:g}: {failures(r, p)}" for p in wrong))
    if not r["parts"][edit.part] < ref["parts"][edit.part] - 1e-9:
        problems.append(f"{edit.id} was not caught by part {edit.part} ({edit.why}): "
                        f"{r['parts'][edit.part]:g}/{ref['parts'][edit.part]:g}")
    expect = getattr(edit, "expect", "")
    if expect and not any(expect in m for m in part_messages(r, edit.part)):
        problems.append(f"{edit.id} ({edit.why}): no message of part {edit.part} says {expect!r}: "
                        f"{part_messages(r, edit.part)}")
    return problems


def alternative_problems(edit, r: dict, ref: dict) -> list[str]:
    """A valid alternative keeps every point."""
    problems = _graded(edit, r)
    if problems:
        return problems
    lost = [p for p in ref["parts"] if not same(r["parts"][p], ref["max"][p])]
    if lost:
        problems.append(f"alternative {edit.id} ({edit.why}, part {edit.part}) was penalised in {', '.join(lost)}: "
                        + " | ".join(f"{p} {r['parts'][p]:g}/{ref['max'][p]:g}: {failures(r, p)}" for p in lost))
    return problems


def mistake_problems(edit, r: dict, ref: dict) -> list[str]:
    """A typical mistake: a mutant whose part gives its hint, seen by a visible check exactly when the
    bank says so, reported by ONE visible check; the others that fail say "not measured" and name it."""
    problems = _graded(edit, r)
    if problems:
        return problems
    wrong = [p for p in ref["parts"] if p != edit.part and not same(r["parts"][p], ref["parts"][p])]
    if wrong:
        problems.append(f"{edit.id} ({edit.why}) lost points in {wrong} too: {failures(r)}")
    if not r["parts"][edit.part] < ref["parts"][edit.part] - 1e-9:
        return problems + [f"{edit.id} ({edit.why}) was not caught"]
    failed = failed_tests(r, edit.part)
    messages = [str(t.get("output", "")) for t in failed]
    if not any(edit.hint in m for m in messages):
        problems.append(f"{edit.id} ({edit.why}): no message of part {edit.part} says {edit.hint!r}: {messages}")
    seen = any(t.get("visibility") == "visible" for t in failed)
    if seen != edit.visible:
        problems.append(f"{edit.id} ({edit.why}): the bank says visible={edit.visible}, but a visible check "
                        f"{'caught' if seen else 'did not catch'} it: {[t['name'] for t in failed]}")
    visible = [t for t in failed if t.get("visibility") == "visible"]
    reporting = {check_of(t) for t in visible if not str(t.get("output", "")).startswith(NOT_MEASURED)}
    if reporting != ({edit.check} if edit.visible else set()):
        problems.append(f"{edit.id} ({edit.why}): expected one visible check to report it ({edit.check!r}), "
                        f"these did: {sorted(reporting)}: {failures(r, edit.part)}")
    if edit.visible:
        own = [str(t.get("output", "")) for t in visible if check_of(t) == edit.check]
        if not any(edit.hint in m for m in own):
            problems.append(f"{edit.id} ({edit.why}): check {edit.check!r} does not say {edit.hint!r}: {own}")
        for t in visible:
            out = str(t.get("output", ""))
            # the owner's name may hold the hint's words: not a repetition
            if check_of(t) != edit.check and not (
                    f"'{edit.check}'" in out and edit.hint not in out.replace(f"'{edit.check}'", "")):
                problems.append(f"{edit.id} ({edit.why}): {t['name']} repeats the cause instead of naming "
                                f"{edit.check!r}: {out[:300]}")
    return problems


def do_nothing_problems(edit, r: dict, ref: dict) -> list[str]:
    """A part that keeps its shapes but skips its work (tests/bank/do_nothing.py) keeps at most
    ``MAX_SHARE`` of its points and costs nothing elsewhere."""
    from tests.bank.do_nothing import MAX_SHARE

    problems = _graded(edit, r)
    if problems:
        return problems
    kept = r["parts"][edit.part] / ref["max"][edit.part]
    if kept > MAX_SHARE + 1e-9:
        problems.append(f"{edit.id} ({edit.why}) keeps {kept:.0%} of {edit.part}, at most {MAX_SHARE:.0%}: "
                        f"{failures(r, edit.part)}")
    wrong = [p for p in ref["parts"] if p != edit.part and not same(r["parts"][p], ref["parts"][p])]
    if wrong:
        problems.append(f"{edit.id} ({edit.why}) costs points in {wrong} too: {failures(r)}")
    return problems


RULES = {"mutant": mutant_problems, "alternative": alternative_problems, "mistake": mistake_problems,
         "do_nothing": do_nothing_problems}


def problems(b: Bank, edit, r: dict, ref: dict) -> list[str]:
    """What is wrong with the grade ``r`` of ``edit`` of bank ``b`` (``ref``: the reference's grade)."""
    return RULES[b.kind](edit, r, ref)


# -- the reference and the untouched assignment ---------------------------------------------------

# given complete in the student notebook, and checked with the grader's stand-in Head: full marks
GIVEN_PARTS = ("multihead",)


def reference_problems(ref: dict) -> list[str]:
    if ref.get("status") != "ok":
        return [f"the reference could not be graded: {ref.get('message')}"]
    data = data_of(ref)
    problems = [f"the reference failed: {t['name']}: {t.get('output', '')[:200]}"
                for t in data["tests"] if t["status"] != "passed"]
    if not data["tests"]:
        problems.append("the reference's results.json lists no checks")
    problems += [f"reference: {p} {s}/{ref['max'][p]}" for p, s in ref["parts"].items()
                 if not (same(s, ref["max"][p]) and s > 0)]
    return problems


def assignment_problems(r: dict, ref: dict) -> list[str]:
    """The untouched assignment: nothing for the parts the student writes, each check saying
    "not implemented yet"; full marks for the parts given complete."""
    if r.get("status") != "ok":
        return [f"the assignment could not be graded: {r.get('message')}"]
    problems = [] if r["max"] == ref["max"] else ["the assignment is graded on other checks than the reference"]
    for part, score in r["parts"].items():
        want = ref["max"][part] if part in GIVEN_PARTS else 0
        if not same(score, want):
            problems.append(f"untouched assignment: {part} {score}/{r['max'][part]}, expected {want}")
    silent = [t["name"] for t in data_of(r)["tests"]
              if t["tags"][0] not in GIVEN_PARTS and "not implemented yet" not in t["output"]]
    if silent:
        problems.append(f"checks of the untouched assignment that do not say 'not implemented yet': {silent}")
    return problems
