"""The worker's confinement, set up in the worker before any submission code (Linux).

Where Linux namespaces can be made (as root, or as any user where unprivileged user namespaces
are allowed), the worker starts under ``unshare`` in new PID, mount, network and IPC namespaces (or
is forked from a warm template into the same namespaces: ``worker_template``), then ``confine``:

- its root file system becomes a new one built from an allowlist (``worker_root``): the system's
  program folders, the Python environment and the handout's code and data, read-only; its own tmpfs
  folder of ``DISK_QUOTA_MB``; a minimal /dev; a /proc of its own PID namespace (it sees only its own
  processes); nothing else of the machine;
- it becomes ``UNPRIVILEGED_ID`` in a user namespace of its own (never root, there or outside), where
  RLIMIT_NPROC counts its threads and processes together (``MAX_TASKS``);
- it drops every capability and sets no_new_privs;
- it loads the seccomp filter (``worker_seccomp``).

docs/architecture.md ("The worker's confinement") says why this and not bubblewrap, and what each
missing piece costs. Where none of this is possible (macOS, Windows, a container without user
namespaces), the worker runs as a plain child process and the run's report says so: the time, memory
and process limits and the plain-data protocol still hold, but files readable by the grading user are
readable by the submission. On a student laptop that is harmless (the handout holds no reference and no
hidden check); on a grading server, run the grader where namespaces work (or as a user who cannot read
the reference).
"""

from __future__ import annotations

import ctypes
import functools
import os
import resource
import shutil
import subprocess

from autograder.engine import worker_root, worker_seccomp
from autograder.engine.worker_root import _mount  # noqa: F401 - worker_template mounts its /proc with it

_MS_NOSUID, _MS_NODEV, _MS_REC, _MS_PRIVATE = 2, 4, 16384, 1 << 18
_CLONE_NEWUSER = 0x10000000
_PR_SET_DUMPABLE = 4
# who the worker is once confined: "nobody" on every Linux; it owns no file of the machine
UNPRIVILEGED_ID = 65534
# threads and processes together, per worker (RLIMIT_NPROC in its user namespace; a cgroup's pids.max
# where the grader may make one: worker_cgroup). The lab needs a handful; torch's pools, a DataLoader's
# workers and their threads stay far below.
MAX_TASKS = 256
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


def confine(spec: dict) -> list[str]:
    """Run inside the new namespaces, before any submission code: the worker's root becomes a new one
    holding only ``spec["keep"]`` (read-only, ``spec["hide"]`` covered inside them), its own tmpfs at
    ``spec["writable"]``, a minimal /dev, its own /proc; then it becomes an unprivileged user with no
    capability (``UNPRIVILEGED_ID``, in a user namespace of its own where threads and processes are counted
    against ``spec["tasks"]``) under the seccomp filter. ``spec["skip"]`` names defences left out: only
    tests set it (tests/engine/test_planted_bugs.py). Returns notes on what could not be done."""
    skip = set(spec.get("skip", ()))
    writable = spec["writable"]
    notes = [f"defences left out for a test: {', '.join(sorted(skip))}"] if skip else []
    libc = _libc()
    try:
        _mount(libc, None, "/", None, _MS_REC | _MS_PRIVATE)
    except OSError as exc:
        return [f"could not set up private mounts ({exc}): files readable by the grader are readable here"]
    owner = 0 if _in_user_namespace() else UNPRIVILEGED_ID  # who the worker will be, in this namespace's ids
    if "root" in skip:
        _mount(libc, "tmpfs", writable, "tmpfs", _MS_NOSUID | _MS_NODEV,
               f"size={DISK_QUOTA_MB}m,mode=0700,uid={owner},gid={owner}")
    else:
        try:
            notes += worker_root.build(libc, spec["keep"], spec["hide"], writable, owner, DISK_QUOTA_MB,
                                       gpu=spec.get("device", "cpu") != "cpu")
        except OSError as exc:
            return notes + [f"could not build the worker's own root ({exc}): files readable by the grader "
                            "are readable here"]
    os.chdir(writable)  # the working directory must be seen through the new (writable) mount
    if "user" not in skip:
        notes += _become_unprivileged(libc, spec.get("tasks"))
    drop_capabilities(libc)
    if "seccomp" not in skip:
        problem = worker_seccomp.install()
        if problem:
            notes.append(problem)
    return notes


def _in_user_namespace() -> bool:
    """True in a user namespace other than the machine's own (a grader run by an ordinary user)."""
    try:
        with open("/proc/self/uid_map") as f:
            return f.read().split() != ["0", "0", "4294967295"]
    except OSError:
        return True


def _become_unprivileged(libc, tasks: int | None) -> list[str]:
    """Become ``UNPRIVILEGED_ID`` in a user namespace of the worker's own, its capabilities there dropped
    by the caller. Graded as root: setuid to that id first (it owns nothing on the machine), then the user
    namespace, mapping it to itself. Graded by an ordinary user (already root of a user namespace mapped
    to that user): a nested user namespace mapping it to the same user, so it is not root even there.
    The namespace of its own is what makes RLIMIT_NPROC count this worker's threads and processes only
    (Linux 5.14+ counts per user namespace and uid), and a limit the kernel enforces on a non-root id."""
    uid = gid = UNPRIVILEGED_ID
    if not _in_user_namespace():
        # the limit of the machine-wide count of the id's tasks (every worker's), fixed when the namespace
        # is made: as high as allowed (none, with CAP_SYS_RESOURCE), so that only the worker's own count
        # (set below) binds
        _, hard = resource.getrlimit(resource.RLIMIT_NPROC)
        for limit in (resource.RLIM_INFINITY, hard):
            try:
                resource.setrlimit(resource.RLIMIT_NPROC, (limit, limit))
                break
            except (ValueError, OSError):
                continue
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
        libc.prctl(_PR_SET_DUMPABLE, 1, 0, 0, 0)  # setuid made /proc/self root's: the maps below need it ours
        outer_uid, outer_gid = uid, gid
    else:
        outer_uid, outer_gid = os.geteuid(), os.getegid()
    notes = []
    if libc.unshare(_CLONE_NEWUSER) != 0:
        notes.append(f"no user namespace of its own ({os.strerror(ctypes.get_errno())}): threads not counted")
    else:
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {outer_uid} 1"),
                           ("gid_map", f"{gid} {outer_gid} 1")):
            with open(f"/proc/self/{name}", "w") as f:
                f.write(text)
    if os.geteuid() == 0:
        raise OSError("the worker is still root")
    if tasks:
        resource.setrlimit(resource.RLIMIT_NPROC, (tasks, tasks))
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
