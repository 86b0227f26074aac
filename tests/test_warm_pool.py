"""instructor/warm_pool.py through grade_class: grading processes forked from a warm zygote give the
same grades as the cold path (one fresh ``python -m pytest`` per submission) on a mixed class, a
hostile submission leaves the zygote and the next submission untouched, a time-out kills the forked
grading process's whole tree, and a zygote that died is replaced."""

from __future__ import annotations

import json
import os
import signal
import textwrap
import time
from pathlib import Path

import nbformat
import psutil
import pytest

from instructor import grade_class, warm_pool
from instructor.grade_class import grade_many
from tests.bank.mutants import ALL_MUTANTS
from tests.conftest import ASSIGNMENT, REFERENCE, apply_edit, read_reference

pytestmark = pytest.mark.skipif(not warm_pool.available(), reason="no fork / SCM_RIGHTS here")

# Guarded like tests/adversarial's fork bomb: the kills only run where the submission is PID 1 of the
# grader's PID namespace (it then sees only its own processes), never on the host.
HOSTILE = textwrap.dedent("""
    import os, signal, time
    if os.getpid() == 1:
        for pid in [os.getppid()] + [int(p) for p in os.listdir("/proc") if p.isdigit()]:
            if pid not in (0, os.getpid()):
                try:
                    os.kill(pid, signal.SIGKILL)   # its parent, then everything it can see
                except OSError:
                    pass
        for _ in range(20):                        # forked sleepers left behind
            if os.fork() == 0:
                time.sleep(1000)
                os._exit(0)
    with open("fill.bin", "wb") as f:              # past the disk quota
        try:
            for _ in range(400):
                f.write(b"\\0" * (1 << 20))
        except OSError:
            pass
""")


def _class(root: Path) -> dict[str, Path]:
    subs = root / "submitted"
    subs.mkdir()
    nbformat.write(read_reference(), subs / "reference.ipynb")
    nbformat.write(nbformat.read(ASSIGNMENT, as_version=4), subs / "stubs.ipynb")
    mutant = next(m for m in ALL_MUTANTS if m.id == "head_no_scale")
    nbformat.write(apply_edit(read_reference(), mutant), subs / "mutant.ipynb")
    (subs / "broken.ipynb").write_text('{"cells": [{"cell_type": "code", "source": "x = 1"')  # cut short
    (subs / "crash.py").write_text("import os\nos._exit(1)\n")
    (subs / "hostile.py").write_text(HOSTILE)
    return grade_class.discover(subs)


def _grades(out: Path, students) -> dict[str, dict]:
    return {s: json.loads((out / f"{s}.json").read_text()) for s in students}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("warm")
    paths = _class(root)
    reference = REFERENCE
    grade_class.close_warm_pool()
    warm = grade_many(paths, root / "warm", jobs=2, reference=reference, force=True, warm=True)
    pool = grade_class._warm["pool"]
    zygote = pool.pid
    assert pool.graded == len(paths), "some submissions fell back to the cold path"
    # the next submission after the hostile one, in the same pool
    after = grade_many({"reference": paths["reference"]}, root / "after", jobs=1, reference=reference,
                       force=True, warm=True)
    zygote_after = pool.pid
    cold = grade_many(paths, root / "cold", jobs=2, reference=reference, force=True, warm=False)
    return {"root": root, "paths": paths, "warm": warm, "cold": cold, "after": after, "zygote": zygote,
            "zygote_after": zygote_after}


@pytest.mark.e2e_paths
def test_warm_pool_grades_identical_to_cold(graded):
    root, students = graded["root"], list(graded["paths"])
    warm, cold = _grades(root / "warm", students), _grades(root / "cold", students)
    for s in students:
        assert warm[s] == cold[s], f"{s}: the warm pool's results.json differs from the cold path's"
    assert (root / "warm" / "grades.csv").read_text() == (root / "cold" / "grades.csv").read_text()
    totals = {s: graded["warm"][s]["total"] for s in students}
    # the comparison is not vacuous: the class holds full marks, partial marks and zeros
    assert totals["mutant"] < totals["reference"] and totals["stubs"] < totals["reference"]
    assert totals["broken"] == totals["crash"] == 0
    assert graded["warm"]["broken"]["status"] == "error"
    assert graded["warm"]["reference"]["status"] == "ok"


