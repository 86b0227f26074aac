"""The built wheel grades: pyproject's packages (found by setuptools) and package data are all the grader
needs. The wheel is built from a copy of the checkout, installed NOT editable into a fresh venv that
sees this interpreter's site-packages (torch is not installed again), and the reference is graded with
it from a folder outside any checkout, with nothing of the checkout on the path.

A slow tier of its own: ``pytest tests -m packaging`` (about a minute).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.conftest import REFERENCE, REPO

pytestmark = pytest.mark.packaging

# what a wheel is built from: the packages, and the files pyproject names
SOURCES = ("autograder", "data", "instructor", "pyproject.toml", "README.md")


def _copy_sources(dest: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "tinyshakespeare.txt", "*.egg-info")
    for name in SOURCES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore)
        else:
            shutil.copy2(src, dest / name)
    return dest


def _run(cmd, **kwargs) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env, timeout=600, **kwargs)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(the fresh venv's python, the installed autograder folder)."""
    root = tmp_path_factory.mktemp("packaging")
    source = _copy_sources(root / "source")
    wheels = root / "wheels"
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                  "-w", wheels, source])
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    wheel = next(wheels.glob("gpt_lab-*.whl"))
    venv = root / "venv"
    made = _run([sys.executable, "-m", "venv", "--without-pip", venv])
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    # this interpreter's packages (torch, pytest, nbformat...) after the venv's own: the wheel's win
    (site / "zz_base_packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    done = _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", wheel])
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    where = _run([python, "-c", "import autograder, autograder.plugin; print(autograder.__file__)"], cwd=root)
    assert where.returncode == 0, where.stderr[-2000:]
    package = Path(where.stdout.strip()).parent
    assert package.is_relative_to(site), f"autograder imported from {package}, not from the installed wheel"
    return python, package


def test_wheel_holds_what_the_grader_reads(installed):
    _, package = installed
    for name in ("parts.toml", "locale/es/LC_MESSAGES/gptlab.mo", "checks/hidden_manifest.json",
                 "conftest.py", "plugin/grading.py", "engine/worker_main.py", "checks/hidden/__init__.py"):
        assert (package / name).is_file(), f"the wheel lacks autograder/{name}"


def test_installed_wheel_grades_the_reference(installed, tmp_path):
    """``pytest <installed autograder>`` from outside the checkout: full marks for the reference."""
    python, package = installed
    work = tmp_path / "elsewhere"
    work.mkdir()
    submission = Path(shutil.copy(REFERENCE, work / "gpt_lab.ipynb"))
    out = work / "results.json"
    run = _run([python, "-m", "pytest", package, "-q", "-p", "no:cacheprovider", "--rootdir", work,
                "--submission", submission, "--reference", REFERENCE, "--grade-json", out], cwd=work)
    assert out.exists(), f"no results.json (exit {run.returncode}): {run.stdout[-3000:]}{run.stderr[-2000:]}"
    data = json.loads(out.read_text())
    failed = [f"{t['name']}: {t.get('output', '')[:200]}" for t in data["tests"] if t["status"] != "passed"]
    assert not failed and data["tests"], f"the installed grader failed the reference: {failed[:5]} {data['output'][:500]}"
    assert run.returncode == 0, run.stdout[-3000:]
    assert str(REPO) not in data["output"], "the installed grader reached into the checkout"
