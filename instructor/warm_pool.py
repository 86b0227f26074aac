"""Warm grading processes: pay for the interpreter, torch, pytest, hypothesis and the grader's own
modules once, then grade each submission in a fresh process forked from that warm one.

Two processes of the instructor's side, neither of which ever runs student code:

- the *zygote* (``python -m instructor.warm_pool``, started by ``WarmPool``): imports the libraries
  and the grader's helper modules (not its check modules, not its conftest or plugin/, not the hidden checks,
  and it runs no torch operation: only imports, so no thread pool exists when it forks), then waits on
  one socket for requests. It keeps no state about any submission.
- per request, a *monitor* forked from the zygote: it forks the *grading child*, reports its pid, waits
  for it and reports its exit status, then exits. The grading child is what ``grade_class.grade_one``'s
  ``python -m pytest autograder ...`` subprocess was: same arguments (``pytest.main``), same working
  folder, environment, log file and results JSON, its own session (so ``grade_one``'s time-out kills its
  whole tree as before). It starts the submission's worker exactly as the cold run does
  (``engine.worker_control.Worker``: ``unshare`` namespaces, ``confine()``, rlimits, disk quota, process police), so
  every limit and isolation of the worker is today's.

Nothing is shared between two submissions: each grading child is a new process, forked from a zygote
that never graded anything, with its own folder; what one child does (kill its parent, fork, fill its
disk) cannot reach the zygote's memory, and the zygote only forks. A zygote that dies anyway is
restarted at the next request.

Requests travel on a ``socketpair`` (no file-system socket another user or a submission could open):
each request carries a fresh socket of its own (``SCM_RIGHTS``) on which the monitor answers, so
several grading threads use one zygote at once.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

from autograder.engine import worker_template
from autograder.engine.processes import kill_tree

REPO = Path(__file__).resolve().parent.parent
# what the cold grading process imports before grading anything (measured: torch ~1.5 s, pytest +
# hypothesis + nbformat ~0.5 s); the check modules (autograder/checks/) and the plugin (conftest, plugin/) are left to
# pytest's own collection, so a child imports them exactly as a cold run does
PRELOAD = ("torch", "torch.nn", "torch.nn.functional", "pytest", "hypothesis", "nbformat", "numpy",
           "autograder.checks.verdicts", "autograder.checks.standins", "autograder.engine.load", "autograder.engine.report",
           "autograder.engine.submission", "autograder.engine.worker_control", "autograder.engine.wire", "autograder.notebook",
           "autograder.checks.sampling", "autograder.engine.hidden_count", "autograder.engine.run_cells")
_MAX_REQUEST = 1 << 20  # a request is a command line and an environment: far below 1 MB


class WarmPoolError(RuntimeError):
    """The zygote could not be started or stopped answering."""


# -- the zygote (its own process) -------------------------------------------------------------


def _preload() -> list[str]:
    import importlib

    failed = []
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - a module that fails here fails again, reported, in the child
            failed.append(f"{name}: {type(exc).__name__}")
    try:
        import torch

        # the grading process of a cold run has OMP_NUM_THREADS=1 (grade_one); torch read it at import
        # time here already, this only makes sure no pool is sized otherwise before the fork
        torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))
    except Exception:  # noqa: BLE001
        pass
    return failed


def _send(sock: socket.socket, obj: dict) -> None:
    sock.sendall(json.dumps(obj).encode() + b"\n")


def _recv_line(sock: socket.socket, limit: int = _MAX_REQUEST) -> dict | None:
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = sock.recv(65536)
        if not chunk:
            return None
        buf += chunk
        if len(buf) > limit:
            raise ValueError("request too large")
    return json.loads(buf)


def _grading_child(request: dict, template_fd: int | None) -> None:
    """In the grading child (never returns): become what ``python -m pytest <args>`` would be."""
    code = 70
    try:
        os.setsid()
        for sig in (signal.SIGCHLD, signal.SIGPIPE, signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        if template_fd is not None:  # the sandbox forks the student's worker from the pool's template
            worker_template.inherit(template_fd)
        sys.dont_write_bytecode = bool(request["env"].get("PYTHONDONTWRITEBYTECODE"))
        import tempfile

        tempfile.tempdir = None  # read TMPDIR again: this submission's folder
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(null)
        os.close(log)
        sys.stdin = open(0, closefd=False)
        sys.stdout = open(1, "w", buffering=1, closefd=False)
        sys.stderr = open(2, "w", buffering=1, closefd=False)
        # as ``python -m pytest`` from this folder: the working folder first on the path
        sys.path[0] = os.getcwd()
        sys.argv = ["pytest", *request["args"]]
        import pytest

        code = int(pytest.main(list(request["args"])))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - the log says why; the status says it failed
        import traceback

        traceback.print_exc()
        code = 70
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:  # noqa: BLE001
            pass
        os._exit(code)


def _monitor(conn: socket.socket, request: dict, control: socket.socket, template_fd: int | None) -> None:
    """In the monitor (never returns): fork the grading child, report its pid and exit status."""
    code = 0
    try:
        control.close()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        pid = os.fork()
        if pid == 0:
            conn.close()
            _grading_child(request, template_fd)
        _send(conn, {"pid": pid})
        _, status = os.waitpid(pid, 0)
        _send(conn, {"status": os.waitstatus_to_exitcode(status)})
    except BaseException:  # noqa: BLE001 - the caller sees the socket close without a status
        code = 1
    finally:
        os._exit(code)


def serve(fd: int, template_fd: int | None = None) -> None:
    """The zygote's loop: each message on ``fd`` carries a request and the socket to answer on.
    ``template_fd``: the socket of the pool's worker template, for the grading children."""
    failed = _preload()
    control = socket.socket(fileno=fd)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # monitors are reaped by the kernel
    _send(control, {"ready": True, "preload_failed": failed})
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(control, _MAX_REQUEST, 1)
        except OSError:
            os._exit(0)
        if not data:
            os._exit(0)  # the instructor's process closed its end (or died)
        if not fds:
            continue
        conn = socket.socket(fileno=fds[0])
        try:
            request = json.loads(data)
            pid = os.fork()
        except (ValueError, OSError) as exc:
            try:
                _send(conn, {"error": f"{type(exc).__name__}: {exc}"})
            except OSError:
                pass
            conn.close()
            continue
        if pid == 0:
            _monitor(conn, request, control, template_fd)
        conn.close()


