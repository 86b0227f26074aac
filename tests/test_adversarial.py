"""The adversarial bank (tests/adversarial/cases.py): every hostile submission is graded by a real
``pytest autograder`` run and must get exactly its expected score per part, within its time
budget, without touching the repository or leaving processes behind.

All runs of the session happen once, two at a time (``adversarial_runs``); each test then checks
one case. A case that fails because the grader is wrong stays failing: its message quotes the
grader's output for the lead.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests import grade_snapshot
from tests.adversarial import helpers as H
from tests.adversarial.cases import ANY, BELOW, BY_ID, CASES, FULL, ZERO, Only, is_slow

pytestmark = pytest.mark.hostile

JOBS = 2
SLACK_S = 90.0  # a run is killed this long past its budget (so an overrun is measured, not endless)


def _selected(session) -> list:
    ids = []
    for item in session.items:
        cs = getattr(item, "callspec", None)
        if cs is not None and Path(str(item.fspath)).name == "test_adversarial.py" and "case" in cs.params:
            ids.append(cs.params["case"].id)
    return [BY_ID[i] for i in dict.fromkeys(ids)]


@pytest.fixture(scope="session")
def adversarial_runs(request, tmp_path_factory):
    cases = _selected(request.session)
    if "reference" not in {c.id for c in cases}:
        cases.append(BY_ID["reference"])
    root = tmp_path_factory.mktemp("adversarial")
    before = H.tracked_hashes()
    built = {}
    for case in cases:
        folder = root / case.id
        try:
            sub, ctx = case.build(folder)
            if sub.exists():
                ctx["submission_hashes"] = H.tree_hashes(sub.parent)
            built[case.id] = (sub, ctx)
        except Exception as exc:  # noqa: BLE001 - reported by the case's test
            built[case.id] = exc

    def job(case):
        item = built[case.id]
        if isinstance(item, Exception):
            return case.id, item
        sub, ctx = item
        json_path = Path(ctx["json"]) if "json" in ctx else None
        run = H.grade(case.id, sub, root / case.id, case.budget_s + SLACK_S, json_path=json_path, args=case.args)
        run.context = ctx
        run.context["after_problems"] = case.after(run) if case.after else []
        return case.id, run

    start = time.monotonic()
    order = sorted(cases, key=lambda c: -c.budget_s)  # longest first: the two queues end together
    with ThreadPoolExecutor(JOBS) as pool:
        runs = dict(pool.map(job, order))
    elapsed = time.monotonic() - start
    time.sleep(1.0)
    timings = sorted(((r.seconds, cid) for cid, r in runs.items() if isinstance(r, H.Run)), reverse=True)
    report = root / "timings.json"
    report.write_text(json.dumps({"wall_s": elapsed, "runs": timings}, indent=1))
    print(f"\nadversarial bank: {len(runs)} runs in {elapsed:.0f} s; slowest: "
          + ", ".join(f"{cid} {s:.1f}s" for s, cid in timings[:5]))
    yield {"runs": runs, "root": root, "before": before, "wall_s": elapsed, "timings": timings}
    # whatever the verdicts, leave no process of the bank behind (only ours: marked, or living in a run's TMPDIR)
    H.kill_strays([r.tmpdir for r in runs.values() if isinstance(r, H.Run)])


class CheckNames(list):
    """A part's check names as the reference's results.json gives them, with each check's share of the
    part's points (its ``max_score``: the registry's weights applied by the grader)."""

    def __init__(self, names=(), shares=None):
        super().__init__(names)
        self.shares = dict(shares or {})


def _reference_names(runs) -> dict[str, list[str]]:
    ref = runs["reference"]
    assert isinstance(ref, H.Run) and ref.data, f"the reference could not be graded: {getattr(ref, 'summary', lambda: ref)()}"
    names: dict[str, CheckNames] = {}
    for t in ref.data["tests"]:
        part = t["tags"][0]
        name = t["name"].split(": ", 1)[1]
        names.setdefault(part, CheckNames()).append(name)
        names[part].shares[name] = float(t.get("max_score", 0))
    return names


def _expected(case, names: dict[str, list[str]]) -> dict[str, float]:
    pts = H.points()
    out = {}
    for part in H.PARTS:
        spec = case.expect.get(part, case.base)
        if spec in (ANY, BELOW):
            out[part] = spec
        elif spec == FULL:
            out[part] = pts[part]
        elif spec == ZERO:
            out[part] = 0.0
        elif isinstance(spec, Only):
            checks = names[part]
            unknown = [p for p in spec.passing if not any(n == p or n.startswith(p + " [") for n in checks)]
            assert not unknown, f"case {case.id}: no check of part {part} is named {unknown}"
            passing = [n for n in checks if any(n == p or n.startswith(p + " [") for p in spec.passing)]
            # the passing checks' shares, weights included (the reference's results.json), not passed / checks
            shares = getattr(checks, "shares", {})
            out[part] = (sum(shares[n] for n in passing) if shares and all(n in shares for n in passing)
                         else pts[part] * len(passing) / len(checks))
        else:
            out[part] = float(spec)
    return out


def case_problems(case, run, names: dict[str, list[str]], snapshot: bool = True) -> list[str]:
    """Everything wrong with one case's run, against the case's expectations: its scores per part, its
    time budget, the exit status, its submission's folder, its TMPDIR, the case's own checks and (with
    ``snapshot``) the verdicts of the grade snapshot. Also used by tests/test_unprivileged.py."""
    want = _expected(case, names)
    problems = []
    if run.timed_out:
        problems.append(f"the grading run was still going {case.budget_s + SLACK_S:.0f} s in and was killed")
    elif run.seconds > case.budget_s:
        problems.append(f"the grading run took {run.seconds:.1f} s, over its budget of {case.budget_s:.0f} s")
    if run.data is None:
        problems.append(f"no readable results.json: {run.json_error}")
    else:
        got = run.parts()
        pts = H.points()
        for p in H.PARTS:
            if want[p] == ANY:
                continue
            if want[p] == BELOW:
                if got[p] > pts[p] - H.TOL:
                    problems.append(f"part {p}: got {got[p]:.4f}, expected less than {pts[p]:.4f}")
                continue
            if abs(got[p] - want[p]) > H.TOL:
                problems.append(f"part {p}: got {got[p]:.4f}, expected {want[p]:.4f} "
                                f"({run.failing(p) or 'all its checks passed'})")
        total = sum(got[p] if want[p] in (ANY, BELOW) else want[p] for p in H.PARTS)
        if abs(float(run.data.get("score", -1)) - total) > 0.01:
            problems.append(f"total score {run.data.get('score')} != expected {total:.4f}")
    if run.rc not in (0, 1):
        problems.append(f"pytest autograder exited with status {run.rc} (0 or 1 expected: the grading process crashed?)")
    elif run.data is not None:
        earned_all = all(abs(run.parts()[p] - H.points()[p]) <= H.TOL for p in H.PARTS)
        if (run.rc == 0) != earned_all:
            problems.append(f"exit status {run.rc} does not match the score (every point earned: {earned_all})")
    before = run.context.get("submission_hashes")
    if before is not None and H.tree_hashes(run.submission.parent) != before:
        problems.append("the submission's own folder changed during grading")
    leftovers = [p.name for p in run.tmpdir.glob("*")]
    if leftovers:
        problems.append(f"the run left files in its TMPDIR: {leftovers[:5]}")
    problems += run.context.get("after_problems", [])
    if snapshot and not run.timed_out:  # the verdicts are the snapshot's (tests/grade_snapshot.py)
        problems += grade_snapshot.compare("adversarial", case.id, run.data)
    return problems


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=[pytest.mark.slow_bank] if is_slow(c) else [])
                                  for c in CASES])
def test_adversarial_case(adversarial_runs, case):
    run = adversarial_runs["runs"][case.id]
    if isinstance(run, Exception):
        pytest.fail(f"case {case.id} could not be built: {type(run).__name__}: {run}")
    problems = case_problems(case, run, _reference_names(adversarial_runs["runs"]))
    assert not problems, f"case {case.id} ({case.why}):\n- " + "\n- ".join(problems) + "\n" + run.summary()


def test_bank_leaves_no_process_and_no_changed_file(adversarial_runs):
    """After the whole bank: no process of the runs is alive (sleepers, forked children, workers),
    and no tracked file of the repository changed."""
    runs = [r for r in adversarial_runs["runs"].values() if isinstance(r, H.Run)]
    deadline = time.monotonic() + 5
    stray = H.stray_processes([r.tmpdir for r in runs])
    while stray and time.monotonic() < deadline:
        time.sleep(0.5)
        stray = H.stray_processes([r.tmpdir for r in runs])
    after = H.tracked_hashes()
    before = adversarial_runs["before"]
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    assert not stray, "processes left running by the bank's runs:\n" + "\n".join(stray)
    assert not changed, f"tracked files of the repository changed during the bank: {changed}"
