"""The bank of typical student mistakes (tests/bank/mistakes.py): each loses points in its own part
only, its part's message names the likely cause (the mistake's hint), a visible check catches it
exactly when the bank says so, ONE visible check reports it (the others that fail say "not
measured" and name that check: no knock-on messages), and at least 90% of the mistakes are caught
by a visible check.

Graded in the session's one batch (``bank_grades`` in conftest.py), with the mutant bank.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.bank.mistakes import MISTAKES
from tests.conftest import REF_ID, failures, same

# the bar: at least 90% of the typical mistakes are seen in the notebook's own check cells
MIN_VISIBLE_SHARE = 0.9


NOT_MEASURED = "not measured:"


def _check(test: dict) -> str:
    """A check's name in results.json without its part and parameters: "head: causal [x]" -> "causal"."""
    name = str(test.get("name", "")).split(": ", 1)[-1]
    return re.sub(r" \[.*\]$", "", name)


def _failed(result: dict, part: str) -> list[dict]:
    data = json.loads(Path(result["json"]).read_text())
    return [t for t in data["tests"] if t.get("status") != "passed" and (t.get("tags") or [""])[0] == part]


@pytest.mark.parametrize("mistake", MISTAKES, ids=[m.id for m in MISTAKES])
def test_mistakes_lose_points_with_their_hint(bank_grades, mistake):
    assert mistake.id not in bank_grades["edit_errors"], bank_grades["edit_errors"].get(mistake.id)
    ref = bank_grades["results"][REF_ID]
    r = bank_grades["results"][mistake.id]
    assert r["status"] in ("ok", "hung"), f"{mistake.id} ({mistake.why}) was not graded: {r['status']}: {r['message']}"  # hung: graded
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
    # one failure per cause: one visible check reports it (with the hint); every other visible check
    # of the part that fails says "not measured" and names that check, never the hint again
    visible = [t for t in failed if t.get("visibility") == "visible"]
    reporting = {_check(t) for t in visible if not str(t.get("output", "")).startswith(NOT_MEASURED)}
    assert reporting == ({mistake.check} if mistake.visible else set()), (
        f"{mistake.id} ({mistake.why}): expected one visible check to report it ({mistake.check!r}), "
        f"these did: {sorted(reporting)}: {failures(r, mistake.part)}")
    if mistake.visible:
        own = [str(t.get("output", "")) for t in visible if _check(t) == mistake.check]
        assert any(mistake.hint in m for m in own), (
            f"{mistake.id} ({mistake.why}): check {mistake.check!r} does not say {mistake.hint!r}: {own}")
        for t in visible:
            out = str(t.get("output", ""))
            if _check(t) != mistake.check:  # the owner's name may hold the hint's words: not a repetition
                assert f"'{mistake.check}'" in out and mistake.hint not in out.replace(f"'{mistake.check}'", ""), (
                    f"{mistake.id} ({mistake.why}): {t['name']} repeats the cause instead of naming "
                    f"{mistake.check!r}: {out[:300]}")


def test_mistakes_bank_is_large_and_mostly_visible():
    """>= 40 mistakes, >= 90% caught by a visible check (each flag is verified by the test above)."""
    assert len(MISTAKES) >= 40, f"the bank holds {len(MISTAKES)} mistakes, expected at least 40"
    assert len({m.id for m in MISTAKES}) == len(MISTAKES), "duplicate mistake ids"
    assert all(m.hint for m in MISTAKES), "every mistake names the hint its message must contain"
    assert all(bool(m.check) == m.visible for m in MISTAKES), "every visible mistake names the check that reports it"
    share = sum(m.visible for m in MISTAKES) / len(MISTAKES)
    assert share >= MIN_VISIBLE_SHARE, f"only {share:.0%} of the mistakes are caught by a visible check"
