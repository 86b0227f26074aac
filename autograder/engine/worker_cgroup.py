"""One worker's control groups: its threads and processes counted together, its memory capped for the
whole tree (grading-process side, Linux).

Where the grading user may make cgroups (root on most grading servers, containers and Slurm nodes; a
delegated cgroup v2 subtree), each worker gets one per controller before any submission code runs:
``pids.max`` = ``worker_confine.MAX_TASKS`` (every thread counts) and a memory limit of the worker's
``memory_mb`` for all its processes together (and no swap beyond it): past it the kernel's OOM killer ends
a process of that tree and no other. Both cgroup v1 (``/sys/fs/cgroup/{pids,memory}``) and v2 are read
from ``/proc/self/mountinfo``; the worker's cgroups are children of the grading process's own.

Where none can be made (an ordinary user without delegation), ``create`` returns None, and the fallback
is: threads and processes are capped by RLIMIT_NPROC in the worker's own user namespace
(``worker_confine``), memory by RLIMIT_AS per process plus the grading process adding up its processes'
proportional memory every ``POLICE_EVERY_S`` (``worker_control.Worker._police``): a tree can overshoot for
that long, by at most what its processes allocate in that time.
"""

from __future__ import annotations

import itertools
import os
import signal
import time

_counter = itertools.count()


def _hierarchies() -> list[tuple[str, str, set[str]]]:
    """(mount point, the mount's root inside its hierarchy, controllers) of each cgroup mount with a
    controller this module uses; controllers {"v2"} for the unified hierarchy."""
    found = []
    try:
        with open("/proc/self/mountinfo") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        fstype, options = tail[0], set(tail[2].split(","))
        if fstype == "cgroup" and options & {"pids", "memory"}:
            found.append((fields[4], fields[3], options & {"pids", "memory"}))
        elif fstype == "cgroup2":
            found.append((fields[4], fields[3], {"v2"}))
    return found


def _own_paths() -> dict[str, str]:
    """This process's cgroup path per controller ("v2" for the unified hierarchy)."""
    paths = {}
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, controllers, path = line.rstrip("\n").split(":", 2)
                for c in controllers.split(",") if controllers else ["v2"]:
                    paths[c] = path
    except (OSError, ValueError):
        pass
    return paths


def _write(path: str, value) -> None:
    with open(path, "w") as f:
        f.write(str(value))


class TreeLimits:
    """The cgroups of one worker (one per hierarchy used); ``add`` puts a process, and all it starts, in."""

    def __init__(self, dirs: list[str]):
        self.dirs = dirs

    @classmethod
    def create(cls, tasks: int, memory_bytes: int) -> "TreeLimits | None":
        """Cgroups limiting ``tasks`` and ``memory_bytes``, or None where both cannot be had here."""
        own = _own_paths()
        made: list[str] = []
        have: set[str] = set()
        name = f"gptlab-worker-{os.getpid()}-{next(_counter)}"
        try:
            for mount, root, controllers in _hierarchies():
                key = "v2" if controllers == {"v2"} else sorted(controllers)[0]
                if key not in own or controllers <= have:
                    continue
                rel = os.path.relpath(own[key], root) if own[key].startswith(root) else None
                if rel is None:
                    continue
                d = os.path.normpath(os.path.join(mount, rel, name))
                try:
                    os.mkdir(d, 0o755)
                except OSError:
                    continue
                before = set(have)
                if os.path.exists(f"{d}/pids.max"):
                    _write(f"{d}/pids.max", tasks)
                    have.add("pids")
                if os.path.exists(f"{d}/memory.limit_in_bytes"):  # v1; the swap limit after the memory one
                    _write(f"{d}/memory.limit_in_bytes", memory_bytes)
                    if os.path.exists(f"{d}/memory.memsw.limit_in_bytes"):
                        _write(f"{d}/memory.memsw.limit_in_bytes", memory_bytes)
                    have.add("memory")
                elif os.path.exists(f"{d}/memory.max"):  # v2
                    _write(f"{d}/memory.max", memory_bytes)
                    if os.path.exists(f"{d}/memory.swap.max"):
                        _write(f"{d}/memory.swap.max", 0)
                    have.add("memory")
                if have == before:  # a hierarchy without either controller (a hybrid system's unified one)
                    os.rmdir(d)
                else:
                    made.append(d)
        except OSError:
            have.clear()
        limits = cls(made)
        if have != {"pids", "memory"}:
            limits.remove()
            return None
        return limits

    def add(self, pid: int) -> None:
        """Move ``pid`` (a whole process) in; what it starts afterwards is in too."""
        for d in self.dirs:
            _write(f"{d}/cgroup.procs", pid)

    def oom_killed(self) -> bool:
        """Whether the kernel killed a process of this tree for its memory limit."""
        for d in self.dirs:
            for name, key in (("memory.oom_control", "oom_kill"), ("memory.events", "oom_kill")):
                try:
                    with open(f"{d}/{name}") as f:
                        for line in f:
                            k, _, v = line.partition(" ")
                            if k == key and int(v) > 0:
                                return True
                except (OSError, ValueError):
                    continue
        return False

    def remove(self) -> None:
        """Kill whatever is still in and remove the cgroups (their processes are gone within moments)."""
        for d in self.dirs:
            for _ in range(20):
                try:
                    with open(f"{d}/cgroup.procs") as f:
                        pids = [int(p) for p in f.read().split()]
                except OSError:
                    pids = []
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)
        self.dirs = []
