"""engine/worker_confine.py: what the worker cannot reach. With namespaces (here: root, or user
namespaces), a real worker is asked to read the reference, the hidden checks and a hidden file;
``confine`` itself is also run in a forked child in a mount namespace of its own."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from autograder.engine import worker_confine, worker_control
from autograder.engine.worker_control import ROOT

from .conftest import run_in, value_in

needs_namespaces = pytest.mark.skipif(worker_confine.unshare_prefix() is None,
                                      reason="no namespaces here (unshare missing or not permitted)")

PROBE = """
import os, socket
def _try(fn):
    try:
        return ["ok", fn()]
    except Exception as exc:
        return ["refused", type(exc).__name__]
def _write(path):
    with open(path, "w") as f:
        f.write("x")
    return path
reached = {
    "reference": _try(lambda: open(%(reference)r).read()[:20]),
    "solutions": _try(lambda: os.listdir(%(solutions)r)),
    "hidden_checks": _try(lambda: os.listdir(%(hidden)r)),
    "secret": _try(lambda: open(%(secret)r).read()),
    "visible": _try(lambda: open(%(visible)r).read()),
    "write_kept": _try(lambda: _write(%(write_kept)r)),
    "write_own": _try(lambda: _write("own.txt")),
    "network": _try(lambda: socket.create_connection(("192.0.2.1", 80), timeout=2) and "connected"),
    "pid": os.getpid(),
}
"""


@needs_namespaces
def test_worker_cannot_read_the_reference_hidden_checks_or_hidden_files(worker, worker_files):
    assert worker.isolated
    reference = ROOT / "solutions" / "gpt_lab.ipynb"
    hidden = ROOT / "autograder" / "checks" / "hidden"
    assert reference.exists() and any(hidden.iterdir())  # there is something to hide
    outcome = run_in(worker, PROBE % {
        "reference": str(reference), "solutions": str(reference.parent), "hidden": str(hidden),
        "secret": str(worker_files / "secret.txt"), "visible": str(worker_files / "visible.txt"),
        "write_kept": str(worker_files / "new.txt"),
    })
    assert outcome["ok"], outcome
    reached = value_in(worker, "reached")
    assert reached["reference"][0] == "refused"
    assert reached["solutions"] == ["refused", "FileNotFoundError"]  # not in the worker's root at all
    assert reached["hidden_checks"] in (["ok", []], ["refused", "PermissionError"])
    assert reached["secret"] == ["ok", ""]  # covered by /dev/null
    assert reached["visible"] == ["ok", "visible text"]  # a kept path stays readable
    assert reached["write_kept"] == ["refused", "OSError"]  # read-only (EROFS)
    assert not (worker_files / "new.txt").exists()
    assert reached["write_own"] == ["ok", "own.txt"]
    assert reached["network"][0] == "refused"
    assert reached["pid"] == 1  # its own PID namespace


def test_unshare_prefix_is_a_command_or_none():
    prefix = worker_confine.unshare_prefix()
    if prefix is not None:
        assert os.path.basename(prefix[0]) == "unshare"
        for flag in ("--pid", "--fork", "--kill-child", "--mount-proc", "--net", "--ipc"):
            assert flag in prefix


def _unshare_mount_namespace() -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(0x00020000) != 0:  # CLONE_NEWNS (os.unshare is Python 3.12+)
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS) failed")


def confine_in_child(tmp_path) -> dict:
    """Fork; in the child, a new mount namespace (checked to be new before anything is mounted),
    then ``confine`` and a few reads and writes. Returns what the child could do."""
    writable, hidden_dir, kept = tmp_path / "work", tmp_path / "kept" / "hidden", tmp_path / "kept"
    for d in (writable, kept, hidden_dir):
        d.mkdir(mode=0o755)
    (tmp_path / "sibling.txt").write_text("not kept")
    (hidden_dir / "answers.py").write_text("secret")
    (kept / "reference.ipynb").write_text("reference")
    (kept / "plain.txt").write_text("plain")
    parent_ns = os.readlink("/proc/self/ns/mnt")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        result = {}
        try:
            os.close(r)
            _unshare_mount_namespace()
            if os.readlink("/proc/self/ns/mnt") == parent_ns:
                raise RuntimeError("no new mount namespace: confine must not run here")
            result["notes"] = worker_confine.confine({"keep": [str(kept)], "writable": str(writable), "tasks": 64,
                                                      "hide": [str(hidden_dir), str(kept / "reference.ipynb")]})

            def attempt(fn):
                try:
                    return fn()
                except OSError as exc:
                    return f"refused {exc.errno}"

            result["hidden_dir"] = attempt(lambda: os.listdir(hidden_dir))
            result["reference"] = attempt(lambda: open(kept / "reference.ipynb").read())
            result["plain"] = attempt(lambda: open(kept / "plain.txt").read())
            result["write_kept"] = attempt(lambda: open(kept / "new.txt", "w").write("x"))
            result["write_own"] = attempt(lambda: open(writable / "new.txt", "w").write("x"))
            result["cwd"] = os.getcwd()
            result["sibling"] = attempt(lambda: open(tmp_path / "sibling.txt").read())
            result["on_the_way"] = attempt(lambda: sorted(os.listdir(tmp_path)))
            result["uid"] = [os.getuid(), os.geteuid()]
        except BaseException as exc:  # noqa: BLE001
            result["error"] = repr(exc)
        finally:
            os.write(w, json.dumps(result).encode())
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    result = json.loads(data)
    if "error" in result and "unshare" not in result["error"] and "no new mount" not in result["error"]:
        raise AssertionError(result["error"])
    return result


def test_confine_builds_a_root_of_kept_paths_only_and_covers_hidden_ones(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("a mount namespace of its own needs root here")
    result = confine_in_child(tmp_path)
    if "error" in result:
        pytest.skip(f"no mount namespace: {result['error']}")
    assert result["hidden_dir"] in ([], "refused 13")  # an empty tmpfs of mode 0
    assert result["reference"] == ""  # /dev/null bound over it
    assert result["plain"] == "plain"
    assert result["write_kept"] == "refused 30"  # EROFS
    assert result["write_own"] == 1 and result["cwd"] == str(tmp_path / "work")
    assert result["sibling"] == "refused 2"  # not kept: absent, not merely covered
    assert result["on_the_way"] == ["kept", "work"]
    assert result["uid"] == [worker_confine.UNPRIVILEGED_ID] * 2
    assert not (tmp_path / "kept" / "new.txt").exists()
    assert (tmp_path / "kept" / "hidden" / "answers.py").read_text() == "secret"  # untouched outside


# -- the worker's confinement, defence by defence: each test starts a worker of its own, so that a planted
# bug (worker_control.SKIPPED_DEFENCES, tests/engine/test_planted_bugs.py) reaches it

HOST_PROBE = """
import os, socket, stat
found, connected, read = [], [], {}
for top in ("/tmp", "/run", "/var/run", "/home", "/root", "/srv", "/var", "/mnt", "/media", "/etc"):
    for folder, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if os.path.join(folder, d) not in %(kept)r]  # what the worker may read
        for name in files + dirs:
            path = os.path.join(folder, name)
            found.append(path)
            try:
                if stat.S_ISSOCK(os.lstat(path).st_mode):
                    s = socket.socket(socket.AF_UNIX)
                    s.settimeout(1)
                    s.connect(path)
                    connected.append(path)
            except OSError:
                pass
        if len(found) > 20000:
            break
