"""The nbgrader path against hostile notebooks (tests/nbgrader_attacks/cases.py), with real nbgrader.

One course, one class: the attack notebooks and honest controls graded before and after them, all
through ``python -m instructor.autograde gpt_lab --jobs 2`` (the isolated grader, then
``nbgrader autograde``), then ``nbgrader generate_feedback``. Each notebook must get what its honest
work earns; no autograded or feedback notebook of a student who did not submit the reference may
hold reference code, and none may hold hidden-check code; the checkout, the course's source and the
gradebook are untouched; tampering is reported in the log and in the notebook.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tests.nbgrader_attacks.cases import CASES, CONTROLS, MAXIMUM

pytest.importorskip("nbgrader")

REPO = Path(__file__).resolve().parent.parent
REFERENCE = REPO / "solutions" / "gpt_lab.ipynb"
_MARKERS = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[^\n]*\n?", re.MULTILINE)


def _have_data() -> bool:
    from data import CACHE_PATH, ENV_VAR

    return CACHE_PATH.is_file() or bool(os.environ.get(ENV_VAR))


pytestmark = [pytest.mark.hostile, pytest.mark.skipif(not _have_data(), reason="tiny Shakespeare is not available offline")]


def _env() -> dict:
    bin_dir = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""), "PYTHONDONTWRITEBYTECODE": "1"}


def _grade_id(cell):
    meta = cell.metadata.get("nbgrader")
    return meta.get("grade_id") if isinstance(meta, dict) else None


def student_notebook(release, base: str):
    """The released notebook as a student hands it in: stubs, or the reference's code in every solution cell."""
    nb = nbformat.reads(nbformat.writes(release), as_version=4)
    if base == "reference":
        reference = {_grade_id(c): c for c in nbformat.read(REFERENCE, as_version=4).cells if _grade_id(c)}
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("solution"):
                cell.source = _MARKERS.sub("", reference[meta["grade_id"]].source)
    return nb


def build(release, case):
    nb = student_notebook(release, case.base)
    cells = [nbformat.v4.new_code_cell(src.strip("\n")) for src in case.cells]
    if case.at_end:
        nb.cells.extend(cells)
    else:
        first_code = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
        nb.cells[first_code + 1:first_code + 1] = cells
    if case.tamper:
        case.tamper(nb)
    return nb


def _digest(paths) -> dict:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths if p.is_file()}


def _run(cmd, cwd, timeout=1500):
    proc = subprocess.run(cmd, cwd=cwd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout)
    return proc.returncode, proc.stdout


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    from nbgrader.api import Gradebook

    from instructor.course_init import init

    root = init(tmp_path_factory.mktemp("attacks") / "course")
    rc, out = _run([sys.executable, "-m", "nbgrader", "generate_assignment", "gpt_lab"], root)
    assert rc == 0, out[-3000:]
    release = nbformat.read(root / "release" / "gpt_lab" / "gpt_lab.ipynb", as_version=4)
    students = {case.id: case.raw if case.raw is not None else build(release, case) for case in CASES if not case.make}
    students.update({sid: student_notebook(release, base) for sid, (base, _) in CONTROLS.items()})
    for sid, nb in students.items():
        folder = root / "submitted" / sid / "gpt_lab"
        folder.mkdir(parents=True)
        # json, not nbformat.write: some cases are deliberately invalid notebooks
        (folder / "gpt_lab.ipynb").write_text(nb if isinstance(nb, str) else json.dumps(nb, indent=1))
    for case in CASES:
        if case.make:
            folder = root / "submitted" / case.id / "gpt_lab"
            folder.mkdir(parents=True)
            case.make(folder / "gpt_lab.ipynb")
            students[case.id] = None
    guarded = [*sorted((REPO / "autograder").rglob("*.py")), REFERENCE, root / "source" / "gpt_lab" / "gpt_lab.ipynb",
               root / "nbgrader_config.py"]
    before = _digest(guarded)
    rc, log = _run([sys.executable, "-m", "instructor.autograde", "gpt_lab", "--jobs", "2"], root)
    assert rc == 0, log[-5000:]
    rc, feedback_log = _run([sys.executable, "-m", "nbgrader", "generate_feedback", "gpt_lab"], root)
    assert rc == 0, feedback_log[-3000:]
    scores, waiting, flagged = {}, {}, {}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        for sid in students:
            sub = gb.find_submission_notebook("gpt_lab", "gpt_lab", sid)
            # nbgrader's score of a cell: its auto score plus extra credit (the bonus part's points)
            scores[sid] = {g.name: (g.score, float(g.max_score)) for g in sub.grades if g.cell.cell_type == "code"}
            waiting[sid] = {g.name for g in sub.grades if g.cell.cell_type == "code" and g.needs_manual_grade}
            flagged[sid] = bool(sub.flagged)
    return {"root": root, "log": log, "scores": scores, "waiting": waiting, "flagged": flagged, "before": before,
            "after": _digest(guarded)}


