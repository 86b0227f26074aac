"""Ending a process tree: the one implementation (the worker's, the grading processes' of a class, the
warm pool's). Runs in whichever process started the tree: the grading process or the instructor's.
"""

from __future__ import annotations

import os
import signal


def kill_tree(pid: int, others=()) -> None:
    """SIGKILL ``pid``'s process group, the groups of all its descendants and every descendant, plus the
    processes ``others`` (psutil processes: e.g. orphans re-parented to a subreaper) and their groups.
    Twice, so that a process forked while the first pass ran is caught by the second. Never signals the
    caller's own process group. A process already gone is no error."""
    try:
        import psutil

        descendants = psutil.Process(pid).children(recursive=True)
    except Exception:  # noqa: BLE001 - psutil missing, or the process already gone
        descendants = []
    descendants = [*descendants, *others]
    groups = {pid}
    for p in descendants:
        try:
            groups.add(os.getpgid(p.pid))
        except OSError:
            pass
    groups.discard(os.getpgrp())
    for _ in range(2):
        for g in groups:
            try:
                os.killpg(g, signal.SIGKILL)
            except OSError:
                pass
        for p in descendants:
            try:
                p.kill()
            except Exception:  # noqa: BLE001 - already gone
                pass
