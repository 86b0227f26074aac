"""autograder/engine/worker_template.py: a worker forked from the warm template is what a cold worker is (PID 1 of
its own namespaces, no network, confined, the same limits, environment and descriptors, capabilities
dropped), nothing passes from one forked worker to the next, the template never starts a thread pool and
never runs a request, a worker dies with its grading process, and every failure falls back to a cold start.

Each fact is read inside the worker by a cell that raises it (the only way a cell's value comes back)."""

from __future__ import annotations

import json
import os
import select
import signal
import time

import psutil
import pytest

from autograder.engine import wire, worker_confine, worker_control, worker_template

pytestmark = pytest.mark.skipif(worker_confine.unshare_prefix() is None, reason="no namespaces here: workers start cold")

ROOT = worker_control.ROOT
FACTS = r"""
import os, sys, json, resource, random
import torch
facts = {
    "pid": os.getpid(),
    "visible_pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
    "fds": sorted(int(f) for f in os.listdir("/proc/self/fd")),
    "env": sorted(f"{k}={v}" for k, v in os.environ.items() if k not in ("HOME", "TMPDIR")),
    "home_is_cwd": os.environ["HOME"] == os.environ["TMPDIR"] == os.getcwd(),
    "raw_environ_secret": b"GPTLAB_TEST_SECRET" in open("/proc/self/environ", "rb").read(),
    "torch_threads": torch.get_num_threads(),
    "os_threads": len(os.listdir("/proc/self/task")),
    "interfaces": open("/proc/net/dev").read().count(":"),
    "session_leader": os.getsid(0) == os.getpid(),
    "limits": [resource.getrlimit(r) for r in (resource.RLIMIT_AS, resource.RLIMIT_FSIZE, resource.RLIMIT_CORE)],
    "caps": sorted(l.split(":")[0] + l.split(":")[1].strip() for l in open("/proc/self/status")
                   if l.startswith(("CapEff", "CapBnd", "CapPrm", "NoNewPrivs"))),
    "reference_readable": os.access(%(reference)r, os.R_OK),
    "hidden_readable": os.access(%(hidden)r, os.R_OK),
    "repo_writable": os.access(%(autograder)r, os.W_OK),
    "cwd_tmpfs": any(l.split()[1] == os.getcwd() and l.split()[0] == "tmpfs" for l in open("/proc/self/mounts")),
    "matmul": float((torch.ones(32, 32) @ torch.ones(32, 32))[0, 0]),
    # a digest: the list is longer than an error message carries back
    "modules": __import__("hashlib").sha256(",".join(sorted(m for m in sys.modules if m.startswith("autograder")
                                                            and m != "autograder.engine.worker_template")).encode()).hexdigest()[:16],
    "random": random.random(),
    "torch_rand": float(torch.rand(1)),
    "torch_seed": torch.initial_seed(),
    "left_behind": getattr(__import__("builtins"), "LEFT_BEHIND", None),
    "default_dtype": str(torch.get_default_dtype()),
}
""" % {"reference": str(ROOT / "solutions" / "gpt_lab.ipynb"), "hidden": str(ROOT / "autograder" / "checks" / "hidden"),
       "autograder": str(ROOT / "autograder")}
KEYS = ["pid", "visible_pids", "fds", "env", "home_is_cwd", "raw_environ_secret", "torch_threads", "os_threads",
        "interfaces", "session_leader", "limits", "caps", "reference_readable", "hidden_readable", "repo_writable",
        "cwd_tmpfs", "matmul", "modules", "random", "torch_rand", "torch_seed", "left_behind", "default_dtype"]


def _cell(worker: worker_control.Worker, source: str) -> dict:
    answer = worker.request({"op": "exec_cell", "number": 1, "source": source, "is_module": True}, 60)
    return wire.from_jsonable(answer.get("value"))


