"""engine/worker_confine.py: what the worker cannot reach. With namespaces (here: root, or user
namespaces), a real worker is asked to read the reference, the hidden checks and a hidden file;
``confine`` itself is also run in a forked child in a mount namespace of its own."""

from __future__ import annotations

import json
import os

import pytest

from autograder.engine import worker_confine
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
    assert reached["solutions"] in (["ok", []], ["refused", "PermissionError"])
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


def test_mount_points_are_read_from_mountinfo():
    points = worker_confine._mount_points()
    assert "/" in points and "/proc" in points
    assert all(p.startswith("/") for p in points)


def _unshare_mount_namespace() -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(0x00020000) != 0:  # CLONE_NEWNS (os.unshare is Python 3.12+)
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS) failed")


def confine_in_child(tmp_path) -> dict:
    """Fork; in the child, a new mount namespace (checked to be new before anything is mounted),
    then ``confine`` and a few reads and writes. Returns what the child could do."""
    writable, hidden_dir, kept = tmp_path / "work", tmp_path / "hidden", tmp_path / "kept"
    for d in (writable, hidden_dir, kept):
        d.mkdir()
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
            result["notes"] = worker_confine.confine([str(hidden_dir), str(kept / "reference.ipynb")], str(writable))

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


def test_confine_covers_hidden_paths_and_makes_mounts_read_only(tmp_path):
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
    assert not (tmp_path / "kept" / "new.txt").exists()
    assert (tmp_path / "hidden" / "answers.py").read_text() == "secret"  # untouched outside
