"""Keep the reference solution and the hidden checks out of the worker's reach (Linux).

Where Linux namespaces can be made (as root, or as any user where unprivileged user namespaces
are allowed), the worker starts under ``unshare`` in new PID, mount, network and IPC namespaces (or
is forked from a warm template into the same namespaces: ``worker_template``):

- it sees only its own processes (it is PID 1 there: it cannot signal or read the grading
  process, and when it dies every process it started dies with it);
- every file system is read-only for it except its own temporary folder, which is a tmpfs of
  ``DISK_QUOTA_MB`` (a write past it fails with "No space left on device"); the repository is
  covered by empty mounts except ``autograder/`` (its own code, without ``checks/hidden/``), ``data/`` and
  the Python environment, and so is the reference wherever it lies (``--reference``);
- it has no network;
- before any submission code runs it drops every capability and sets no_new_privs, so it cannot
  undo those mounts.

Where none of this is possible (macOS, Windows, a container without user namespaces), the worker
runs as a plain child process and the run's report says so: the time, memory and process limits
and the plain-data protocol still hold, but files readable by the grading user are readable by
the submission. On a student laptop that is harmless (the handout holds no reference and no hidden
check); on a grading server, run the grader where namespaces work (or as a user who cannot read
the reference).
"""

from __future__ import annotations

import ctypes
import functools
import os
import resource
import shutil
import subprocess

_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_REMOUNT, _MS_BIND, _MS_REC, _MS_PRIVATE = 1, 2, 4, 32, 4096, 16384, 1 << 18
_BASE = ["--pid", "--fork", "--kill-child", "--mount-proc", "--net", "--ipc"]
# The worker's writable folder. The grader's own files there are a few KB; a submission needs none
# (it may save a checkpoint: the lab's largest model is 10.8 M parameters, 43 MB). In memory, freed
# when the worker's namespaces end. Without namespaces the grading process measures the folder
# instead (worker_control.Worker._police) against the same figure.
DISK_QUOTA_MB = 256


@functools.lru_cache(maxsize=1)
def unshare_prefix() -> tuple[str, ...] | None:
    """The command prefix that starts a process in new namespaces here, or None."""
    exe = shutil.which("unshare")
    if exe is None or not os.path.exists("/proc/self/ns/mnt"):
        return None
    candidates = [[exe, *_BASE]] if os.geteuid() == 0 else []
    candidates.append([exe, "--user", "--map-root-user", *_BASE])
    for prefix in candidates:
        try:
            ok = subprocess.run([*prefix, "true"], capture_output=True, timeout=10).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            ok = False
        if ok:
            return tuple(prefix)
    return None


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _mount(libc, source, target, fstype, flags, data=None) -> None:
    enc = lambda s: None if s is None else s.encode()  # noqa: E731
    if libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)) != 0:
        raise OSError(ctypes.get_errno(), f"mount {target}: {os.strerror(ctypes.get_errno())}")


def _mount_points() -> list[str]:
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if len(fields) > 4:
                points.append(fields[4].replace("\\040", " "))
    return points


def _kept_flags(point: str) -> int:
    """The mount's nodev and noexec flags, to keep on the read-only remount. In a user namespace (a grader
    run by an ordinary user) the kernel locks them on mounts inherited from the outer namespace, and a
    remount that would clear one fails (EPERM): a home on NFS or on a partition of its own, mounted
    nodev,nosuid, would then stay writable, the instructor's repository with it."""
    try:
        return os.statvfs(point).f_flag & (os.ST_NODEV | os.ST_NOEXEC)  # the same bits as MS_NODEV, MS_NOEXEC
    except OSError:
        return 0


def confine(hide: list[str], writable: str) -> list[str]:
    """Run inside the new namespaces, before any submission code: every mount read-only but the
    worker's own folder, the ``hide`` paths covered, capabilities dropped. Returns notes on what
    could not be done."""
    notes = []
    libc = _libc()
    try:
        _mount(libc, None, "/", None, _MS_REC | _MS_PRIVATE)
        _mount(libc, "tmpfs", writable, "tmpfs", _MS_NOSUID | _MS_NODEV, f"size={DISK_QUOTA_MB}m,mode=0700")
    except OSError as exc:
        return [f"could not set up private mounts ({exc}): files readable by the grader are readable here"]
    failed = []
    for point in _mount_points():
        if point == writable or point.startswith(writable + "/"):
            continue
        try:
            _mount(libc, None, point, None, _MS_BIND | _MS_REMOUNT | _MS_RDONLY | _MS_NOSUID | _kept_flags(point))
        except OSError:
            failed.append(point)
    if failed:
        notes.append(f"could not make {len(failed)} mounts read-only ({', '.join(failed[:3])})")
    for path in hide:
        try:
            if os.path.isdir(path):
                _mount(libc, "tmpfs", path, "tmpfs", _MS_RDONLY | _MS_NOSUID | _MS_NODEV, "size=4k,mode=0")
            elif os.path.isfile(path):
                _mount(libc, "/dev/null", path, None, _MS_BIND)
        except OSError as exc:
            notes.append(f"could not hide {path} ({exc})")
    os.chdir(writable)  # the working directory must be seen through the new (writable) mount
    drop_capabilities(libc)
    return notes


def set_worker_limits(memory_mb: int) -> None:
    """The worker's rlimits, set in the worker before any submission code (a cold worker: between fork and
    exec; one forked from a template: before ``worker.main``)."""
    mem = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    # the grading process capped its own data segment (plugin/grading.limit_own_memory): not the worker's
    _, data_hard = resource.getrlimit(resource.RLIMIT_DATA)
    resource.setrlimit(resource.RLIMIT_DATA, (data_hard, data_hard))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 20, 64 << 20))
    # No RLIMIT_NPROC: it counts every thread of the user's (a student's browser included) and
    # root ignores it; the process count is policed from outside instead (worker_control.Worker._police()).


def drop_capabilities(libc=None) -> None:
    libc = libc or _libc()
    for cap in range(64):
        libc.prctl(24, cap, 0, 0, 0)  # PR_CAPBSET_DROP (fails quietly past the last capability)
    libc.prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

    libc.capset(ctypes.byref(Header(0x20080522, 0)), ctypes.byref((Data * 2)()))  # _LINUX_CAPABILITY_VERSION_3
