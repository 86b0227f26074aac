"""The student handout (python -m instructor.handout): what is in it, what never is, and that
`pytest autograder` works inside it (hidden checks pending, counted from the manifest)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from instructor import handout

REPO = Path(__file__).resolve().parent.parent
pytest.importorskip("nbgrader")  # instructor.generate renders the student notebook with nbgrader


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return handout.build(tmp_path_factory.mktemp("handout") / "gpt-lab")


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def _quiz_key() -> dict:
    nb = nbformat.read(REPO / "solutions" / "gpt_lab.ipynb", as_version=4)
    (cell,) = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "quiz_code"]
    namespace: dict = {}
    exec(cell.source, namespace)  # the solution cell only assigns the dict
    return namespace["quiz_answers"]


def test_layout(built):
    files = _files(built)
    assert {"README.md", "pyproject.toml", "assignment/gpt_lab.ipynb", "data/__init__.py",
            "autograder/conftest.py", "autograder/notebook.py", "autograder/parts.toml",
            "autograder/checks/hidden_manifest.json", "autograder/checks/test_head.py"} <= files
    assert not [f for f in files if f.startswith(("solutions/", "autograder/checks/hidden/", "instructor/", "tests/"))]
    assert not [f for f in files if "__pycache__" in f or f.endswith((".pyc", ".pt", ".txt"))]
    assert (built / "assignment" / "gpt_lab.ipynb").read_bytes() == (REPO / "assignment" / "gpt_lab.ipynb").read_bytes()
    readme = (built / "README.md").read_text()
    assert "{" not in readme.replace("```", ""), "README template placeholders left unfilled"
    manifest = json.loads((REPO / "autograder" / "checks" / "hidden_manifest.json").read_text())
    assert f"{sum(manifest.values())} hidden checks" in readme


def test_no_solution_code_in_notebook_or_docs(built):
    nb_text = (built / "assignment" / "gpt_lab.ipynb").read_text()
    for marker in ("### BEGIN SOLUTION", "### END SOLUTION", "### BEGIN HIDDEN TESTS", "### BEGIN MARK SCHEME"):
        assert marker not in nb_text
    nb = nbformat.read(built / "assignment" / "gpt_lab.ipynb", as_version=4)
    assert not [c for c in nb.cells if c.cell_type == "code" and c.outputs]
    assert "Reference answer" not in nb_text
    assert handout.secrets(), "no solution lines found in the reference: the leak check would be vacuous"
    leaks = {f: lines for f, lines in handout.leaks(built).items() if not f.startswith("autograder/")}
    assert leaks == {}


def test_no_quiz_key(built):
    key = _quiz_key()
    assert key
    pattern = re.compile(r"""["']?(q\d)["']?\s*[:=]\s*["']([a-d])["']""")
    for rel in _files(built):
        text = (built / rel).read_text(errors="replace")
        pairs = dict(pattern.findall(text))
        assert not (pairs and all(pairs.get(q) == v for q, v in key.items())), f"{rel} holds the quiz key"


def test_no_solution_lines_in_visible_grader_code(built):
    assert {f: lines for f, lines in handout.leaks(built).items() if f.startswith("autograder/")} == {}


def test_zip(tmp_path, built):
    out = handout.build(tmp_path / "gpt-lab-handout", as_zip=True)
    assert out.suffix == ".zip"
    with zipfile.ZipFile(out) as z:
        names = set(z.namelist())
    assert names == {f"gpt-lab/{f}" for f in _files(built)}


def test_refuses_non_empty_destination(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    with pytest.raises(handout.HandoutError):
        handout.build(tmp_path / "x")


def test_pytest_autograder_runs_in_the_handout(built):
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    from data import CACHE_PATH

    if CACHE_PATH.is_file():
        env.setdefault("GPTLAB_DATA", str(CACHE_PATH))
    out_json = built.parent / "handout-results.json"
    proc = subprocess.run([sys.executable, "-m", "pytest", "autograder", "-p", "no:cacheprovider",
                           "--grade-json", str(out_json)],
                          cwd=built, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
    out = proc.stdout
    assert proc.returncode == 1, out[-3000:]  # the untouched notebook earns only the given MultiHeadAttention's
    assert f"submission: {built / 'assignment' / 'gpt_lab.ipynb'}" in out
    manifest = json.loads((REPO / "autograder" / "checks" / "hidden_manifest.json").read_text())
    assert re.search(rf"{sum(manifest.values())} hidden checks worth [0-9.]+ points run at grading time", out), out[-3000:]
    data = json.loads(out_json.read_text())
    earned = {t["tags"][0] for t in data["tests"] if t["score"] > 0}
    assert earned == {"multihead"} and data["tests"], earned  # MultiHeadAttention is given complete
    assert re.search(r"total 0\.00 / ", out) is None
    assert not [t for t in data["tests"] if t.get("visibility") == "after_published"]  # no hidden check ran


def test_a_perfect_notebook_passes_in_the_handout(built, tmp_path):
    """Every visible check passed is all a student can know before grading time: the handout's report says
    so and exits 0 (issue 26: it read 4.87 / 6.00 and exited 1), naming the hidden checks' points."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    from data import CACHE_PATH

    if CACHE_PATH.is_file():
        env.setdefault("GPTLAB_DATA", str(CACHE_PATH))
    perfect = tmp_path / "perfect" / "gpt_lab.ipynb"
    perfect.parent.mkdir()
    shutil.copy(REPO / "solutions" / "gpt_lab.ipynb", perfect)
    proc = subprocess.run([sys.executable, "-m", "pytest", "autograder", "-p", "no:cacheprovider",
                           "--submission", str(perfect)],
                          cwd=built, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:]
    assert re.search(r"every visible check passed: [0-9.]+ points earned here; \d+ hidden checks worth [0-9.]+ points "
                     r"run at grading time", out), out[-3000:]
