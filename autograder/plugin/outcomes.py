"""Each check's verdict, recorded as an ``Outcome`` (part, check name, status, the message a
student reads); pytest's own failure text is replaced by that message."""

from __future__ import annotations

import builtins

import pytest

from autograder import i18n
from autograder import parts as registry
from autograder.checks.verdicts import explain
from autograder.engine import report
from autograder.i18n import tr
from autograder.plugin.collection import is_hidden, part_of
from autograder.plugin.grading import cause

_GROUPS = getattr(builtins, "BaseExceptionGroup", ())


def _unwrap(exc: BaseException) -> BaseException:
    # hypothesis may wrap the first failure in an ExceptionGroup
    while isinstance(exc, _GROUPS) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    try:
        _record(item, call, outcome.get_result())
    except Exception as exc:  # noqa: BLE001 - never an INTERNALERROR: the check counts as failed
        item.config._gptlab.notes.append(f"the grader could not record {item.nodeid}: {cause(exc)}")


def _record(item, call, rep) -> None:
    part = part_of(item)
    if not part or (call.when == "teardown" and not rep.failed):
        return
    if call.when == "setup" and rep.passed:
        return
    grading = item.config._gptlab
    name = i18n.check_name(item.originalname.removeprefix(f"test_{part}_").replace("_", " "))
    callspec = getattr(item, "callspec", None)
    if callspec is not None:
        name += f" [{callspec.id}]"
    if rep.skipped:
        status, message = "pending", str(rep.longrepr[-1]) if isinstance(rep.longrepr, tuple) else ""
    elif rep.failed:
        exc = _unwrap(call.excinfo.value) if call.excinfo is not None else None
        if isinstance(exc, MemoryError):
            message = tr("the grading process ran out of memory reading this check's answers")
        else:
            try:
                message = explain(exc) if exc is not None else "failed"
            except Exception as err:  # noqa: BLE001 - a message that cannot be written is still a failure
                message = f"failed ({cause(err)})"
        status = "failed"
        rep.longrepr = f"[{part}] {name}: {message}"
    else:
        status, message = "passed", ""
    # teardown failures replace the earlier verdict of the same check
    grading.outcomes = [o for o in grading.outcomes if o.nodeid != item.nodeid]
    weight = registry.check_weight(part, item.originalname, hidden=is_hidden(item))
    grading.outcomes.append(report.Outcome(part, name, item.nodeid, is_hidden(item), status, message, weight))