def _total(scores) -> float:
    return sum(s or 0 for s, _ in scores.values())


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_attack_gets_its_honest_grade(graded, case):
    scores = graded["scores"][case.id]
    assert len(scores) == 13, f"every check cell is graded: {sorted(scores)}"
    assert sum(m for _, m in scores.values()) == pytest.approx(MAXIMUM)  # nbgrader's maximum: the bonus is not in it
    assert _total(scores) == pytest.approx(case.expected, abs=1e-9), f"{case.why}: {scores}"
    if case.raw is not None or case.make:  # not graded: every check cell waits for a human, the notebook flagged
        assert graded["waiting"][case.id] == set(scores), graded["waiting"][case.id]
        assert graded["flagged"][case.id]
    else:
        assert not graded["waiting"][case.id], "an autograded cell left for a human looks like a blank submission"
    nb = nbformat.read(graded["root"] / "autograded" / case.id / "gpt_lab" / "gpt_lab.ipynb", as_version=4)
    if case.raw is not None or case.make:  # not a notebook: graded 0 all the same, with the reason in its feedback
        assert "could not be read as a notebook" in nb.cells[0].source
        assert f"{case.id}: gpt_lab.ipynb is not a readable notebook" in graded["log"]


@pytest.mark.parametrize("sid", sorted(CONTROLS))
def test_controls_keep_their_grade(graded, sid):
    assert _total(graded["scores"][sid]) == pytest.approx(CONTROLS[sid][1], abs=1e-9)


def test_checkout_course_and_gradebook_untouched(graded):
    assert graded["after"] == graded["before"]
    assert not Path("/tmp/gptlab-nbgrader-pwned").exists()
    assert not list(graded["root"].rglob("PWNED")) and not list(REPO.rglob("PWNED"))


@pytest.mark.parametrize("case", [c for c in CASES if c.reported], ids=[c.id for c in CASES if c.reported])
def test_tampering_is_reported(graded, case):
    nb = nbformat.read(graded["root"] / "autograded" / case.id / "gpt_lab" / "gpt_lab.ipynb", as_version=4)
    note = nb.cells[0].source
    assert "gpt-lab autograder note" in note
    for grade_id in case.reported:
        assert f"`{grade_id}`" in note, grade_id
        assert any(f"student {case.id}" in line and grade_id in line and "WARNING" in line
                   for line in graded["log"].splitlines()), grade_id


def test_honest_notebooks_carry_no_note_and_log_no_warning(graded):
    for sid in CONTROLS:
        nb = nbformat.read(graded["root"] / "autograded" / sid / "gpt_lab" / "gpt_lab.ipynb", as_version=4)
        notes = [c.source for c in nb.cells if "gpt-lab autograder note" in c.source or "gpt-lab grader report" in c.source]
        assert not notes, notes  # neither a tampering note nor a grader report
        assert not [line for line in graded["log"].splitlines() if f"student {sid}" in line and "WARNING" in line]


def _secret_lines() -> tuple[set[str], set[str]]:
    """Lines that only the reference's solutions and the hidden checks hold (long enough to be telling)."""
    release = (REPO / "assignment" / "gpt_lab.ipynb").read_text()
    solution = set()
    for cell in nbformat.read(REFERENCE, as_version=4).cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            for line in _MARKERS.sub("", cell.source).splitlines():
                line = line.strip()
                if len(line) > 30 and json.dumps(line)[1:-1] not in release:
                    solution.add(line)
    hidden = {line.strip() for p in (REPO / "autograder" / "checks" / "hidden").rglob("*.py")
              for line in p.read_text().splitlines() if len(line.strip()) > 40}
    return solution, hidden


def test_no_reference_or_hidden_code_reaches_a_student(graded):
    solution, hidden = _secret_lines()
    assert len(solution) > 20 and len(hidden) > 20
    leaks = []
    for folder in ("autograded", "feedback"):
        for path in (graded["root"] / folder).rglob("*"):
            if not path.is_file() or path.suffix not in (".ipynb", ".html"):
                continue
            sid = path.relative_to(graded["root"] / folder).parts[0]
            base = next((c.base for c in CASES if c.id == sid), CONTROLS.get(sid, ("?",))[0])
            text = path.read_text(errors="replace")
            text = text.replace("&quot;", '"').replace("&#39;", "'").replace("&lt;", "<").replace("&gt;", ">")
            secret = hidden | (solution if base == "stub" else set())
            found = [line for line in secret if line in text or json.dumps(line)[1:-1] in text]
            if found:
                leaks.append(f"{path}: {found[:2]}")
    assert not leaks, leaks
    assert (graded["root"] / "feedback" / "raise_with_reference").is_dir(), "feedback was generated"


def test_hung_notebook_is_graded_and_the_cause_shown(graded):
    nb = nbformat.read(graded["root"] / "autograded" / "hang_every_cell" / "gpt_lab" / "gpt_lab.ipynb",
                       as_version=4)
    report = [c.source for c in nb.cells if "gpt-lab grader report" in c.source]
    assert report and re.search(r"Timeout|time limit|did not finish", report[0]), report
