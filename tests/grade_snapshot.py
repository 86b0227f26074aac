"""Grades of the banks, kept as a snapshot: a refactoring of the grader must not change any of them.

``tests/bank/grades.json`` holds, for every case of the banks (the session batch of
``bank_grades``: the reference, the untouched assignment, mutants, alternatives, mistakes; and the
adversarial bank), the status of each check (by its results.json name, ``"<part>: <check>"``)
and the score. The tests compare each grade they obtain with it:

- every check of the snapshot has the same status now, and a part of the snapshot has no new check
  (a case or a part added since has nothing to compare); a check that failed because of time
  (a budget spent, a time limit) is left out, since which check a slow machine reaches first is
  not a property of the grader;
- the score is compared when the rubric is the one the snapshot was taken under (a change of
  points is not a change of verdicts: the statuses still have to match).

    GPTLAB_GRADES_SNAPSHOT=record pytest tests/test_bank_inprocess.py   # (re)write the banks' cases (in-process)
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SNAPSHOT = REPO / "tests" / "bank" / "grades.json"
RECORDING = os.environ.get("GPTLAB_GRADES_SNAPSHOT", "") == "record"
_TIME_WORDS = ("budget", "time limit", "timed out", "time-out", "timeout", "still running", "hung", "seconds")
_recorded: dict[str, dict] = {}


def rubric_key() -> str:
    """What the scores depend on besides the verdicts: the points of every part and the weights of
    its checks (``[parts.<id>.weights]``)."""
    from autograder import parts
    from autograder.engine.report import load_rubric

    points, bonus = load_rubric()
    weights = sorted((p.id, sorted(p.weights)) for p in parts.all_parts())
    return hashlib.sha256(json.dumps([sorted((p, str(v)) for p, v in points.items()), sorted(bonus), weights])
                          .encode()).hexdigest()[:16]


def _timing(test: dict) -> bool:
    text = str(test.get("output", "")).lower()
    return test.get("status") != "passed" and any(w in text for w in _TIME_WORDS)


def outcome(data: dict | None) -> dict:
    if not data:
        return {"checks": None, "score": None}
    return {"checks": {t["name"]: ("time" if _timing(t) else t.get("status")) for t in data.get("tests", [])},
            "score": data.get("score")}


def _load() -> dict:
    try:
        return json.loads(SNAPSHOT.read_text())
    except (OSError, ValueError):
        return {"rubric": None, "cases": {}}


def compare(bank: str, case_id: str, data: dict | None) -> list[str]:
    """Differences between this grade and the snapshot's ([] when equal, or when recording)."""
    key = f"{bank}/{case_id}"
    now = outcome(data)
    if RECORDING:
        _recorded[key] = now
        return []
    snap = _load()
    then = snap["cases"].get(key)
    if then is None:  # a case added since: nothing to compare yet (record it to protect it too)
        return []
    if then["checks"] is None or now["checks"] is None:
        return [] if then["checks"] == now["checks"] else [f"{key}: graded {now['checks'] is not None}, "
                                                           f"in the snapshot {then['checks'] is not None}"]
    diffs = []
    for name, status in then["checks"].items():
        if status == "time":
            continue
        got = now["checks"].get(name, "absent")
        if got != status and got != "time":
            diffs.append(f"{key}: check {name!r} {got}, was {status}")
    parts_then = {n.split(": ", 1)[0] for n in then["checks"]}
    new = [n for n in now["checks"] if n not in then["checks"] and n.split(": ", 1)[0] in parts_then]
    if new:
        diffs.append(f"{key}: checks not in the snapshot: {new[:5]}")
    # a score of None: not recorded under this rubric (the checks of the parts whose checks changed were
    # left out of such a case too, until it is recorded again)
    if snap.get("rubric") == rubric_key() and then["score"] is not None and now["score"] != then["score"] and not any(
            s == "time" for s in list(then["checks"].values()) + list(now["checks"].values())):
        diffs.append(f"{key}: score {now['score']}, was {then['score']}")
    return diffs


def write_recorded() -> None:
    """At the end of a recording session: merge what was graded into the snapshot."""
    if not (RECORDING and _recorded):
        return
    snap = _load()
    snap["rubric"] = rubric_key()
    snap["cases"].update(_recorded)
    snap["cases"] = dict(sorted(snap["cases"].items()))
    SNAPSHOT.write_text(json.dumps(snap, indent=0, sort_keys=True) + "\n")
