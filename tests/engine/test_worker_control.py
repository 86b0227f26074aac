"""engine/worker_control.py: a real worker started, asked, limited in time, and killed with its tree."""

from __future__ import annotations

import signal
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


def test_paths_to_hide_covers_what_is_off_the_way(tmp_path):
    keep = tmp_path / "repo" / "autograder"
    for p in (keep, tmp_path / "repo" / "solutions", tmp_path / "other"):
        p.mkdir(parents=True)
    (tmp_path / "repo" / "notes.txt").write_text("x")
    (tmp_path / "repo" / "link").symlink_to(tmp_path / "other")
    hide = worker_control.paths_to_hide([keep])
    assert str(tmp_path / "repo" / "solutions") in hide and str(tmp_path / "other") in hide
    assert str(tmp_path / "repo" / "notes.txt") in hide
    assert str(keep) not in hide and str(tmp_path / "repo") not in hide
    assert str(tmp_path / "repo" / "link") not in hide  # a link is never a mount point
    assert not any(h in ("/usr", "/lib", "/etc", "/proc", "/dev") for h in hide)
    assert not any(keep.is_relative_to(h) for h in map(Path, hide))


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
