"""The command-line options of ``pytest autograder`` and their defaults."""

from __future__ import annotations

from pathlib import Path

from autograder.i18n import tr

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SUBMISSION = ROOT / "assignment" / "gpt_lab.ipynb"
DEFAULT_REFERENCE = ROOT / "solutions" / "gpt_lab.ipynb"
RUN_BUDGET_S = 600.0  # the whole run; a check started past it fails as "not run"
STUB = "raise NotImplementedError()"  # what every answer cell of an untouched student notebook still holds


def _stubs(path: Path) -> int | None:
    """How many answer cells of the notebook at ``path`` still hold their stub; None if it cannot be read."""
    from autograder.engine.load import SubmissionError, read_submission

    try:
        return sum(STUB in cell.source for cell in read_submission(path).cells)
    except (SubmissionError, OSError, ValueError, RecursionError, MemoryError):
        return None


def default_submission(folder: Path = DEFAULT_SUBMISSION.parent) -> tuple[Path, Path | None]:
    """The notebook ``pytest autograder`` grades without --submission, and the other one it could have
    graded (None when there was no choice). A repository holds the English notebook
    (``assignment/gpt_lab.ipynb``) and its translations (``assignment/es/gpt_lab.ipynb``): the student's
    is the one they worked in, the one with the fewest stubs left; the English one on a tie (a student's
    handout holds one notebook only: no choice)."""
    english = folder / DEFAULT_SUBMISSION.name
    translated = sorted(p for p in folder.glob(f"*/{DEFAULT_SUBMISSION.name}") if p.is_file() and not p.is_symlink())
    left = {p: _stubs(p) for p in [english, *translated]} if translated else {}
    readable = [p for p in left if left[p] is not None]
    if len(readable) < 2:
        return english, None
    chosen = min(readable, key=lambda p: left[p])  # min keeps the first (English) on a tie
    return chosen, next(p for p in readable if p != chosen)


def choice_note(chosen: Path, other: Path) -> str:
    """The note that says which notebook was graded, and how to grade the other."""
    root = DEFAULT_SUBMISSION.parents[1]
    rel = [str(p.relative_to(root)) if p.is_relative_to(root) else str(p) for p in (chosen, other)]
    return tr("graded {path}, the notebook with the most parts written; to grade {other} instead: "
              "pytest autograder --submission {other}").format(path=rel[0], other=rel[1])


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
