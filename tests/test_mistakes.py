"""The bank of typical student mistakes (tests/bank/mistakes.py): each loses points in its own part
only, its part's message names the likely cause (the mistake's hint), a visible check catches it
exactly when the bank says so, and at least 90% of the mistakes are caught by a visible check.

Graded in the session's one batch (``bank_grades`` in conftest.py), with the mutant bank.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.bank.mistakes import MISTAKES
from tests.conftest import REF_ID, failures, same

# the bar: at least 90% of the typical mistakes are seen in the notebook's own check cells
MIN_VISIBLE_SHARE = 0.9


def _failed(result: dict, part: str) -> list[dict]:
    data = json.loads(Path(result["json"]).read_text())
    return [t for t in data["tests"] if t.get("status") != "passed" and (t.get("tags") or [""])[0] == part]


@pytest.mark.parametrize("mistake", MISTAKES, ids=[m.id for m in MISTAKES])
def test_mistakes_lose_points_with_their_hint(bank_grades, mistake):
    assert mistake.id not in bank_grades["edit_errors"], bank_grades["edit_errors"].get(mistake.id)
    ref = bank_grades["results"][REF_ID]
    r = bank_grades["results"][mistake.id]
    assert r["status"] == "ok", f"{mistake.id} ({mistake.why}) was not graded: {r['status']}: {r['message']}"
    wrong = [p for p in ref["parts"] if p != mistake.part and not same(r["parts"][p], ref["parts"][p])]
    assert not wrong, f"{mistake.id} ({mistake.why}) lost points in {wrong} too: {failures(r)}"
    assert r["parts"][mistake.part] < ref["parts"][mistake.part] - 1e-9, f"{mistake.id} ({mistake.why}) was not caught"
    failed = _failed(r, mistake.part)
    messages = [str(t.get("output", "")) for t in failed]
    assert any(mistake.hint in m for m in messages), (
        f"{mistake.id} ({mistake.why}): no message of part {mistake.part} says {mistake.hint!r}: {messages}")
    seen = any(t.get("visibility") == "visible" for t in failed)
    assert seen == mistake.visible, (
        f"{mistake.id} ({mistake.why}): the bank says visible={mistake.visible}, but a visible check "
        f"{'caught' if seen else 'did not catch'} it: {[t['name'] for t in failed]}")


def test_mistakes_bank_is_large_and_mostly_visible():
    """>= 40 mistakes, >= 90% caught by a visible check (each flag is verified by the test above)."""
    assert len(MISTAKES) >= 40, f"the bank holds {len(MISTAKES)} mistakes, expected at least 40"
    assert len({m.id for m in MISTAKES}) == len(MISTAKES), "duplicate mistake ids"
    assert all(m.hint for m in MISTAKES), "every mistake names the hint its message must contain"
    share = sum(m.visible for m in MISTAKES) / len(MISTAKES)
    assert share >= MIN_VISIBLE_SHARE, f"only {share:.0%} of the mistakes are caught by a visible check"
