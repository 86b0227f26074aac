"""End to end with real nbgrader: the course template (course/nbgrader_config.py) in a temporary course
folder, ``nbgrader generate_assignment`` and ``nbgrader autograde`` on four submissions:

* ``reference``: solutions/gpt_lab.ipynb -> full marks on every autograded cell;
* ``stub``: the untouched student notebook (assignment/gpt_lab.ipynb) -> 0 everywhere;
* ``mutant``: the reference with Head scaling its scores by n_embd ** -0.5 -> per part and in total
  exactly what ``pytest autograder --submission mutant --grade-json`` gives;
* ``tampered``: the reference with test cells deleted, edited and stripped of their metadata, and a
  written answer deleted -> still full marks, every change reported (log and a note in the notebook).

Slow: about a minute (the isolated grader grades each notebook; nbgrader starts no kernel).
``GPTLAB_E2E_REFERENCE=PATH`` grades another instructor notebook instead of solutions/gpt_lab.ipynb.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

pytest.importorskip("nbgrader")

REPO = Path(__file__).resolve().parent.parent
DEFAULT_REFERENCE = REPO / "solutions" / "gpt_lab.ipynb"
REFERENCE = Path(os.environ.get("GPTLAB_E2E_REFERENCE") or DEFAULT_REFERENCE)
ASSIGNMENT = REPO / "assignment" / "gpt_lab.ipynb"
MUTANT_OLD, MUTANT_NEW = "* k.shape[-1] ** -0.5", "* C ** -0.5"  # head_size ** -0.5 -> n_embd ** -0.5
ACTIVE = ["reference", "stub", "mutant", "tampered"]


def _have_data() -> bool:
    from data import CACHE_PATH, ENV_VAR

    return CACHE_PATH.is_file() or bool(os.environ.get(ENV_VAR))


pytestmark = [pytest.mark.nbgrader, pytest.mark.skipif(not _have_data(), reason="tiny Shakespeare is not available offline")]


def _env() -> dict:
    bin_dir = str(Path(sys.executable).parent)  # nbgrader, alembic and the kernel's python
    return {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""), "PYTHONDONTWRITEBYTECODE": "1"}


def _cell(nb, grade_id):
    (cell,) = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id]
    return cell


def _clear_outputs(nb):
    for c in nb.cells:
        if c.cell_type == "code":
            c.outputs, c.execution_count = [], None
    return nb


def make_mutant(nb):
    cell = _cell(nb, "head_code")
    assert cell.source.count(MUTANT_OLD) == 1, "the reference's Head no longer scales by k.shape[-1] ** -0.5"
    cell.source = cell.source.replace(MUTANT_OLD, MUTANT_NEW)
    return nb


def make_tampered(nb):
    nb.cells.remove(_cell(nb, "check_head"))  # deleted test cell
    nb.cells.remove(_cell(nb, "written_heads"))  # deleted written answer
    _cell(nb, "check_tokenizer").source = "0.0  # edited: would score 0 if it were not restored"
    _cell(nb, "check_gpt").metadata = {}  # metadata stripped, cell id kept
    gen = _cell(nb, "check_generate")
    gen.metadata, gen.id = {}, "pasted-cell"  # metadata stripped and a new cell id (copied into a new notebook)
    return nb


def _run(cmd, cwd, log):
    proc = subprocess.run(cmd, cwd=cwd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=600)
    log.write_text(proc.stdout)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{proc.stdout[-4000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    from nbgrader.api import Gradebook

    from instructor.course_init import init

    root = init(tmp_path_factory.mktemp("course") / "gpt-lab", reference=REFERENCE)
    _run([sys.executable, "-m", "nbgrader", "generate_assignment", "gpt_lab"], root, root / "generate.log")
    reference = _clear_outputs(nbformat.read(REFERENCE, as_version=4))
    notebooks = {
        "reference": reference,
        "stub": nbformat.read(ASSIGNMENT if REFERENCE == DEFAULT_REFERENCE
                              else root / "release" / "gpt_lab" / "gpt_lab.ipynb", as_version=4),
        "mutant": make_mutant(nbformat.reads(nbformat.writes(reference), as_version=4)),
        "tampered": make_tampered(nbformat.reads(nbformat.writes(reference), as_version=4)),
    }
    for student, nb in notebooks.items():
        folder = root / "submitted" / student / "gpt_lab"
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / "gpt_lab.ipynb")
    # the project's own grader on the mutant, while nbgrader grades
    mutant_json = root / "mutant-results.json"
    grader = subprocess.Popen(
        [sys.executable, "-m", "pytest", str(REPO / "autograder"), "-q", "-p", "no:cacheprovider",
         "--rootdir", str(REPO), "--submission", str(root / "submitted" / "mutant" / "gpt_lab" / "gpt_lab.ipynb"),
         "--reference", str(REFERENCE), "--grade-json", str(mutant_json)],
        cwd=root, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        autograde_log = _run([sys.executable, "-m", "nbgrader", "autograde", "gpt_lab"], root, root / "autograde.log")
        grader_out, _ = grader.communicate(timeout=600)
    finally:
        if grader.poll() is None:
            grader.kill()
    assert mutant_json.exists(), f"pytest autograder wrote no results.json:\n{grader_out[-4000:]}"
    scores = {}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        for student in ACTIVE:
            sub = gb.find_submission_notebook("gpt_lab", "gpt_lab", student)
            # nbgrader's score of a cell: its auto score plus extra credit (the bonus part's points)
            scores[student] = {g.name: (g.score, float(g.max_score), g.cell.cell_type) for g in sub.grades}
    return {"root": root, "scores": scores, "log": autograde_log, "grader_out": grader_out,
            "mutant": json.loads(mutant_json.read_text())}


def _autograded(scores: dict) -> dict:
    """check_<part> -> (score, max) of the autograded (code) grade cells."""
    return {name: (s, m) for name, (s, m, kind) in scores.items() if kind == "code"}


def _autograded_nb(course, student):
    return nbformat.read(course["root"] / "autograded" / student / "gpt_lab" / "gpt_lab.ipynb", as_version=4)


def test_release_is_the_student_notebook(course):
    release = nbformat.read(course["root"] / "release" / "gpt_lab" / "gpt_lab.ipynb", as_version=4)
    if REFERENCE == DEFAULT_REFERENCE:
        expected = nbformat.read(ASSIGNMENT, as_version=4)
    else:
        from instructor.generate import student_notebook

        expected = student_notebook(nbformat.read(REFERENCE, as_version=4))
    assert [(c.cell_type, c.source) for c in release.cells] == [(c.cell_type, c.source) for c in expected.cells]
    text = (course["root"] / "release" / "gpt_lab" / "gpt_lab.ipynb").read_text()
    assert "### BEGIN SOLUTION" not in text and "### BEGIN HIDDEN TESTS" not in text
    assert sorted(p.name for p in (course["root"] / "release" / "gpt_lab").iterdir()) == ["gpt_lab.ipynb"]


def test_reference_gets_full_marks(course):
    graded = _autograded(course["scores"]["reference"])
    assert {n for n in graded} >= {f"check_{p}" for p in ("tokenizer", "head", "gpt", "train", "quiz")}
    assert {n: s for n, (s, m) in graded.items() if s < m} == {}, f"not full marks: {graded}"
    from autograder.engine.report import load_rubric

    rubric, bonus = load_rubric()
    assert sum(s for s, _ in graded.values()) == pytest.approx(float(sum(rubric.values())))  # bonus included
    assert sum(m for _, m in graded.values()) == pytest.approx(float(sum(v for p, v in rubric.items() if p not in bonus)))


def test_stub_gets_zero(course):
    """Nothing for the parts the student writes; multihead, given complete and checked without
    the student's Head, keeps its points."""
    graded = _autograded(course["scores"]["stub"])
    assert {n: s for n, (s, m) in graded.items() if s != 0 and n != "check_multihead"} == {}
    assert graded["check_multihead"][0] == graded["check_multihead"][1] > 0, graded


