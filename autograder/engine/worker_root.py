"""The worker's own root file system: an allowlist of what it needs, nothing else of the machine (Linux).

Built by ``worker_confine.confine`` in the worker's new mount namespace, before any submission code:

- a small tmpfs becomes the new root (``pivot_root``; the machine's root is detached, not merely covered);
- read-only, at their own paths: the system's program and library folders (``/usr``, and ``/bin``, ``/lib``,
  ... as they are: links on a merged-/usr system), the Python environment(s) and the handout's code and
  data (``keep``: ``worker_control._keep``), with ``hide`` (``autograder/checks/hidden/``, a reference named
  on the command line) covered where it lies inside one of them. Nothing else: no host /tmp (other
  students' grading folders), /run (the machine's sockets: Docker's, the system bus), /home, /root, /srv,
  /var, /etc (two made-up lines of passwd and group, and the dynamic loader's cache), /sys;
- the worker's folder (``writable``, the same path as outside so every path the grader sends holds): a
  tmpfs of the disk quota, owned by the worker's unprivileged user;
- /dev with null, zero, full, random, urandom, bound from the host's; /dev/fd and the std links; no
  /dev/shm; for a submission run on a GPU (``--device cuda``), the GPU's nodes and /sys read-only too;
- a /proc of its own PID namespace.

Bubblewrap builds the same view (``--ro-bind``, ``--dev``, ``--proc``, ``--tmpfs``), but only for a
program it executes: the worker is forked from a warm template that imported torch once, and an exec
would lose that (see worker_template). So the few mounts are made here, the way bubblewrap makes them.
"""

from __future__ import annotations

import ctypes
import glob
import os
import platform

_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC, _MS_REMOUNT, _MS_BIND = 1, 2, 4, 8, 32, 4096
_MNT_DETACH = 2
# the system's own folders, bound read-only where they are folders, recreated where they are links
SYSTEM = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32")
DEVICES = ("null", "zero", "full", "random", "urandom")
GPU_DEVICES = ("/dev/nvidia*", "/dev/nvidia-caps/*", "/dev/dri/*")
ETC_FILES = ("ld.so.cache",)  # the dynamic loader's index of libraries: a library loaded later is found fast
_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "ppc64": 203, "s390x": 217}


def _mount(libc, source, target, fstype, flags, data=None) -> None:
    enc = lambda s: None if s is None else s.encode()  # noqa: E731
    if libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)) != 0:
        raise OSError(ctypes.get_errno(), f"mount {target}: {os.strerror(ctypes.get_errno())}")


def _kept_flags(point: str) -> int:
    """The mount's nodev and noexec flags, to keep on the read-only remount. In a user namespace (a grader
    run by an ordinary user) the kernel locks them on mounts inherited from the outer namespace, and a
    remount that would clear one fails (EPERM)."""
    try:
        return os.statvfs(point).f_flag & (os.ST_NODEV | os.ST_NOEXEC)  # the same bits as MS_NODEV, MS_NOEXEC
    except OSError:
        return 0


def _outermost(paths) -> list[str]:
    """Real paths, without those inside another one of the list."""
    real = sorted({os.path.realpath(p) for p in paths if os.path.exists(p)})
    out: list[str] = []
    for p in real:
        if not any(p == o or p.startswith(o.rstrip("/") + "/") for o in out):
            out.append(p)
    return out