@pytest.mark.e2e_paths
def test_warm_pool_survives_hostile_submission(graded):
    assert graded["zygote"] is not None and graded["zygote"] == graded["zygote_after"], "the zygote was replaced"
    assert psutil.pid_exists(graded["zygote"])
    root = graded["root"]
    assert _grades(root / "after", ["reference"]) == _grades(root / "cold", ["reference"])
    assert graded["warm"]["hostile"]["status"] == "ok" and graded["warm"]["hostile"]["total"] == 0
    # nothing it forked outlived its grading: no process of this test's runs is left
    leftovers = [p for p in psutil.Process(graded["zygote"]).children(recursive=True)]
    assert leftovers == [], leftovers


def test_warm_pool_timeout_kills_the_grading_tree(tmp_path):
    hung = tmp_path / "hung.py"
    hung.write_text("".join("# %%\nwhile True:\n    pass\n" for _ in range(60)))
    pool = warm_pool.WarmPool().start()
    try:
        started = time.monotonic()
        result = grade_class.grade_one("hung", hung, tmp_path, REFERENCE, 15, grade_class.rubric_parts(), pool)
        # 15 s of limit + the tree's kill and the zygote's answer: well under a minute even on a busy machine
        assert time.monotonic() - started < 60
        assert result["status"] == "timeout"
        time.sleep(1)
        assert psutil.Process(pool.pid).children(recursive=True) == []
    finally:
        pool.close()


def test_warm_pool_replaces_a_dead_zygote(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("my answers are in the notebook, sorry\n")
    pool = warm_pool.WarmPool().start()
    try:
        first = pool.pid
        os.kill(first, signal.SIGKILL)
        time.sleep(0.5)
        result = grade_class.grade_one("notes", notes, tmp_path, REFERENCE, 120, grade_class.rubric_parts(), pool)
        assert result["status"] == "error", result
        assert pool.pid is not None and pool.pid != first and pool.starts == 2 and pool.graded == 1
    finally:
        pool.close()


PROBE = """
import json, os, sys, tempfile


def test_probe():
    json.dump({"env": dict(os.environ), "cwd": os.getcwd(), "tmp": tempfile.gettempdir(), "path0": sys.path[0],
               "session_leader": os.getsid(0) == os.getpid(), "ppid_is_zygote": os.getppid() == int(os.environ["ZYGOTE"])},
              open(os.environ["PROBE_OUT"], "w"))
    assert os.environ.get("PROBE_FAIL") != "1"
"""


def test_warm_pool_child_is_a_fresh_grading_process(tmp_path):
    """What a forked grading process sees is the request's, not the zygote's: environment (exactly),
    working folder, TMPDIR, its own session, its log; its exit status is pytest's (0 passed, 1 failed)."""
    probe = tmp_path / "probe_check.py"
    probe.write_text(PROBE)
    pool = warm_pool.WarmPool().start()
    try:
        for fail, expected_rc in (("0", 0), ("1", 1)):
            work = tmp_path / f"work{fail}"
            work.mkdir()
            env = {"PATH": "/usr/bin:/bin", "TMPDIR": str(work), "PROBE_OUT": str(work / "probe.json"),
                   "PROBE_FAIL": fail, "ZYGOTE": str(pool.pid), "OMP_NUM_THREADS": "1"}
            rc = pool.run(["-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(probe)], work, env,
                          work / "pytest.log", timeout=120)
            assert rc == expected_rc, (work / "pytest.log").read_text()
            seen = json.loads((work / "probe.json").read_text())
            # pytest sets PYTEST_VERSION and PYTEST_CURRENT_TEST in its own process, cold or warm
            assert {k: v for k, v in seen["env"].items() if not k.startswith("PYTEST_")} == env
            assert seen["cwd"] == str(work) and seen["tmp"] == str(work)
            assert seen["session_leader"] and not seen["ppid_is_zygote"]  # the monitor in between
            assert ("1 passed" if fail == "0" else "1 failed") in (work / "pytest.log").read_text()
        assert pool.graded == 2 and pool.starts == 1
    finally:
        pool.close()
