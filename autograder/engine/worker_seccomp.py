"""The worker's seccomp filter: the system calls a lab never needs answer EPERM (Linux).

Installed by ``worker_confine.confine`` as the worker's very last step before any submission code, once its
root, its user and its capabilities are settled; inherited by every thread and process it starts, and
never removable. Refused (EPERM, not a kill: a library that probes one of them, as glibc probes clone3,
carries on): new namespaces (``unshare``, ``setns``, ``clone`` with a namespace flag), keyrings, ``ptrace``
and reading or writing another process's memory, every way to mount, ``chroot``, ``bpf``, perf events,
loading kernel modules or kernels, ``userfaultfd``, ``io_uring`` (its operations bypass seccomp), file
handles (``open_by_handle_at``), clocks, swap, reboot. ``clone3`` answers ENOSYS: its flags sit in memory
that a filter cannot read, and ENOSYS makes glibc fall back to ``clone``, whose flags it can.

Why libseccomp through ctypes, not bubblewrap's ``--seccomp FD`` or a Python binding: bubblewrap applies its
filter to a program it executes, and the worker is forked from a warm template that already imported torch
(no exec; ``worker_template``). libseccomp (``libseccomp2``, on every Debian-like system, a dependency of
systemd) compiles the rules for the machine's architecture and kills calls made through another one
(a 32-bit ``int 0x80`` on x86-64), which a hand-written BPF program would have to get right itself;
through ctypes it needs no build step and no package in the venv (Debian's ``python3-seccomp`` binds only
the system Python). Where libseccomp is missing, ``install`` says so and the worker runs without the filter
(the other defences hold: see docs/architecture.md).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno

# every call refused outright
REFUSED = (
    "unshare", "setns", "keyctl", "add_key", "request_key", "ptrace", "process_vm_readv", "process_vm_writev",
    "kcmp", "mount", "umount", "umount2", "pivot_root", "chroot", "fsopen", "fsmount", "fsconfig", "fspick",
    "move_mount", "open_tree", "mount_setattr", "bpf", "perf_event_open", "kexec_load", "kexec_file_load",
    "init_module", "finit_module", "delete_module", "create_module", "userfaultfd", "io_uring_setup",
    "io_uring_enter", "io_uring_register", "open_by_handle_at", "name_to_handle_at", "swapon", "swapoff",
    "reboot", "acct", "quotactl", "syslog", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
    "sethostname", "setdomainname", "iopl", "ioperm", "lookup_dcookie", "uselib", "vhangup", "nfsservctl",
    "_sysctl", "sysfs", "personality",
)
# clone (and fork's clone) with any of these flags is refused: a new namespace of any kind
NAMESPACE_FLAGS = {"CLONE_NEWNS": 0x00020000, "CLONE_NEWCGROUP": 0x02000000, "CLONE_NEWUTS": 0x04000000,
                   "CLONE_NEWIPC": 0x08000000, "CLONE_NEWUSER": 0x10000000, "CLONE_NEWPID": 0x20000000,
                   "CLONE_NEWNET": 0x40000000, "CLONE_NEWTIME": 0x00000080}

_ACT_ALLOW = 0x7FFF0000
_CMP_MASKED_EQ = 7
_ATTR_TSYNC = 4  # SCMP_FLTATR_CTL_TSYNC: every thread of the process, not only the caller


def _errno_action(code: int) -> int:
    return 0x00050000 | (code & 0xFFFF)  # SCMP_ACT_ERRNO(code)


class _ArgCmp(ctypes.Structure):  # struct scmp_arg_cmp
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64),
                ("datum_b", ctypes.c_uint64)]


def _library():
    name = ctypes.util.find_library("seccomp") or "libseccomp.so.2"
    lib = ctypes.CDLL(name, use_errno=True)
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint,
                                           ctypes.POINTER(_ArgCmp)]
    lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    return lib


def available() -> bool:
    try:
        _library()
        return True
    except OSError:
        return False


def install() -> str | None:
    """Load the filter into this process (inherited by all it starts). None, or why it could not be."""
    try:
        lib = _library()
    except OSError as exc:
        return f"no seccomp filter: libseccomp is missing ({exc})"
    ctx = lib.seccomp_init(_ACT_ALLOW)
    if not ctx:
        return "no seccomp filter: seccomp_init failed"
    try:
        lib.seccomp_attr_set(ctx, _ATTR_TSYNC, 1)

        def rule(name: str, action: int, *cmps: _ArgCmp) -> None:
            nr = lib.seccomp_syscall_resolve_name(name.encode())
            if nr < 0:  # no such call on this architecture
                return
            arr = (_ArgCmp * len(cmps))(*cmps) if cmps else None
            rc = lib.seccomp_rule_add_array(ctx, action, nr, len(cmps), arr)
            if rc < 0:
                raise OSError(-rc, f"seccomp rule for {name}: {errno.errorcode.get(-rc, rc)}")

        eperm = _errno_action(errno.EPERM)
        for name in REFUSED:
            rule(name, eperm)
        for flag in NAMESPACE_FLAGS.values():
            rule("clone", eperm, _ArgCmp(0, _CMP_MASKED_EQ, flag, flag))
        rule("clone3", _errno_action(errno.ENOSYS))
        rc = lib.seccomp_load(ctx)
        if rc < 0:
            return f"no seccomp filter: seccomp_load failed ({errno.errorcode.get(-rc, rc)})"
        return None
    except OSError as exc:
        return f"no seccomp filter: {exc}"
    finally:
        lib.seccomp_release(ctx)
