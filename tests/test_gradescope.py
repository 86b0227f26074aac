"""The Gradescope autograder zip (python -m instructor.gradescope): its contents, and run_autograder in a
temporary folder laid out like Gradescope's /autograder (this venv instead of setup.sh)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from instructor import gradescope

REPO = Path(__file__).resolve().parent.parent
VISIBILITIES = {"hidden", "after_due_date", "after_published", "visible"}


@pytest.fixture(scope="module")
def zip_path(tmp_path_factory):
    return gradescope.build(tmp_path_factory.mktemp("gradescope") / "autograder.zip")


def layout(tmp_path: Path, zip_path: Path, submission: Path | None) -> Path:
    root = tmp_path / "autograder"
    for d in ("source", "submission", "results"):
        (root / d).mkdir(parents=True)
    with zipfile.ZipFile(zip_path) as z:
        z.extractall(root / "source")
    if submission is not None:
        shutil.copyfile(submission, root / "submission" / submission.name)
    return root


def run_autograder(root: Path, python: str = sys.executable) -> dict:
    env = {**os.environ, "GPTLAB_GRADESCOPE_ROOT": str(root), "GPTLAB_PYTHON": python}
    proc = subprocess.run(["bash", str(root / "source" / "run_autograder")], cwd=root, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:]
    data = json.loads((root / "results" / "results.json").read_text())
    validate(data)
    return data


def validate(data: dict) -> None:
    """Gradescope's results.json: a numeric score (or per-test scores), tests with the known fields."""
    assert isinstance(data, dict)
    assert isinstance(data.get("score"), (int, float))
    assert isinstance(data.get("tests"), list)
    assert data.get("visibility", "visible") in VISIBILITIES
    assert data.get("stdout_visibility", "hidden") in VISIBILITIES
    assert isinstance(data.get("output", ""), str)
    if "execution_time" in data:
        assert isinstance(data["execution_time"], (int, float))
    for t in data["tests"]:
        assert isinstance(t["name"], str) and t["name"]
        assert isinstance(t["score"], (int, float)) and isinstance(t["max_score"], (int, float))
        assert 0 <= t["score"] <= t["max_score"] + 1e-9
        assert t["status"] in ("passed", "failed")
        assert isinstance(t["output"], str)
        assert isinstance(t["tags"], list) and len(t["tags"]) == 1 and isinstance(t["tags"][0], str)
        assert t["visibility"] in VISIBILITIES


def test_zip_contents(zip_path):
    with zipfile.ZipFile(zip_path) as z:
        infos = {i.filename: i for i in z.infolist()}
        setup = z.read("setup.sh").decode()
        run = z.read("run_autograder").decode()
    for name in ("setup.sh", "run_autograder", "pyproject.toml", "solutions/gpt_lab.ipynb", "data/__init__.py",
                 "autograder/conftest.py", "autograder/parts.toml", "autograder/checks/hidden/test_head_hidden.py",
                 "instructor/gradescope.py"):
        assert name in infos, name
    assert not [n for n in infos if "__pycache__" in n or n.endswith((".pyc", ".pt"))]
    assert not [n for n in infos if n.startswith(("tests/", "assignment/", "course/"))]
    for name in ("setup.sh", "run_autograder"):
        assert (infos[name].external_attr >> 16) & stat.S_IXUSR, f"{name} is not executable"
        assert infos[name].external_attr >> 16 & stat.S_IFREG
    assert "torch==2.13.0" in setup and "https://download.pytorch.org/whl/cpu" in setup
    assert "pip install -e /autograder/source" in setup
    assert "GPTLAB_GRADESCOPE_ROOT" in run and "results.json" in run


@pytest.mark.e2e_paths
def test_reference_full_marks(tmp_path, zip_path):
    root = layout(tmp_path, zip_path, REPO / "solutions" / "gpt_lab.ipynb")
    data = run_autograder(root)
    assert [t["name"] for t in data["tests"] if t["status"] != "passed"] == []
    assert round(data["score"], 2) == round(sum(t["score"] for t in data["tests"]), 2)
    manifest = json.loads((REPO / "autograder" / "checks" / "hidden_manifest.json").read_text())
    hidden = [t for t in data["tests"] if t["visibility"] == "after_published"]
    assert len(hidden) == sum(manifest.values()) > 0
    assert {t["tags"][0] for t in hidden} == set(manifest)
    assert all(t["visibility"] == "visible" for t in data["tests"] if t not in hidden)


