"""Every mutant of the reference (tests/bank/mutants.py) loses points in its own part and only
there; the reference gets full marks, the untouched assignment none, and grading is repeatable.

The whole bank is graded once per session, in one batch (``bank_grades`` in conftest.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bank.mutants import ALL_MUTANTS, MUTANTS
from tests.conftest import FULL_BANK, ASSIGNMENT_ID, REF_AGAIN_ID, REF_ID, failures, same


@pytest.fixture(scope="session")
def reference(bank_grades):
    ref = bank_grades["results"][REF_ID]
    assert ref["status"] == "ok", f"the reference could not be graded: {ref['message']}"
    return ref


_BANK = ALL_MUTANTS if FULL_BANK else MUTANTS


@pytest.mark.parametrize("mutant", _BANK, ids=[m.id for m in _BANK])
def test_mutant_loses_points_only_in_its_part(bank_grades, reference, mutant):
    assert mutant.id not in bank_grades["edit_errors"], bank_grades["edit_errors"].get(mutant.id)
    assert mutant.part in reference["parts"], f"mutant {mutant.id}: unknown part {mutant.part!r}"
    r = bank_grades["results"][mutant.id]
    assert r["status"] in ("ok", "hung"), f"mutant {mutant.id} ({mutant.why}) was not graded: {r['status']}: {r['message']}"  # hung: graded, code of it ran past its limit
    wrong = [p for p in reference["parts"] if p != mutant.part and not same(r["parts"][p], reference["parts"][p])]
    assert not wrong, (
        f"mutant {mutant.id} ({mutant.why}) lost points in {', '.join(wrong)}, expected only in {mutant.part}: "
        + " | ".join(f"{p} {r['parts'][p]:g}/{reference['parts'][p]:g}: {failures(r, p)}" for p in wrong))
    assert r["parts"][mutant.part] < reference["parts"][mutant.part] - 1e-9, (
        f"mutant {mutant.id} was not caught by part {mutant.part} ({mutant.why}): "
        f"{r['parts'][mutant.part]:g}/{reference['parts'][mutant.part]:g}")
    if mutant.expect:  # the part says what is wrong, in its own words
        messages = part_messages(r, mutant.part)
        assert any(mutant.expect in m for m in messages), (
            f"mutant {mutant.id} ({mutant.why}): no message of part {mutant.part} says {mutant.expect!r}: {messages}")


def part_messages(result: dict, part: str) -> list[str]:
    """The full messages of a part's failed checks, from the results.json."""
    import json

    data = json.loads(Path(result["json"]).read_text())
    return [str(t.get("output", "")) for t in data["tests"]
            if t.get("status") != "passed" and (t.get("tags") or [""])[0] == part]


def test_reference_gets_full_marks(bank_grades, reference):
    import json

    data = json.loads(Path(reference["json"]).read_text())
    failed = [t["name"] for t in data["tests"] if t["status"] != "passed"]
    assert not failed, f"the reference failed: {failed}: {failures(reference)}"
    assert data["tests"], "the reference's results.json lists no checks"
    for part, score in reference["parts"].items():
        assert same(score, reference["max"][part]) and score > 0, f"reference: {part} {score}/{reference['max'][part]}"


# given complete in the student notebook, and checked with the grader's stand-in Head: full marks
GIVEN_PARTS = ("multihead",)


def test_assignment_scores_zero_and_says_not_implemented(bank_grades, reference):
    """The untouched assignment: nothing for the parts the student writes, each check saying
    "not implemented yet"; full marks for multihead (given complete, checked without its Head)."""
    import json

    r = bank_grades["results"][ASSIGNMENT_ID]
    assert r["status"] == "ok", r["message"]
    assert r["max"] == reference["max"], "the assignment is graded on other checks than the reference"
    for part, score in r["parts"].items():
        want = reference["max"][part] if part in GIVEN_PARTS else 0
        assert same(score, want), f"untouched assignment: {part} {score}/{r['max'][part]}, expected {want}: {r['parts']}"
    data = json.loads(Path(r["json"]).read_text())
    silent = [t["name"] for t in data["tests"]
              if t["tags"][0] not in GIVEN_PARTS and "not implemented yet" not in t["output"]]
    assert not silent, f"checks of the untouched assignment that do not say 'not implemented yet': {silent}"


def test_grading_is_repeatable(bank_grades):
    a, b = (bank_grades["results"][s] for s in (REF_ID, REF_AGAIN_ID))
    assert Path(a["json"]).read_bytes() == Path(b["json"]).read_bytes(), \
        "grading the same submission twice gave different results.json files"
