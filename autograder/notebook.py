"""The check cells of the notebook: ``check("head", globals())``.

Runs the same visible checks as ``pytest autograder`` for one part, in the notebook's own process
(immediate feedback, on Colab too), prints one line per check, and returns the part's score so
that an nbgrader test cell awards it. Checks that need the hidden reference run only at grading.
"""

from __future__ import annotations

import importlib
import inspect
from fractions import Fraction

from .checking import PARTS, explain
from .report import load_rubric


class Score(float):
    """The part's score; shown as a bare number so nbgrader reads it as the cell's points."""

    def __repr__(self) -> str:
        return f"{float(self):.4g}"


def _checks(part: str):
    module = importlib.import_module(f"autograder.test_{part}")
    found = []
    for name, fn in vars(module).items():
        if name.startswith(f"test_{part}_") and callable(fn):
            params = inspect.signature(fn).parameters
            if "ref" not in params:
                found.append((name.removeprefix(f"test_{part}_").replace("_", " "), fn))
    return found


def run_part(part: str, namespace: dict) -> tuple[list[tuple[str, str]], int]:
    """[(check name, "" if passed else message)], and the number of checks."""
    from .submission import LocalSubmission

    sub = LocalSubmission(namespace)
    results = []
    for name, fn in _checks(part):
        try:
            fn(sub)
            results.append((name, ""))
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message for the student
            while getattr(exc, "exceptions", None):  # hypothesis groups
                exc = exc.exceptions[0]
            results.append((name, explain(exc)))
        finally:
            sub.runtime.op_reset()
    return results, len(results)


def check(part: str, namespace: dict) -> Score:
    if part not in PARTS:
        raise ValueError(f"unknown part {part!r}; parts are {', '.join(PARTS)}")
    results, total = run_part(part, namespace)
    points = load_rubric()[0].get(part, Fraction(0))
    passed = sum(1 for _, message in results if not message)
    for name, message in results:
        print(f"  [{'PASS' if not message else 'FAIL'}] {part}: {name}" + (f"\n         {message}" if message else ""))
    score = points * passed / total if total else Fraction(0)
    print(f"{part}: {passed}/{total} visible checks passed"
          + ("" if passed < total else " (more checks run at grading time)"))
    return Score(float(score))