def facts(worker: worker_control.Worker) -> dict:
    assert _cell(worker, FACTS)["ok"]
    out = {}
    for key in KEYS:
        message = _cell(worker, f"raise RuntimeError('F' + json.dumps(facts[{key!r}]))")["message"]
        out[key] = json.loads(message[message.index("F") + 1:])
    return out


@pytest.fixture
def fresh_template(monkeypatch):
    """This process's own template, started here with a secret in the grading process's environment."""
    monkeypatch.setenv("GPTLAB_TEST_SECRET", "s3cret")
    monkeypatch.delenv(worker_template.MODE_VAR, raising=False)
    worker_template.forget()
    yield
    worker_template.forget()


def _worker(kind: str, monkeypatch) -> worker_control.Worker:
    if kind == "cold":
        monkeypatch.setenv(worker_template.MODE_VAR, "cold")
        worker_template.forget()
    w = worker_control.Worker(hide=[str(ROOT / "solutions" / "gpt_lab.ipynb")])
    w.start()
    assert isinstance(w.proc, worker_template.ForkedProcess) == (kind == "forked"), w.start_notes
    return w


def test_forked_worker_is_a_cold_worker(fresh_template, monkeypatch):
    seen = {}
    for kind in ("forked", "cold"):
        w = _worker(kind, monkeypatch)
        try:
            seen[kind] = facts(w)
        finally:
            w.close()
    forked, cold = seen["forked"], seen["cold"]
    # what must hold of any worker, cold or forked
    for f in (forked, cold):
        assert f["pid"] == 1 and f["visible_pids"] == [1], f  # PID 1 of its own namespace, alone
        assert f["interfaces"] == 1  # loopback only: a network namespace of its own
        assert f["session_leader"] and f["home_is_cwd"] and f["cwd_tmpfs"]
        assert not f["reference_readable"] and not f["hidden_readable"] and not f["repo_writable"]
        assert not f["raw_environ_secret"] and "GPTLAB_TEST_SECRET=s3cret" not in f["env"]
        assert f["torch_threads"] == 1 and f["os_threads"] == 1 and f["matmul"] == 32.0
        assert "CapEff0000000000000000" in f["caps"] and "NoNewPrivs1" in f["caps"]
        assert len(f["fds"]) == 5 and f["fds"][:3] == [0, 1, 2]  # stdio, its socket, the listing's own
    same = [ "env", "limits", "caps", "modules", "torch_threads", "os_threads", "interfaces"]
    assert {k: forked[k] for k in same} == {k: cold[k] for k in same}


def test_nothing_passes_between_forked_workers(fresh_template, monkeypatch):
    first = _worker("forked", monkeypatch)
    try:
        a = facts(first)
        # what a submission could leave behind in its process: a global, torch's state, a file
        left = _cell(first, "import builtins, torch\nbuiltins.LEFT_BEHIND = 'yes'\n"
                            "torch.set_default_dtype(torch.float64)\nopen('left.txt', 'w').write('x')")
        assert left["ok"] and facts(first)["left_behind"] == "yes"
        left_file = str(first.workdir / "left.txt")
    finally:
        first.kill()
    second = _worker("forked", monkeypatch)
    try:
        b = facts(second)
        gone = _cell(second, f"open({left_file!r})")
    finally:
        second.close()
        first.close()
    assert b["left_behind"] is None and b["default_dtype"] == "torch.float32"
    assert not gone["ok"]
    # each worker draws its own seeds, as each cold interpreter does
    assert a["random"] != b["random"] and a["torch_seed"] != b["torch_seed"] and a["torch_rand"] != b["torch_rand"]
    template = psutil.Process(worker_template.own_template_pid())
    assert template.num_threads() == 1  # no thread pool was started before a fork
    assert template.children() == []  # monitors and workers are gone with their workers


