"""Valid alternative implementations (tests/bank/alternatives.py) get full marks in every part.

Graded in the same session batch as the mutants (``bank_grades`` in conftest.py).
"""

from __future__ import annotations

import pytest

from tests.bank.alternatives import ALL_ALTERNATIVES, ALTERNATIVES
from tests.conftest import FULL_BANK, REF_ID, failures, same


_BANK = ALL_ALTERNATIVES if FULL_BANK else ALTERNATIVES


@pytest.mark.parametrize("alternative", _BANK, ids=[a.id for a in _BANK])
def test_alternative_gets_full_marks(bank_grades, alternative):
    assert alternative.id not in bank_grades["edit_errors"], bank_grades["edit_errors"].get(alternative.id)
    ref = bank_grades["results"][REF_ID]
    assert ref["status"] == "ok", f"the reference could not be graded: {ref['message']}"
    r = bank_grades["results"][alternative.id]
    assert r["status"] == "ok", f"alternative {alternative.id} was not graded: {r['status']}: {r['message']}"
    lost = [p for p in ref["parts"] if not same(r["parts"][p], ref["max"][p])]
    assert not lost, (
        f"alternative {alternative.id} ({alternative.why}, part {alternative.part}) was penalised in "
        f"{', '.join(lost)}: " + " | ".join(f"{p} {r['parts'][p]:g}/{ref['max'][p]:g}: {failures(r, p)}" for p in lost))