for path in ("/etc/shadow", %(marker)r):
    try:
        read[path] = open(path).read()[:40]
    except OSError as exc:
        read[path] = type(exc).__name__
R = {"found": found, "connected": connected, "read": read, "top": sorted(os.listdir("/")),
     "tmp": sorted(os.listdir("/tmp")), "cwd": os.getcwd()}
"""


def _probe(source: str, memory_mb: int = 4096, timeout: float = 60.0):
    """A worker of its own runs ``source``; its global ``R``."""
    from autograder.engine.worker_control import Worker

    w = Worker(memory_mb=memory_mb)
    try:
        w.start()
        outcome = run_in(w, source, timeout)
        assert outcome["ok"], outcome
        return value_in(w, "R")
    finally:
        w.close()


@needs_namespaces
def test_worker_sees_nothing_of_the_host(tmp_path):
    """Its own root: no host /tmp (a marker and a listening socket there), /run, /home, /root, /etc/shadow."""
    import socket

    marker = tmp_path / "another-students-results.json"
    marker.write_text("their grades")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(tmp_path / "host.sock"))
    listener.listen(8)
    try:
        kept = [os.path.realpath(k) for k in worker_control._keep()]
        r = _probe(HOST_PROBE % {"marker": str(marker), "kept": kept})
    finally:
        listener.close()
    assert r["read"][str(marker)] == "FileNotFoundError" and r["read"]["/etc/shadow"] == "FileNotFoundError"
    assert r["connected"] == []
    on_the_way = {str(a) for k in kept for a in Path(k).parents} | set(kept)
    # only its own folder, and the way to what it keeps where that lies under /tmp (a checkout or a venv
    # made there, as a CI's clean clone may be): never the marker, the socket or anything else of the host's
    assert set(r["tmp"]) - {os.path.basename(p) for p in on_the_way if os.path.dirname(p) == "/tmp"} \
        == {os.path.basename(r["cwd"])}, r["tmp"]
    top = {os.path.basename(p) for p in on_the_way if os.path.dirname(p) == "/"}
    assert not ({"home", "run", "srv", "var", "mnt", "media", "boot", "sys"} - top) & set(r["top"]), r["top"]
    assert [p for p in r["found"] if p not in on_the_way and not p.startswith("/etc/") and not p.startswith("/tmp/")] == []
    assert {p for p in r["found"] if p.startswith("/etc/")} <= {"/etc/group", "/etc/ld.so.cache", "/etc/passwd"}


ID_PROBE = """
status = open("/proc/self/status").read()
field = lambda name: status.split("\\n" + name + ":")[1].split("\\n")[0].split()
R = {"uid": field("Uid"), "gid": field("Gid"), "cap_eff": field("CapEff")[0], "cap_bnd": field("CapBnd")[0],
     "no_new_privs": field("NoNewPrivs")[0], "uid_map": open("/proc/self/uid_map").read().split()}
