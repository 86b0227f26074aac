"""Every grade of the banks equals the snapshot's (``tests/grade_snapshot.py``): the grader's
refactorings change no verdict, end to end (the ``e2e_bank`` tier; the default tier compares the
in-process grades: tests/test_bank_inprocess.py). The adversarial bank compares its own runs
(``test_adversarial``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import grade_snapshot


@pytest.mark.e2e_bank
def test_bank_grades_unchanged(bank_grades):
    diffs = []
    for case_id, result in sorted(bank_grades["results"].items()):
        try:
            data = json.loads(Path(result["json"]).read_text())
        except (OSError, ValueError, KeyError, TypeError):
            data = None
        diffs += grade_snapshot.compare("batch", case_id, data)
    assert not diffs, f"{len(diffs)} grades differ from the snapshot:\n" + "\n".join(diffs[:40])
    known = [c for c in bank_grades["results"] if f"batch/{c}" in grade_snapshot._load()["cases"]]
    assert len(known) >= 0.8 * len(bank_grades["results"]), "most of the bank is not in the snapshot: record it"


def test_snapshot_compare_sees_a_changed_verdict():
    """The comparison is not vacuous: a flipped check or a missing check is reported."""
    snap = grade_snapshot._load()
    key, then = next(((k, v) for k, v in snap["cases"].items() if v["checks"]), (None, None))
    assert key is not None, "the snapshot is empty"
    bank, case_id = key.split("/", 1)
    name = next(n for n, s in then["checks"].items() if s in ("passed", "failed"))
    tests = [{"name": n, "status": ("failed" if s == "passed" else "passed") if n == name else
              ("failed" if s == "time" else s), "output": ""} for n, s in then["checks"].items()]
    assert any(name in d for d in grade_snapshot.compare(bank, case_id, {"tests": tests, "score": then["score"]}))
    assert grade_snapshot.compare(bank, case_id, {"tests": tests[1:], "score": then["score"]})
