"""The command-line options of ``pytest autograder`` and their defaults."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SUBMISSION = ROOT / "assignment" / "gpt_lab.ipynb"
DEFAULT_REFERENCE = ROOT / "solutions" / "gpt_lab.ipynb"
RUN_BUDGET_S = 600.0  # the whole run; a check started past it fails as "not run"


def pytest_addoption(parser):
    group = parser.getgroup("gpt-lab grading")
    group.addoption("--submission", default=None, help="notebook, .py module or folder to grade")
    group.addoption("--reference", default=None, help="reference solution (default: solutions/gpt_lab.ipynb)")
    group.addoption("--grade-json", default=None, help="write Gradescope results.json here")
    group.addoption("--device", default="cpu", choices=("cpu", "cuda"), help="where the submission runs")
    group.addoption("--rubric", default=None, help="a registry of parts with other points (default: autograder/parts.toml)")
    group.addoption("--time-budget", default=RUN_BUDGET_S, type=float,
                    help=f"wall-clock seconds for the whole submission (default {RUN_BUDGET_S:g})")
    group.addoption("--lang", default=None,
                    help="language of the grader's messages: en or es (default: the notebook's own, "
                         "metadata.gptlab.lang, else English)")