"""


@needs_namespaces
def test_worker_is_never_root():
    r = _probe(ID_PROBE)
    assert r["uid"] == [str(worker_confine.UNPRIVILEGED_ID)] * 4 and r["gid"] == [str(worker_confine.UNPRIVILEGED_ID)] * 4
    assert r["uid_map"][0] == str(worker_confine.UNPRIVILEGED_ID) and r["uid_map"][1] != "0"  # not root outside
    assert int(r["cap_eff"], 16) == 0 and int(r["cap_bnd"], 16) == 0 and r["no_new_privs"] == "1"


SYSCALL_PROBE = """
import ctypes, os
from autograder.engine.worker_seccomp import _library
libc, seccomp = ctypes.CDLL(None, use_errno=True), _library()
nr = lambda name: seccomp.seccomp_syscall_resolve_name(name.encode())
def call(fn, *args):
    ctypes.set_errno(0)
    rc = fn(*args)
    return [rc, ctypes.get_errno()]
R = {
    "unshare_user": call(libc.unshare, 0x10000000),
    "unshare_net": call(libc.unshare, 0x40000000),
    "add_key": call(libc.syscall, nr("add_key"), b"user", b"gptlab-adv", b"x", 1, -3),  # the session keyring
    "keyctl": call(libc.syscall, nr("keyctl"), 0, -3, 0),
    "ptrace": [-1, os.waitpid(os.fork() or os._exit(0 if libc.ptrace(0, 0, None, None) == 0 else ctypes.get_errno()),
                              0)[1] >> 8],  # PTRACE_TRACEME, in a child: a traced worker would stop at its next signal
    "mount": call(libc.mount, b"none", b"/tmp", b"tmpfs", 0, None),
    "bpf": call(libc.syscall, nr("bpf"), 0, None, 0),
    "perf_event_open": call(libc.syscall, nr("perf_event_open"), None, 0, -1, -1, 0),
    "userfaultfd": call(libc.syscall, nr("userfaultfd"), 0),
    "fork": os.waitpid(os.fork() or os._exit(7), 0)[1] >> 8,
}
"""


@needs_namespaces
def test_worker_system_calls_beyond_a_lab_are_refused():
    import errno

    r = _probe(SYSCALL_PROBE)
    assert r.pop("fork") == 7  # processes and threads still work
    for name, (rc, err) in r.items():
        assert rc == -1 and err == errno.EPERM, f"{name}: {rc}, errno {err}"


THREAD_BOMB = """
import threading
stop, started, error = threading.Event(), 0, None
try:
    for _ in range(3000):
        threading.Thread(target=stop.wait, daemon=True).start()
        started += 1
except RuntimeError as exc:
    error = str(exc)
stop.set()
R = {"started": started, "error": error}
"""


@needs_namespaces
def test_worker_threads_and_processes_are_counted_together_and_capped():
    r = _probe(THREAD_BOMB)
    assert r["started"] < worker_confine.MAX_TASKS and r["error"], r


MEMORY_TREE = """
import os, time
kids = []
for i in range(3):
    pid = os.fork()
    if pid == 0:
        try:
            b = bytearray(560 << 20)  # with the worker's own ~600 MB of address space: under the per-process limit
            for j in range(0, len(b), 4096):
                b[j] = 1
            open(f"done{i}", "w").close()
            time.sleep(30)
        finally:
            os._exit(0)
    kids.append(pid)
# each child either writes its marker (then sleeps) or is killed: stop when all three are accounted for
dead = set()
end = time.monotonic() + 40
while time.monotonic() < end and len([f for f in os.listdir(".") if f.startswith("done")]) + len(dead) < 3:
    for pid in kids:
        if pid not in dead and os.waitpid(pid, os.WNOHANG)[0] == pid:
            dead.add(pid)
    time.sleep(0.2)
R = {"done": len([f for f in os.listdir(".") if f.startswith("done")])}
"""


@needs_namespaces
def test_worker_memory_is_capped_for_the_whole_tree():
    """Three children of 560 MB each (1.7 GB, the worker's limit 1280 MB): they never all get theirs."""
    from autograder.engine.worker_control import WorkerDied

    try:
        r = _probe(MEMORY_TREE, memory_mb=1280, timeout=90)
    except WorkerDied:
        return  # stopped by the grading process's count (the fallback without a memory cgroup)
    assert r["done"] < 3, r
