"""A check during which the worker died gets one fair second run in a fresh worker."""

from __future__ import annotations

import pytest

from autograder.engine.submission import RemoteSubmission


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    """Run a check; if the worker died while it ran and it failed, run it once more in a fresh
    worker. A death is charged to the check (to its part) only when its own code kills the worker
    again: a death that a timer or a thread of other code caused lands on whichever check happens
    to run, and that check gets a fair second run instead (so every run gives the same grade)."""
    submission = pyfuncitem.funcargs.get("sub")
    if not isinstance(submission, RemoteSubmission):
        return None
    kwargs = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    deaths = len(submission.deaths)
    try:
        pyfuncitem.obj(**kwargs)
    except Exception:
        if len(submission.deaths) == deaths or submission.budget_spent():
            raise
        submission.forget_deaths(deaths)
        submission.reset()
        pyfuncitem.obj(**kwargs)
    return True
