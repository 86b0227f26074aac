"""End to end (the ``e2e_bank`` tier): valid alternative implementations (tests/bank/alternatives.py)
get full marks in every part.

Graded in the same session batch as the mutants (``bank_grades`` in conftest.py); the same rule
(tests/bank/banks.py) is applied in-process in the default tier (tests/test_bank_inprocess.py).
"""

from __future__ import annotations

import pytest

from tests.bank import banks
from tests.conftest import REF_ID

pytestmark = pytest.mark.e2e_bank

_BANK = banks.bank("alternatives")
_CASES = _BANK.cases()


@pytest.mark.parametrize("alternative", _CASES, ids=[a.id for a in _CASES])
def test_alternative_gets_full_marks(bank_grades, alternative):
    assert alternative.id not in bank_grades["edit_errors"], bank_grades["edit_errors"].get(alternative.id)
    ref = bank_grades["results"][REF_ID]
    assert ref["status"] == "ok", f"the reference could not be graded: {ref['message']}"
    problems = banks.problems(_BANK, alternative, bank_grades["results"][alternative.id], ref)
    assert not problems, "\n".join(problems)
