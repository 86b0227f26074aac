"""The fixtures a check asks for: ``sub`` (the student's submission, in its worker, reset before
each check) and ``ref`` (the reference solution, loaded in this process on first use)."""

from __future__ import annotations

import pytest

from autograder.checks.verdicts import CheckFailed
from autograder.engine.submission import SubmissionFailure
from autograder.i18n import tr


@pytest.fixture
def sub(request):
    grading = request.config._gptlab
    if grading.budget_spent():
        raise CheckFailed(tr("not run: the grading run's {seconds:g} s budget was spent").format(seconds=grading.budget_s))
    submission = grading.submission()
    deaths = len(submission.deaths)
    try:
        submission.reset()
    except SubmissionFailure:
        if len(submission.deaths) == deaths:
            raise
        submission.forget_deaths(deaths)  # the worker died between checks: once more, fresh
        submission.reset()
    return submission


@pytest.fixture(scope="session")
def ref(request):
    return request.config._gptlab.reference()
