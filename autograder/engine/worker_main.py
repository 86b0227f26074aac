"""The submission's process: executes the submission and answers the grading process's requests.

Started by ``worker_control.Worker`` as ``python -I -c ...`` in its own temporary directory, with its
limits already set, or forked from a warm template that did the same imports (``worker_template``).
It never decides a grade: it only runs code and returns plain data.
"""

from __future__ import annotations

import os
import socket
import sys


def main(fd: int, device: str, confine: dict | None = None) -> None:
    notes = ["no namespaces here: the submission can read what the grading user can read; "
             "its disk use is measured from outside"]
    # A process group of its own: under `unshare --fork` the worker would share its group with the
    # unshare process outside its namespaces, and `os.kill(0, SIGKILL)` from student code would reach
    # that process (and so end the worker at some later request, charged to whichever cell ran then).
    # Without namespaces the worker already leads its group (setsid in worker_control): nothing to do.
    try:
        os.setsid()
    except OSError:
        pass
    if os.environ.get("GPTLAB_LANG"):  # the messages' catalogue is read now, before the confinement
        from autograder import i18n

        i18n.set_language(os.environ["GPTLAB_LANG"])
    if confine is not None:
        from autograder.engine.worker_confine import confine as _confine

        notes = _confine(confine)
    from autograder.engine import wire as protocol
    from autograder.engine.worker_ops import Runtime

    sock = socket.socket(fileno=fd)
    sys.argv = ["submission"]
    runtime = Runtime(device=device, guard=True)
    runtime.isolation_notes = notes
    while True:
        try:
            request = protocol.recv(sock)
        except (EOFError, OSError, protocol.ProtocolError):
            os._exit(0)
        answer = runtime.dispatch(request, timeout=request.get("timeout"))
        try:
            protocol.send(sock, answer, max_bytes=protocol.MAX_ANSWER_BYTES)
        except protocol.ProtocolError as exc:
            protocol.send(sock, {"ok": False, "error": {"type": "OutputTooLarge", "message": str(exc)}})
        except (OSError, ValueError, TypeError) as exc:
            protocol.send(sock, {"ok": False, "error": {"type": "Unsendable", "message": str(exc)[:200]}})