def test_mutant_matches_pytest_autograder(course):
    data = course["mutant"]
    by_part: dict[str, float] = {}
    for t in data["tests"]:
        by_part[t["tags"][0]] = by_part.get(t["tags"][0], 0.0) + t["score"]
    graded = _autograded(course["scores"]["mutant"])
    nbgrader_parts = {name.removeprefix("check_"): s for name, (s, m) in graded.items()}
    assert set(nbgrader_parts) == set(by_part)
    assert {p: round(s, 2) for p, s in nbgrader_parts.items()} == {p: round(s, 2) for p, s in by_part.items()}
    assert round(sum(nbgrader_parts.values()), 2) == round(data["score"], 2)
    assert nbgrader_parts["head"] < graded["check_head"][1], "the mutant should lose points on head"
    assert all(s >= m for n, (s, m) in graded.items() if n != "check_head")


def test_no_student_code_runs_in_nbgrader(course):
    """No kernel: only the check cells hold outputs, written from the isolated grader's results."""
    nb = _autograded_nb(course, "reference")
    with_outputs = [c for c in nb.cells if c.cell_type == "code" and c.outputs]
    assert with_outputs and all(c.metadata.get("nbgrader", {}).get("grade_id", "").startswith("check_")
                                for c in with_outputs)
    assert "Executing notebook" not in course["log"] and "kernel" not in course["log"].lower()
    head = next(c for c in with_outputs if c.metadata["nbgrader"]["grade_id"] == "check_head")
    assert "[PASS] head:" in head.outputs[0]["text"]


