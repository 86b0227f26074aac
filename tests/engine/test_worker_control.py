"""engine/worker_control.py: a real worker started, asked, limited in time, and killed with its tree."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import psutil
import pytest

from autograder.engine import wire, worker_control
from autograder.engine.worker_control import WorkerDied

from .conftest import run_in, value_in


def test_start_and_a_request(worker):
    assert worker.alive
    assert run_in(worker, "import os, resource\nx = 6 * 7\nenv = dict(os.environ)\n"
                          "limits = [resource.getrlimit(resource.RLIMIT_AS)[0], resource.getrlimit(resource.RLIMIT_CORE)[0]]")["ok"]
    assert value_in(worker, "x") == 42
    env = value_in(worker, "env")
    assert not any(k.startswith(("PYTEST", "NBGRADER", "PYTHON")) for k in env), sorted(env)
    assert env["HOME"] == str(worker.workdir) and env["PATH"] == "/usr/bin:/bin"
    assert value_in(worker, "limits") == [worker.memory_mb << 20, 0]


def test_a_failing_cell_is_an_answer_and_the_worker_lives_on(worker):
    outcome = run_in(worker, "raise KeyError('no such char')")
    assert not outcome["ok"] and outcome["error_type"] == "KeyError"
    answer = worker.request({"op": "global", "name": "never_defined"}, 10)
    assert answer["ok"] is False and answer["error"]["type"] == "NameError"
    assert worker.alive


def test_soft_time_limit_interrupts_and_the_worker_answers_again(worker):
    start = time.monotonic()
    answer = worker.request({"op": "exec_cell", "number": 1, "source": "while True:\n    pass\n"}, 0.5)
    assert answer["ok"] is False and answer["error"]["type"] == "Timeout"
    assert time.monotonic() - start < 0.5 + worker_control.GRACE_S
    assert run_in(worker, "after = 1")["ok"] and value_in(worker, "after") == 1


def test_an_oversized_answer_is_refused_by_the_worker(worker):
    assert run_in(worker, f"big = 'x' * {wire.MAX_ANSWER_BYTES + 10}")["ok"]
    answer = worker.request({"op": "global", "name": "big"}, 30)
    assert answer["ok"] is False and answer["error"]["type"] == "OutputTooLarge"
    assert run_in(worker, "del big")["ok"]


def test_the_deadline_bounds_a_request():
    w = worker_control.Worker()
    with pytest.raises(WorkerDied) as died:
        w.request({"op": "ping"}, 10, deadline=time.monotonic() - 1)
    assert died.value.budget and died.value.timed_out and w.proc is None  # refused before any start


def test_the_confinement_keeps_only_what_the_worker_needs(tmp_path):
    w = worker_control.Worker(hide=[str(tmp_path / "reference.ipynb")])
    w.workdir = tmp_path / "work"
    spec = w._confinement()
    keep = {Path(k) for k in spec["keep"]}
    root = worker_control.ROOT
    assert {root / "autograder", root / "data", Path(sys.prefix)} <= keep
    assert not any(root.is_relative_to(k) or Path("/tmp").is_relative_to(k) for k in keep)  # not the repo, not /
    assert not any(k.is_relative_to(root / "solutions") or k.is_relative_to(root / ".git") for k in keep)
    assert str(root / "autograder" / "checks" / "hidden") in spec["hide"]
    assert str(tmp_path / "reference.ipynb") in spec["hide"]
    assert spec["writable"] == str(tmp_path / "work") and spec["tasks"] == worker_control.isolation.MAX_TASKS
    assert "skip" not in spec


def test_tree_memory_adds_up_the_processes():
    import os

    one = worker_control._tree_memory([os.getpid()], 1 << 40)
    assert one > 10 << 20  # this process (torch imported) holds tens of MB
    assert worker_control._tree_memory([os.getpid(), os.getpid()], 1 << 40) == 2 * one  # resident sizes
    exact = worker_control._tree_memory([os.getpid(), os.getpid()], 1)  # past the limit: proportional sizes
    assert 0 < exact <= 2 * one


def test_tree_limits_hold_a_process_and_are_removed():
    import os
    import subprocess as sp

    from autograder.engine.worker_cgroup import TreeLimits

    limits = TreeLimits.create(32, 256 << 20)
    if limits is None:
        pytest.skip("no cgroup can be made here (the fallback: RLIMIT_NPROC and the memory police)")
    proc = sp.Popen(["sleep", "30"])
    try:
        limits.add(proc.pid)
        for d in limits.dirs:
            assert str(proc.pid) in Path(d, "cgroup.procs").read_text().split()
        values = {f: Path(d, f).read_text().strip() for d in limits.dirs for f in
                  ("pids.max", "memory.limit_in_bytes", "memory.max") if Path(d, f).exists()}
        assert values.get("pids.max") == "32"
        assert str(256 << 20) in (values.get("memory.limit_in_bytes"), values.get("memory.max"))
        dirs = list(limits.dirs)
        limits.remove()
        assert proc.wait(timeout=10) == -9 and not any(os.path.exists(d) for d in dirs)
    finally:
        proc.kill()
        limits.remove()


def test_describe_exit():
    assert "exited with status 3" in worker_control._describe_exit(3, None)
    assert "SIGSEGV" in worker_control._describe_exit(-signal.SIGSEGV, None)
    assert "out of memory" in worker_control._describe_exit(-signal.SIGKILL, None)
    assert "stopped answering" in worker_control._describe_exit(None, EOFError("closed"))


def test_hard_time_limit_kills_the_worker_and_every_process_it_started(worker):
    """Last of the session's uses of the worker: it ends it."""
    assert run_in(worker, "import subprocess\nchildren = [subprocess.Popen(['sleep', '300']) for _ in range(2)]")["ok"]
    tree = [worker.proc.pid] + [p.pid for p in psutil.Process(worker.proc.pid).children(recursive=True)]
    sleepers = [p for p in map(psutil.Process, tree) if p.name() == "sleep"]
    assert len(sleepers) == 2
    blocked = "import signal, time\nsignal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGALRM])\nwhile True:\n    time.sleep(0.05)\n"
    start = time.monotonic()
    with pytest.raises(WorkerDied) as died:
        worker.request({"op": "exec_cell", "number": 2, "source": blocked}, 0.5)
    assert died.value.timed_out and not died.value.budget
    assert time.monotonic() - start < 0.5 + worker_control.GRACE_S + 5
    assert worker.proc is None and not worker.alive
    time.sleep(0.2)
    left = [pid for pid in tree if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    assert left == [], f"processes left behind: {left}"

