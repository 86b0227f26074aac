"""The released student notebook: in sync with the source, and free of solutions."""
import ast
import re
from pathlib import Path

import nbformat
import pytest

from autograder import parts as registry

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "solutions" / "gpt_lab.ipynb"
RELEASE = ROOT / "assignment" / "gpt_lab.ipynb"

# part id -> points, from the registry the notebooks must agree with (autograder/parts.toml)
RUBRIC = {p: float(v) for p, v in registry.rubric()[0].items()}
GIVEN = {"multihead"}  # complete in the student notebook, still checked
BONUS = registry.rubric()[1]  # extra credit: counted in the score, never in the maximum
# the student writes these parts inside one solution cell each (generate lives in the gpt cell)
SOLUTION_CELLS = {p for p in RUBRIC if p not in GIVEN | {"generate"}}


def _read(path):
    return nbformat.read(str(path), as_version=4)


def _by_grade_id(nb):
    return {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells if "nbgrader" in c.metadata}


@pytest.fixture(scope="module")
def source():
    return _read(SOURCE)


@pytest.fixture(scope="module")
def release():
    return _read(RELEASE)


def test_release_in_sync_with_source():
    pytest.importorskip("nbgrader")
    from instructor.generate import render

    assert RELEASE.read_text(encoding="utf-8") == render(SOURCE), (
        "assignment/gpt_lab.ipynb is out of date: run `python -m instructor.generate`")


def test_generation_is_deterministic(tmp_path):
    pytest.importorskip("nbgrader")
    from instructor.generate import main

    a, b = tmp_path / "a.ipynb", tmp_path / "b.ipynb"
    assert main(["--dest", str(a)]) == 0 and main(["--dest", str(b)]) == 0
    assert a.read_bytes() == b.read_bytes()
    assert main(["--dest", str(a), "--check"]) == 0
    a.write_text(a.read_text() + " ")
    assert main(["--dest", str(a), "--check"]) == 1


def test_no_solution_text_in_release(release):
    text = RELEASE.read_text(encoding="utf-8")
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "BEGIN MARK SCHEME", "Reference answer"):
        assert marker not in text, f"{marker!r} leaked into the student notebook"
    assert not any(c.outputs for c in release.cells if c.cell_type == "code"), "outputs leaked"


def test_written_answers_cleared(source, release):
    src, rel = _by_grade_id(source), _by_grade_id(release)
    written = [g for g, c in src.items() if c.cell_type == "markdown" and c.metadata["nbgrader"].get("grade")]
    assert len(written) >= 3
    for g in written:
        assert rel[g].source.strip() == "YOUR ANSWER HERE", g


def test_quiz_answers_not_released(source, release):
    ns = {}
    exec(_by_grade_id(source)["quiz_code"].source, ns)
    answers = ns["quiz_answers"]
    assert 3 <= len(answers) <= 4 and all(v in "abcd" for v in answers.values())
    text = "\n".join(c.source for c in release.cells)
    for q, letter in answers.items():
        assert not re.search(rf'["\']{q}["\']\s*:\s*["\']{letter}["\']', text), f"{q} answer leaked"
    assert not any(re.search(r"^\s*quiz_answers\s*=", c.source, re.M)
                   for c in release.cells if c.cell_type == "code")


def test_check_cells_follow_the_convention(release):
    cells = _by_grade_id(release)
    for part, points in RUBRIC.items():
        c = cells[f"check_{part}"]
        assert c.source.startswith("from autograder.notebook import check\n"), c.source
        # the whole cell: a self-check, with no hidden region (grades come from the isolated grader)
        assert c.source == f'from autograder.notebook import check\ncheck("{part}", globals())', c.source
        md = c.metadata["nbgrader"]
        # one maximum everywhere: a bonus part's cell is worth 0 in nbgrader; its score is extra credit
        assert md["grade"] and md["locked"] and not md["solution"]
        assert md["points"] == (0 if part in BONUS else points), (part, md["points"])
        assert c.metadata.get("editable") is False and c.metadata.get("deletable") is False


@pytest.mark.parametrize("part", sorted(SOLUTION_CELLS))
def test_every_stub_raises_not_implemented(source, release, part):
    src = _by_grade_id(source)[f"{part}_code"].source
    rel = _by_grade_id(release)[f"{part}_code"].source
    regions = src.count("### BEGIN SOLUTION")
    assert regions >= 1
    assert rel.count("raise NotImplementedError()") == regions
    tree = ast.parse(rel)  # still valid Python
    # every function whose body was a solution region now raises, and keeps its signature and docstring
    src_funcs = {f.name: f for f in ast.walk(ast.parse(src)) if isinstance(f, ast.FunctionDef)}
    for f in ast.walk(tree):
        if isinstance(f, ast.FunctionDef):
            assert ast.dump(f.args) == ast.dump(src_funcs[f.name].args), f"{f.name}: signature changed"
            assert ast.get_docstring(f) == ast.get_docstring(src_funcs[f.name])
    names = [n.name for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef))]
    assert names or part == "quiz"


def test_slow_cells_tagged(source):
    slow = {c.id for c in source.cells if "slow" in c.metadata.get("tags", [])}
    assert {"bigram-train", "train-run", "plot", "sample", "save-load"} <= slow
    assert not any("nbgrader" in c.metadata for c in source.cells if c.id in slow), "graded cells must not be slow"