def test_untouched_submissions_log_no_warning(course):
    for student in ("reference", "stub", "mutant"):
        assert not [line for line in course["log"].splitlines() if f"student {student}" in line and "WARNING" in line]


def test_tampered_test_cells_are_restored_and_reported(course):
    graded = _autograded(course["scores"]["tampered"])
    assert {n: s for n, (s, m) in graded.items() if s < m} == {}, "restored test cells must award their points"
    assert "written_heads" in course["scores"]["tampered"]
    nb = _autograded_nb(course, "tampered")
    note = nb.cells[0]
    assert note.cell_type == "markdown" and "gpt-lab autograder note" in note.source
    log = course["log"]
    for grade_id in ("check_head", "check_tokenizer", "check_gpt", "check_generate", "written_heads"):
        assert f"`{grade_id}`" in note.source
        assert any(grade_id in line and "WARNING" in line for line in log.splitlines()), grade_id
    ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells]
    assert ids.index("check_head") == ids.index("head_code") + 1 or ids.index("check_head") > ids.index("head_code")
    for student in ("reference", "stub", "mutant"):
        assert "gpt-lab autograder note" not in _autograded_nb(course, student).cells[0].source


def _code_scores(root, student) -> dict:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        sub = gb.find_submission_notebook("gpt_lab", "gpt_lab", student)
        return {g.name: g.score for g in sub.grades if g.cell.cell_type == "code"}


def test_rerun_regrades_exactly_what_changed_and_one_student_on_demand(course):
    """Last in this file (it changes the course): a resubmission reaches the gradebook and the autograded
    notebook at the next `instructor.autograde`, and nobody else is regraded; `-- --student ID` regrades one."""
    root = course["root"]
    autograded = {s: root / "autograded" / s / "gpt_lab" / "gpt_lab.ipynb" for s in ACTIVE}
    before = {s: p.stat().st_mtime_ns for s, p in autograded.items()}
    # stub resubmits: now the reference's code (nbgrader alone would skip it and keep its 0)
    nbformat.write(_clear_outputs(nbformat.read(REFERENCE, as_version=4)),
                   root / "submitted" / "stub" / "gpt_lab" / "gpt_lab.ipynb")
    out = _run([sys.executable, "-m", "instructor.autograde", "gpt_lab", "--jobs", "2"], root, root / "rerun.log")
    assert "nbgrader regrades 1: stub" in out, out[-3000:]
    assert _code_scores(root, "stub") == _code_scores(root, "reference")
    assert autograded["stub"].stat().st_mtime_ns != before["stub"]
    assert "[PASS] head:" in str(_autograded_nb(course, "stub").cells)
    assert {s: autograded[s].stat().st_mtime_ns for s in ACTIVE if s != "stub"} == \
        {s: t for s, t in before.items() if s != "stub"}
    # nothing changed: nothing regraded
    out = _run([sys.executable, "-m", "instructor.autograde", "gpt_lab"], root, root / "rerun2.log")
    assert "nbgrader regrades 0 (nothing changed)" in out, out[-3000:]
    # one student on demand, with nbgrader's own option after --
    mutant_scores = _code_scores(root, "mutant")
    out = _run([sys.executable, "-m", "instructor.autograde", "gpt_lab", "--", "--student", "mutant"], root,
               root / "rerun3.log")
    assert "nbgrader regrades 1: mutant" in out, out[-3000:]
    assert autograded["mutant"].stat().st_mtime_ns != before["mutant"]
    assert _code_scores(root, "mutant") == mutant_scores