def test_forked_worker_dies_with_its_grading_process(fresh_template, monkeypatch):
    w = _worker("forked", monkeypatch)
    try:
        sleepers = "import os, time\nfor _ in range(3):\n    if os.fork() == 0:\n        time.sleep(1000)"
        assert _cell(w, sleepers)["ok"]
        pid, monitor = w.proc.worker_pid, w.proc.pid
        inside = psutil.Process(pid).children()
        assert len(inside) == 3
        w.proc._status.close()  # what the grading process's death does to the monitor's socket
        w.proc._status = None
        ready = select.select([w.proc._worker_fd], [], [], 10)[0]
        assert ready, "the worker outlived its grading process"
        time.sleep(0.5)
        assert not any(psutil.pid_exists(p.pid) and p.status() != psutil.STATUS_ZOMBIE for p in inside)
        assert not psutil.pid_exists(monitor) or psutil.Process(monitor).status() == psutil.STATUS_ZOMBIE
    finally:
        w.close()


def test_killed_forked_worker_is_restarted_and_reported(fresh_template, monkeypatch):
    w = _worker("forked", monkeypatch)
    try:
        with pytest.raises(worker_control.WorkerDied, match="SIGSEGV"):
            _cell(w, "import ctypes\nctypes.string_at(0)")
        assert w.proc is None
        assert _cell(w, "x = 1")["ok"]  # restarted, from the template again
        assert isinstance(w.proc, worker_template.ForkedProcess)
        with pytest.raises(worker_control.WorkerDied, match="status 3"):
            _cell(w, "import os\nos._exit(3)")
    finally:
        w.close()


def test_cold_fallbacks(fresh_template, monkeypatch):
    # asked for
    w = _worker("cold", monkeypatch)
    w.close()
    # an environment the template was not started with (read at import time: OMP_NUM_THREADS)
    monkeypatch.delenv(worker_template.MODE_VAR)
    worker_template.forget()
    assert worker_template.template() is not None
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    w = worker_control.Worker()
    try:
        w.start()
        assert not isinstance(w.proc, worker_template.ForkedProcess)
        assert any("OMP_NUM_THREADS" in n for n in w.start_notes), w.start_notes
        assert _cell(w, "x = 1")["ok"]
    finally:
        w.close()
    # a template that died
    os.kill(worker_template.own_template_pid(), signal.SIGKILL)
    time.sleep(0.3)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    w = worker_control.Worker()
    try:
        w.start()
        assert not isinstance(w.proc, worker_template.ForkedProcess) and w.start_notes
        assert _cell(w, "x = 1")["ok"]
    finally:
        w.close()


POOL_PROBE = """
import json, os
import psutil
from autograder.engine import worker_control, worker_template


def test_probe():
    w = worker_control.Worker()
    w.start()
    try:
        json.dump({"forked": isinstance(w.proc, worker_template.ForkedProcess), "notes": w.start_notes,
                   "own_template": worker_template.own_template_pid(),
                   "monitor_parent": psutil.Process(w.proc.pid).ppid()}, open(os.environ["PROBE_OUT"], "w"))
    finally:
        w.close()
"""


def test_warm_pool_grading_processes_fork_workers_from_the_pool_template(tmp_path):
    from instructor import warm_pool

    probe = tmp_path / "probe_check.py"
    probe.write_text(POOL_PROBE)
    pool = warm_pool.WarmPool().start()
    try:
        assert pool.template_pid is not None
        env = {**os.environ, "TMPDIR": str(tmp_path), "PROBE_OUT": str(tmp_path / "probe.json"),
               "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), "PYTHONDONTWRITEBYTECODE": "1"}
        rc = pool.run(["-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(probe)], tmp_path, env,
                      tmp_path / "pytest.log", timeout=120)
        assert rc == 0, (tmp_path / "pytest.log").read_text()
        seen = json.loads((tmp_path / "probe.json").read_text())
        # forked by the pool's template (no template of the grading process's own was started)
        assert seen == {"forked": True, "notes": [], "own_template": None, "monitor_parent": pool.template_pid}
    finally:
        pool.close()