# -- the instructor's side ---------------------------------------------------------------------


class WarmPool:
    """A zygote for the grading processes of one instructor process (thread-safe).

    ``run(args, cwd, env, log, timeout)`` grades like ``subprocess.Popen([python, -m, pytest, *args])``
    with ``start_new_session=True`` and ``.wait(timeout)``: returns the exit status, or None after a
    time-out (the child's whole tree is then killed by the caller through ``kill``)."""

    def __init__(self, template: bool = True):
        self._lock = threading.Lock()
        self.template = template  # fork the students' workers from a warm template too
        self._templates: list[subprocess.Popen] = []
        self._proc: subprocess.Popen | None = None
        self._control: socket.socket | None = None
        self.graded = 0  # grading processes that ran to an exit status here (not fallen back to a cold start)
        self.starts = 0  # zygotes started (more than one: one died and was replaced)

    def _start(self) -> None:
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        env.setdefault("OMP_NUM_THREADS", "1")
        template = worker_template.start_for_pool(env) if self.template else None
        fds = [theirs.fileno()]
        if template is not None:  # importing while the zygote does; its socket goes to every grading child
            proc, template_sock = template
            self._templates.append(proc)  # a replaced zygote's template ends with its last grading child
            fds.append(template_sock.fileno())
        self._proc = subprocess.Popen(
            [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(REPO)!r}); "
             f"from instructor.warm_pool import serve; serve({theirs.fileno()}, {fds[1] if template else None})"],
            pass_fds=fds, cwd=REPO, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        theirs.close()
        if template is not None:
            template_sock.close()  # the template lives as long as the zygote and its grading children
        mine.settimeout(120)  # importing torch on a busy machine: seconds, not minutes
        try:
            hello = json.loads(mine.recv(_MAX_REQUEST) or b"{}")
        except (OSError, ValueError) as exc:
            self.close()
            raise WarmPoolError(f"the warm zygote did not start ({exc})") from None
        if not hello.get("ready"):
            self.close()
            raise WarmPoolError("the warm zygote did not start")
        mine.settimeout(None)
        self._control = mine
        self.starts += 1

    def start(self) -> "WarmPool":
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._start()
        return self

    def _submit(self, request: dict) -> socket.socket:
        mine, theirs = socket.socketpair()
        try:
            with self._lock:
                for attempt in range(2):
                    if self._proc is None or self._proc.poll() is not None or self._control is None:
                        self._start()
                    try:
                        socket.send_fds(self._control, [json.dumps(request).encode()], [theirs.fileno()])
                        break
                    except OSError:
                        if attempt:
                            raise
                        self._proc = None  # a dead zygote: start another one
        finally:
            theirs.close()
        return mine

    def run(self, args: list[str], cwd: Path, env: dict, log: Path, timeout: float) -> int | None:
        conn = self._submit({"args": [str(a) for a in args], "cwd": str(cwd), "env": dict(env),
                             "log": str(log)})
        reader = conn.makefile("rb")
        try:
            conn.settimeout(60)
            first = json.loads(reader.readline() or b"{}")
            if "pid" not in first:
                raise WarmPoolError(f"the warm zygote could not fork: {first.get('error', 'no answer')}")
            pid = first["pid"]
            conn.settimeout(timeout)
            try:
                line = reader.readline()
            except (socket.timeout, TimeoutError):
                kill_tree(pid)
                return None
            if not line:
                kill_tree(pid)
                raise WarmPoolError("the monitor of a warm grading process died")
            status = int(json.loads(line)["status"])
            with self._lock:
                self.graded += 1
            return status
        finally:
            reader.close()
            conn.close()

    def close(self) -> None:
        with self._lock:
            if self._control is not None:
                self._control.close()
                self._control = None
            if self._proc is not None:
                try:
                    self._proc.wait(timeout=5)  # it exits when its socket closes
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
                self._proc = None
            for proc in self._templates:  # each exits once its zygote and grading children are gone
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            self._templates = []

    @property
    def template_pid(self) -> int | None:
        """The worker template of the current zygote (None: workers start cold)."""
        p = self._templates[-1] if self._templates else None
        return p.pid if p is not None and p.poll() is None else None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()


def available() -> bool:
    """Whether a warm pool can work here (fork and SCM_RIGHTS: Linux and other POSIX systems)."""
    return hasattr(os, "fork") and hasattr(socket, "send_fds") and sys.platform != "win32"
