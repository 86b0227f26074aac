"""Issue 23, the worker's side: the confinement cases of the adversarial bank (tests/adversarial/cases.py,
``CONFINEMENT_CASES``) each lose their marks when their defence is switched off for the grading run
(``worker_control.SKIP_VAR``, honoured for tests only), so each case is shown to test its defence; and a
class graded with a thread bomber among honest students gives the honest ones their full grades."""

from __future__ import annotations

import csv
import subprocess
import sys

import nbformat
import pytest

from autograder.engine import worker_confine
from autograder.engine.worker_control import SKIP_VAR
from instructor.grade_class import rubric_parts
from tests.adversarial import helpers as H
from tests.adversarial.cases import BY_ID, CONFINEMENT_CASES, Case, is_slow
from tests.test_adversarial import SLACK_S, _reference_names, case_problems

needs_namespaces = pytest.mark.skipif(worker_confine.unshare_prefix() is None,
                                      reason="no namespaces here: the worker runs unconfined (README)")

# each case, and the defences that, switched off, let its submission get what it is after
WITHOUT = {
    "probe_host_files": "root",
    "connect_host_sockets": "root",
    "thread_bomb_at_load": "user,cgroup",
    "privileged_calls": "seccomp",
    "memory_across_children": "cgroup,police",
}


def test_every_confinement_case_has_its_defence_to_switch_off():
    assert set(WITHOUT) == {c.id for c in CONFINEMENT_CASES}


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reference")
    sub, ctx = BY_ID["reference"].build(folder)
    run = H.grade("reference", sub, folder, 200)
    return run


@needs_namespaces
@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=[pytest.mark.slow_bank] if is_slow(c) else [])
                                  for c in CONFINEMENT_CASES])
def test_the_case_fails_without_its_defence(case, reference_run, tmp_path):
    sub, ctx = case.build(tmp_path / case.id)
    if sub.exists():
        ctx["submission_hashes"] = H.tree_hashes(sub.parent)
    run = H.grade(case.id, sub, tmp_path / case.id, case.budget_s + SLACK_S, args=case.args,
                  env={SKIP_VAR: WITHOUT[case.id]})
    run.context = ctx
    run.context["after_problems"] = case.after(run) if case.after else []
    problems = case_problems(case, run, _reference_names({"reference": reference_run}), snapshot=False)
    assert problems, f"{case.id} kept its full marks with '{WITHOUT[case.id]}' switched off:\n" + run.summary()


HOLDING_BOMB = """
import threading
threading.stack_size(65536)
_stop, _started = threading.Event(), 0
try:
    for _ in range(20000):  # as many as it is given, held while the class is graded beside it
        threading.Thread(target=_stop.wait, args=(8,), daemon=True).start()
        _started += 1
except RuntimeError:
    pass
print("threads started", _started)
"""


@needs_namespaces
def test_honest_students_keep_their_grades_beside_a_thread_bomber(tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    reference = H.reference_nb()
    for name in ("alice", "bob"):
        nbformat.write(reference, subs / f"{name}.ipynb")
    bomber = Case("bomber", "confinement", "holds as many threads as it can", edits=(H.after_imports(HOLDING_BOMB),))
    nb = bomber.build(tmp_path / "bomber")[0]
    (subs / "mallory.ipynb").write_bytes(nb.read_bytes())
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "instructor.grade_class", str(subs), "--out", str(out), "--jobs", "3"],
                          cwd=H.REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(out / "grades.csv", newline="") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    full = {p: rows["max"][p] for p in rubric_parts()}
    # the honest students, and the bomber too (its code is the reference's): its threads only hurt itself
    for student in ("alice", "bob", "mallory"):
        row = rows[student]
        assert row["status"] == "ok" and {p: row[p] for p in rubric_parts()} == full, row