@pytest.mark.e2e_paths
def test_stub_scores_zero(tmp_path, zip_path):
    # a student's file name other than gpt_lab.ipynb, inside a folder, next to a checkpoint copy
    root = layout(tmp_path, zip_path, None)
    (root / "submission" / "work" / ".ipynb_checkpoints").mkdir(parents=True)
    shutil.copyfile(REPO / "solutions" / "gpt_lab.ipynb",
                    root / "submission" / "work" / ".ipynb_checkpoints" / "gpt_lab-checkpoint.ipynb")
    shutil.copyfile(REPO / "assignment" / "gpt_lab.ipynb", root / "submission" / "work" / "my_lab.ipynb")
    data = run_autograder(root)
    # multihead is given complete in the student notebook and checked without its Head: kept
    given = [t for t in data["tests"] if t["tags"][0] == "multihead"]
    assert given and all(t["status"] == "passed" for t in given)
    assert data["score"] == sum(t["score"] for t in given) and data["tests"]
    assert all(t["status"] == "failed" for t in data["tests"] if t not in given)


def test_no_notebook(tmp_path, zip_path):
    root = layout(tmp_path, zip_path, None)
    (root / "submission" / "notes.txt").write_text("forgot the notebook")
    data = run_autograder(root)
    assert data["score"] == 0 and "no notebook" in data["output"]


def test_grader_crash_still_writes_results(tmp_path, zip_path):
    root = layout(tmp_path, zip_path, REPO / "solutions" / "gpt_lab.ipynb")
    (root / "results" / "results.json").write_text('{"score": 100, "tests": []}')  # stale or forged
    data = run_autograder(root, python=str(tmp_path / "no-such-python"))
    assert data["score"] == 0 and data["tests"] == []
    assert "autograder failed" in data["output"]


def test_find_submission_prefers_gpt_lab(tmp_path):
    (tmp_path / "a.ipynb").write_text("{}")
    (tmp_path / "gpt_lab.ipynb").write_text("{}")
    chosen, note = gradescope.find_submission(tmp_path)
    assert chosen.name == "gpt_lab.ipynb" and "several notebooks" in note


@pytest.mark.e2e_paths
def test_list_metadata_is_graded(tmp_path, zip_path):
    """Notebook and cell metadata that are lists (invalid for nbformat): graded, not 'autograder failed'."""
    data = json.loads((REPO / "solutions" / "gpt_lab.ipynb").read_text())
    data["metadata"] = ["a", "list"]
    for c in data["cells"]:
        if c["cell_type"] == "markdown":
            c["metadata"] = []
    src = tmp_path / "gpt_lab.ipynb"
    src.write_text(json.dumps(data))
    root = layout(tmp_path, zip_path, src)
    result = run_autograder(root)
    assert "autograder failed" not in result["output"].lower()
    assert [t["name"] for t in result["tests"] if t["status"] != "passed"] == []


def test_link_to_the_reference_is_refused(tmp_path, zip_path):
    root = layout(tmp_path, zip_path, None)
    os.symlink(root / "source" / "solutions" / "gpt_lab.ipynb", root / "submission" / "gpt_lab.ipynb")
    data = run_autograder(root)
    assert data["score"] == 0 and "link" in data["output"]


@pytest.mark.e2e_paths
def test_budget_half_the_platform_limit(tmp_path, zip_path):
    """With a 200 s platform limit, a submission whose cells take 90 s (each under the cell limit) is
    cut at its budget and the report is written within half the limit (100 s), saying what was not run."""
    import nbformat

    nb = nbformat.read(REPO / "solutions" / "gpt_lab.ipynb", as_version=4)
    first = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    for k in range(6):
        nb.cells.insert(first + 1, nbformat.v4.new_code_cell(f"import time\ntime.sleep(15)  # slow {k}"))
    src = tmp_path / "gpt_lab.ipynb"
    nbformat.write(nb, src)
    root = layout(tmp_path, zip_path, src)
    env = {**os.environ, "GPTLAB_GRADESCOPE_ROOT": str(root), "GPTLAB_PYTHON": sys.executable,
           "GPTLAB_GRADESCOPE_LIMIT_S": "200"}
    start = time.monotonic()
    proc = subprocess.run(["bash", str(root / "source" / "run_autograder")], cwd=root, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    elapsed = time.monotonic() - start
    data = json.loads((root / "results" / "results.json").read_text())
    validate(data)
    assert proc.returncode == 0
    assert elapsed < 100, (elapsed, data.get("execution_time"), proc.stdout[-3000:])  # half the limit, report included
    assert data["score"] < 6.5 and any("budget" in t["output"] for t in data["tests"]), data["output"][-2000:]
    assert gradescope.GRADE_TIMEOUT_S <= gradescope.PLATFORM_LIMIT_S / 2
