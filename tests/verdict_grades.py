"""Grade a submission in this process, part by part, with the registry's weighted shares.

For the verdict banks (tests/test_verdict_banks.py): every check of every part (visible and
hidden) runs on ``LocalSubmission`` (the same checks, the same JSON round trip as the worker's),
against the reference, and each part's score is ``report.PartScore``'s, weights included. Fast
enough to grade dozens of submissions in a test; the real worker path is sampled separately.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import warnings
from fractions import Fraction
from pathlib import Path

from autograder import parts as registry
from autograder.checks.verdicts import explain
from autograder.engine import report
from autograder.engine.load import python_source, read_submission
from autograder.engine.run_cells import run_cell
from autograder.engine.submission import LocalSubmission

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "solutions" / "gpt_lab.ipynb"

_reference = None


def reference() -> LocalSubmission:
    global _reference
    if _reference is None:
        _reference = LocalSubmission.from_program(read_submission(REFERENCE))
    return _reference


def load(path: Path) -> LocalSubmission:
    """The submission in this process, with the worker's guard (its monkeypatching of torch and of
    the grader's modules undone after each request, as in the worker)."""
    from autograder.engine.worker_ops import Guard

    sub = LocalSubmission()
    sub.runtime.guard = Guard()
    program = read_submission(Path(path))
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        for cell in program.cells:
            sub.load_report.append(run_cell(sub.runtime.ns, cell.number, python_source(cell),
                                            program.path.suffix == ".py", cell.label))
    sub.runtime.guard.restore()
    return sub


def grade(path: Path, parts: tuple[str, ...] | None = None) -> dict[str, dict]:
    """{part: {"score": Fraction, "points": Fraction, "failed": {check: message}}}."""
    sub, ref = load(path), reference()
    rubric, bonus = registry.rubric()
    out = {}
    for pid in parts or registry.ids():
        outcomes = []
        for label, fn, kwargs in registry.checks_of(pid, hidden=True):
            hidden = fn.__module__.startswith("autograder.checks.hidden.")
            args = {"ref": ref} if "ref" in inspect.signature(fn).parameters else {}
            try:
                with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                    warnings.simplefilter("ignore")
                    fn(sub, **args, **kwargs)
                status, message = "passed", ""
            except Exception as exc:  # noqa: BLE001 - every failure is a verdict
                while getattr(exc, "exceptions", None):
                    exc = exc.exceptions[0]
                status, message = "failed", explain(exc)
            finally:
                sub.runtime.op_reset()
                ref.runtime.op_reset()
            outcomes.append(report.Outcome(pid, label, label, hidden, status, message,
                                           registry.check_weight(pid, fn.__name__, hidden)))
        score = report.PartScore(pid, rubric[pid], pid in bonus, outcomes)
        out[pid] = {"score": score.score, "points": score.points,
                    "failed": {o.name: o.message for o in outcomes if o.status != "passed"}}
    return out


def _grade_planted(path, parts, plant):
    if plant is not None:
        plant()  # a planted bug: a defence removed, in this child only
    return grade(path, parts)


def grade_apart(path: Path, parts: tuple[str, ...] | None = None, plant=None) -> dict[str, dict]:
    """``grade`` in a forked child: whatever a submission does to this process (in the worker it
    would do it to the worker) dies with the child; so does ``plant`` (a module-level function that
    removes a defence, for planted-bug rows)."""
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(1) as pool:
        return pool.apply(_grade_planted, (str(path), parts, plant))


def share(result: dict, pid: str) -> Fraction:
    return result[pid]["score"] / result[pid]["points"] if result[pid]["points"] else Fraction(1)
