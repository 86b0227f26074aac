"""The bank of typical student mistakes (tests/bank/mistakes.py): each loses points in its own part
only, its part's message names the likely cause (the mistake's hint), a visible check catches it
exactly when the bank says so, ONE visible check reports it (the others that fail say "not
measured" and name that check: no knock-on messages), and at least 90% of the mistakes are caught
by a visible check.

End to end (the ``e2e_bank`` tier): graded in the session's one batch (``bank_grades`` in conftest.py),
with the mutant bank; the same rules (tests/bank/banks.py) are applied in-process in the default tier
(tests/test_bank_inprocess.py). The bank's own size and share are checked in the default tier.
"""

from __future__ import annotations

import pytest

from tests.bank import banks
from tests.bank.mistakes import MISTAKES
from tests.conftest import REF_ID

# the bar: at least 90% of the typical mistakes are seen in the notebook's own check cells
MIN_VISIBLE_SHARE = 0.9


_BANK = banks.bank("mistakes")


@pytest.mark.e2e_bank
@pytest.mark.parametrize("mistake", MISTAKES, ids=[m.id for m in MISTAKES])
def test_mistakes_lose_points_with_their_hint(bank_grades, mistake):
    assert mistake.id not in bank_grades["edit_errors"], bank_grades["edit_errors"].get(mistake.id)
    problems = banks.problems(_BANK, mistake, bank_grades["results"][mistake.id], bank_grades["results"][REF_ID])
    assert not problems, "\n".join(problems)


def test_mistakes_bank_is_large_and_mostly_visible():
    """>= 40 mistakes, >= 90% caught by a visible check (each flag is verified by the test above)."""
    assert len(MISTAKES) >= 40, f"the bank holds {len(MISTAKES)} mistakes, expected at least 40"
    assert len({m.id for m in MISTAKES}) == len(MISTAKES), "duplicate mistake ids"
    assert all(m.hint for m in MISTAKES), "every mistake names the hint its message must contain"
    assert all(bool(m.check) == m.visible for m in MISTAKES), "every visible mistake names the check that reports it"
    share = sum(m.visible for m in MISTAKES) / len(MISTAKES)
    assert share >= MIN_VISIBLE_SHARE, f"only {share:.0%} of the mistakes are caught by a visible check"
