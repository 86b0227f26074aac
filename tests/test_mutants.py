"""End to end (the ``e2e_bank`` tier): every mutant of the reference (tests/bank/mutants.py) loses points
in its own part and only there, through the whole grading path (grade_class, a worker per submission);
the reference gets full marks, the untouched assignment none, and grading is repeatable.

The whole bank is graded once per session, in one batch (``bank_grades`` in conftest.py). The same
rules (tests/bank/banks.py) are applied to in-process grades in the default tier
(tests/test_bank_inprocess.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bank import banks
from tests.conftest import ASSIGNMENT_ID, REF_AGAIN_ID, REF_ID

pytestmark = pytest.mark.e2e_bank

_BANK = banks.bank("mutants")
_CASES = _BANK.cases()


@pytest.fixture(scope="session")
def reference(bank_grades):
    ref = bank_grades["results"][REF_ID]
    assert ref["status"] == "ok", f"the reference could not be graded: {ref['message']}"
    return ref


@pytest.mark.parametrize("mutant", _CASES, ids=[m.id for m in _CASES])
def test_mutant_loses_points_only_in_its_part(bank_grades, reference, mutant):
    assert mutant.id not in bank_grades["edit_errors"], bank_grades["edit_errors"].get(mutant.id)
    problems = banks.problems(_BANK, mutant, bank_grades["results"][mutant.id], reference)
    assert not problems, "\n".join(problems)


def test_reference_gets_full_marks(reference):
    problems = banks.reference_problems(reference)
    assert not problems, "\n".join(problems)


def test_assignment_scores_zero_and_says_not_implemented(bank_grades, reference):
    """The untouched assignment: nothing for the parts the student writes, each check saying
    "not implemented yet"; full marks for multihead (given complete, checked without its Head)."""
    problems = banks.assignment_problems(bank_grades["results"][ASSIGNMENT_ID], reference)
    assert not problems, "\n".join(problems)


def test_grading_is_repeatable(bank_grades):
    a, b = (bank_grades["results"][s] for s in (REF_ID, REF_AGAIN_ID))
    assert Path(a["json"]).read_bytes() == Path(b["json"]).read_bytes(), \
        "grading the same submission twice gave different results.json files"
