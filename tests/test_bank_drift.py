"""In-process and end-to-end grades agree, check by check: the default tier's in-process bank
(tests/bank/inprocess.py) proves what the end-to-end bank proves only while the two give the same
verdicts. They cannot drift apart unnoticed:

- default tier: a sample of every bank (``SAMPLE`` cases each: the first edit of a cell and the first
  rewrite, when the bank has one), the reference and the untouched assignment are graded both ways:
  end to end as a small class through ``grade_class`` (each one a ``pytest autograder`` run with its
  worker) and in-process; every check's status and message, and the score, are equal. This is also
  the default tier's end-to-end slice of the bank.
- ``e2e_bank`` tier: the same comparison for every case of every bank (the session's ``bank_grades``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from autograder.engine.report import GRADED
from tests.bank import banks, inprocess
from tests.bank import Rewrite
from tests.conftest import ASSIGNMENT, ASSIGNMENT_ID, REF_ID, REFERENCE, read_reference, write_edit

SAMPLE = 2  # cases per bank in the default tier


def sample(bank: banks.Bank) -> list:
    """The first plain edit and the first rewrite of a bank (its first two cases when it has no rewrite)."""
    cases = bank.cases()
    edits = [c for c in cases if not isinstance(c, Rewrite)]
    rewrites = [c for c in cases if isinstance(c, Rewrite)]
    chosen = (edits[:1] + rewrites[:1]) if edits and rewrites else cases[:SAMPLE]
    return chosen[:SAMPLE]


def disagreements(case_id: str, end_to_end: dict, in_process: dict) -> list[str]:
    """Where two results.json dicts differ: a check's status or message, a check on one side only, the score."""
    a, b = inprocess.verdicts(end_to_end), inprocess.verdicts(in_process)
    out = [f"{case_id}: {name}: end to end {a.get(name, ('absent', ''))}, in-process {b.get(name, ('absent', ''))}"
           for name in sorted(set(a) | set(b)) if a.get(name) != b.get(name)]
    if end_to_end.get("score") != in_process.get("score"):
        out.append(f"{case_id}: score end to end {end_to_end.get('score')}, in-process {in_process.get('score')}")
    return out


def test_drift_guard_sees_a_changed_verdict():
    """The comparison is not vacuous: a flipped status, a changed message, a missing check are reported."""
    data = {"score": 1, "tests": [{"name": "head: causal", "status": "passed", "output": ""},
                                  {"name": "head: shape", "status": "failed", "output": "wrong shape"}]}
    assert not disagreements("x", data, json.loads(json.dumps(data)))
    flipped = json.loads(json.dumps(data))
    flipped["tests"][0]["status"] = "failed"
    assert disagreements("x", data, flipped)
    reworded = json.loads(json.dumps(data))
    reworded["tests"][1]["output"] = "another message"
    assert disagreements("x", data, reworded)
    assert disagreements("x", data, dict(data, tests=data["tests"][:1]))


def test_inprocess_and_end_to_end_agree_on_a_sample_of_every_bank(tmp_path):
    from instructor.grade_class import grade_many

    notebook = read_reference()
    subs = tmp_path / "submissions"
    paths = {}
    for sid, source in ((REF_ID, REFERENCE), (ASSIGNMENT_ID, ASSIGNMENT)):
        (subs / sid).mkdir(parents=True)
        paths[sid] = Path(shutil.copy(source, subs / sid / "gpt_lab.ipynb"))
    for bank in banks.BANKS:
        chosen = sample(bank)
        assert chosen, f"bank {bank.name} is empty"
        for edit in chosen:
            paths[edit.id] = write_edit(edit, subs, notebook)
    results = grade_many(paths, tmp_path / "out", jobs=2, timeout=300, reference=paths[REF_ID])
    local = inprocess.grade_many(list(paths.values()), reference=paths[REF_ID])
    problems = []
    for sid, path in paths.items():
        r = results[sid]
        if r["status"] not in GRADED:
            problems.append(f"{sid}: not graded end to end: {r['status']}: {r['message']}")
            continue
        problems += disagreements(sid, json.loads(Path(r["json"]).read_text()), local[path])
    assert not problems, f"{len(problems)} verdicts differ:\n" + "\n".join(problems[:30])


@pytest.mark.e2e_bank
def test_inprocess_and_end_to_end_agree_on_every_case(bank_grades, tmp_path):
    notebook = read_reference()
    paths = {REF_ID: REFERENCE, ASSIGNMENT_ID: ASSIGNMENT}
    for _, edit in banks.all_cases():
        if edit.id not in bank_grades["edit_errors"]:
            paths[edit.id] = write_edit(edit, tmp_path, notebook)
    local = inprocess.grade_many(list(paths.values()))
    problems = []
    for sid, path in paths.items():
        r = bank_grades["results"][sid]
        if r["status"] not in GRADED:
            problems.append(f"{sid}: not graded end to end: {r['status']}: {r['message']}")
            continue
        problems += disagreements(sid, json.loads(Path(r["json"]).read_text()), local[path])
    assert not problems, f"{len(problems)} verdicts differ:\n" + "\n".join(problems[:40])