def _place(new_root: str, path: str, is_dir: bool) -> str:
    target = new_root + path
    if is_dir:
        os.makedirs(target, mode=0o755, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
        if not os.path.exists(target):
            open(target, "w").close()
    return target


def _bind(libc, new_root: str, path: str, extra: int = 0) -> None:
    """``path`` of the machine at the same path in the new root, read-only."""
    target = _place(new_root, path, os.path.isdir(path))
    _mount(libc, path, target, None, _MS_BIND)
    _mount(libc, None, target, None,
           _MS_BIND | _MS_REMOUNT | _MS_RDONLY | _MS_NOSUID | extra | _kept_flags(path))


def build(libc, keep: list[str], hide: list[str], writable: str, owner: int, quota_mb: int,
          gpu: bool = False) -> list[str]:
    """Make the new root and enter it. ``owner``: the worker's folder's owner (in this namespace's ids).
    ``gpu``: the submission runs on a GPU, whose driver reads /sys (the machine's devices, read-only)."""
    notes = []
    os.umask(0o022)
    new_root = writable  # an empty folder of ours, covered at once: the skeleton's mount point
    _mount(libc, "tmpfs", new_root, "tmpfs", _MS_NOSUID | _MS_NODEV, "size=1m,mode=0755")
    for name in SYSTEM:
        path = "/" + name
        if os.path.islink(path):
            os.symlink(os.readlink(path), new_root + path)
        elif os.path.isdir(path):
            _bind(libc, new_root, path)
    system = [f"/{n}" for n in SYSTEM if os.path.isdir(f"/{n}") and not os.path.islink(f"/{n}")]
    bound = [*system]
    for path in _outermost(keep):
        if any(path == b or path.startswith(b + "/") for b in bound):
            continue  # already there (the interpreter under /usr)
        _bind(libc, new_root, path)
        bound.append(path)
    for path in hide:  # only what lies inside a kept path is there to cover
        real = os.path.realpath(path)
        if not any(real.startswith(b + "/") for b in bound) or not os.path.exists(real):
            continue
        try:
            if os.path.isdir(real):
                _mount(libc, "tmpfs", new_root + real, "tmpfs", _MS_RDONLY | _MS_NOSUID | _MS_NODEV, "size=4k,mode=0")
            else:
                _mount(libc, "/dev/null", new_root + real, None, _MS_BIND)
        except OSError as exc:
            notes.append(f"could not hide {path} ({exc})")
    _devices(libc, new_root, gpu)
    if gpu and os.path.isdir("/sys"):
        _bind(libc, new_root, "/sys", _MS_NOEXEC)
    etc = _place(new_root, "/etc", True)
    with open(f"{etc}/passwd", "w") as f:  # getpass.getuser() and friends: the worker's one user
        f.write(f"nobody:x:{65534}:{65534}:nobody:/nonexistent:/usr/sbin/nologin\n")
    with open(f"{etc}/group", "w") as f:
        f.write("nogroup:x:65534:\n")
    for name in ETC_FILES:
        if os.path.isfile(f"/etc/{name}"):
            _bind(libc, new_root, f"/etc/{name}")
    scratch = _place(new_root, writable, True)
    _mount(libc, "tmpfs", scratch, "tmpfs", _MS_NOSUID | _MS_NODEV,
           f"size={quota_mb}m,mode=0700,uid={owner},gid={owner}")
    _mount(libc, "proc", _place(new_root, "/proc", True), "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC)
    _enter(libc, new_root)
    # the skeleton read-only: nothing but the worker's folder is writable
    _mount(libc, None, "/", None, _MS_BIND | _MS_REMOUNT | _MS_RDONLY | _MS_NOSUID | _MS_NODEV)
    return notes


def _devices(libc, new_root: str, gpu: bool) -> None:
    dev = _place(new_root, "/dev", True)
    for name in DEVICES:
        if os.path.exists(f"/dev/{name}"):
            _bind(libc, new_root, f"/dev/{name}", _MS_NOEXEC)
    for pattern in GPU_DEVICES if gpu else ():
        for path in glob.glob(pattern):
            if not os.path.isdir(path):
                _bind(libc, new_root, path, _MS_NOEXEC)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{dev}/{name}")


def _enter(libc, new_root: str) -> None:
    """``pivot_root`` into ``new_root`` and detach the machine's root: not covered, gone from the namespace."""
    nr = _PIVOT_ROOT.get(platform.machine())
    if nr is None:
        raise OSError(0, f"pivot_root: unknown system call number on {platform.machine()}")
    os.chdir(new_root)
    if libc.syscall(nr, b".", b".") != 0:  # the old root ends up stacked under the new one at "/"
        raise OSError(ctypes.get_errno(), f"pivot_root: {os.strerror(ctypes.get_errno())}")
    if libc.umount2(b".", _MNT_DETACH) != 0:
        raise OSError(ctypes.get_errno(), f"detaching the old root: {os.strerror(ctypes.get_errno())}")
    os.chdir("/")
