"""The command line of one grading run, ``pytest autograder ...``: the one place that builds it
(``grade_class``, the warm pool, Gradescope, the cluster tasks, the benchmarks and the tests).

Runs wherever a grading run is started; it only builds argument lists.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def pytest_args(submission: str | os.PathLike, grade_json: str | os.PathLike, *, reference=None,
                root: str | os.PathLike | None = None, time_budget: float | None = None, device: str | None = None,
                extra: tuple[str, ...] | list[str] = ()) -> list[str]:
    """pytest's own arguments (what ``pytest.main`` takes) to grade ``submission`` into ``grade_json``
    with the grader of the checkout at ``root`` (default: this one)."""
    root = Path(root) if root is not None else REPO
    args = [str(root / "autograder"), "-q", "-p", "no:cacheprovider", "--rootdir", str(root),
            "--submission", os.path.abspath(submission), "--grade-json", str(grade_json)]
    if reference is not None:
        args += ["--reference", str(Path(reference).resolve())]
    if time_budget is not None:
        args += ["--time-budget", f"{time_budget:g}"]
    if device is not None:
        args += ["--device", device]
    return args + list(extra)


def grader_command(submission, grade_json, **options) -> list[str]:
    """The whole command: this interpreter running pytest with ``pytest_args``."""
    return [sys.executable, "-m", "pytest", *pytest_args(submission, grade_json, **options)]
