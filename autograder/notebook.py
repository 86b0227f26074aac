"""The check cells of the notebook: ``check("head", globals())`` (runs in the student's own kernel).

The student's immediate self-check: it runs the visible checks of one part in the notebook's own
process (on Colab too) and prints one line per check and the visible checks' share of the part's
points. It returns None, so the cell's only visible output is that report (a returned number would
show as a stray ``Out[n]``). Nothing it prints counts at grading time: every grade (``pytest autograder``,
``grade_class``, Gradescope, ``nbgrader autograde``) is computed by the isolated grader, outside
the process that runs the student's code. So this module never reads the reference solution and
never runs a hidden check.
"""

from __future__ import annotations

import contextlib
import io
import warnings
import inspect
from fractions import Fraction

from autograder import i18n, parts
from autograder.checks.verdicts import explain
from autograder.i18n import Num, tr


WEIGHTS: dict[str, dict[str, int]] = {}  # part -> check label -> weight, filled by run_part


def run_part(part: str, namespace: dict) -> tuple[list[tuple[str, str]], int]:
    """[(check name, "" if passed else message)] of the part's visible checks, and their number."""
    from autograder.engine.submission import LocalSubmission

    sub = LocalSubmission(namespace)
    results = []
    weights = WEIGHTS.setdefault(part, {})
    for name, fn, kwargs in parts.checks_of(part):
        if "ref" in inspect.signature(fn).parameters:
            continue  # needs the reference: only the isolated grader runs it
        try:
            fn(sub, **kwargs)
            results.append((name, ""))
            weights[name] = parts.check_weight(part, fn.__name__)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message for the student
            while getattr(exc, "exceptions", None):  # hypothesis groups
                exc = exc.exceptions[0]
            results.append((name, explain(exc)))
            weights[name] = parts.check_weight(part, fn.__name__)
        finally:
            sub.runtime.op_reset()
    return results, len(results)


def check(part: str, namespace: dict) -> None:
    """Run a part's visible checks on the notebook's globals: a self-check, never a grade. Its messages
    are in the notebook's language: the ``LAB_LANGUAGE`` global that a translated notebook's setup cell
    defines (English without it)."""
    lang = namespace.get("LAB_LANGUAGE") if isinstance(namespace, dict) else None
    with i18n.using(lang if isinstance(lang, str) else None):
        _check(part, namespace)


def _check(part: str, namespace: dict) -> None:
    if part not in parts.PARTS:
        raise ValueError(tr("unknown part {part}; parts are {parts}").format(part=repr(part),
                                                                             parts=", ".join(parts.PARTS)))
    # nbgrader gives 0 to a test cell that writes to stderr: keep warnings out of it
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        results, total = run_part(part, namespace)
    points = parts.part(part).points
    pending = parts.hidden_counts().get(part, 0)
    passed = sum(1 for _, message in results if not message)
    weight = WEIGHTS.get(part, {})
    earned = sum(weight.get(name, 1) for name, message in results if not message)
    whole = sum(weight.get(name, 1) for name, _ in results) + pending * parts.check_weight(part, "", hidden=True)
    for name, message in results:
        text = "".join(f"\n         {line}" for line in message.splitlines())  # every line under its check
        print(f"  [{'PASS' if not message else 'FAIL'}] {part}: {i18n.check_name(name)}" + text)
    score = points * earned / whole if whole else Fraction(0)
    more = ""
    if pending:
        more = (tr("; 1 hidden check runs at grading time") if pending == 1 else
                tr("; {count} hidden checks run at grading time").format(count=pending))
    print(tr("{part}: {passed}/{total} visible checks passed{more}: {score:.2f} of {points:.2f} points so far "
             "(a self-check: the autograder grades)").format(part=part, passed=passed, total=total, more=more,
                                                            score=Num(score), points=Num(points)))
