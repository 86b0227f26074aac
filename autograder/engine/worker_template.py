"""Start the submission's worker by forking a warm, clean template instead of a fresh interpreter.

A cold worker (``worker_control.Worker``'s fallback) is ``unshare --pid --fork --kill-child --mount-proc --net
--ipc python -I -c ...``: it imports torch again for every submission and every restart. A *template* is
that same interpreter (``python -I``, the worker's clean environment, the same ``sys.path``) after it
imported what the worker imports (``worker_main``, ``worker_ops``, ``worker_confine``, ``wire``: torch
among them) and nothing else. It runs no torch operation, so no thread pool exists when it forks, and it
never runs or even reads anything of a submission:

- it waits until a request is queued on its socket and forks a *monitor* before the request is read, so
  not one byte of any request (paths, the hide list, another student's folder) ever enters its memory,
  and what each worker starts from is the same untouched image;
- the monitor takes one request, becomes a session of its own, makes new PID, mount, network and IPC
  namespaces with ``unshare(2)`` (a user namespace as well where ``worker_confine.unshare_prefix`` needs one)
  and forks the worker, which is PID 1 of the new PID namespace (``--fork``) and dies with the monitor
  (``PR_SET_PDEATHSIG``: ``--kill-child``). The monitor reports both processes (pidfds) to the grading
  process, waits for the worker, reports its exit status and exits; the grading process closing its end
  (it died, or it killed the worker) makes the monitor kill the worker;
- the worker mounts its own ``/proc`` (``--mount-proc``), takes its log as stdout and stderr, closes
  every other descriptor but its socket, takes the request's environment and folder, sets the cold
  worker's rlimits, and runs ``worker_main.main``: ``setsid``, ``worker_confine.confine`` (its own root, uid 65534,
  capabilities dropped, the seccomp filter), then the requests, exactly as a cold worker.

Nothing passes from one worker to another: each is a fresh fork of the template (copy-on-write, no
shared writable mapping); torch's default generator and numpy's global one (when imported) are reseeded
here, Python's ``random`` reseeds itself at fork; only the hash seed is the template's (a cold worker
draws its own: nothing the grader relies on).

Where to find a template (``template()``): one a warm pool started (``instructor.warm_pool``: its socket
is inherited by the grading processes it forks, ``inherit()``), else one this grading process starts for itself early
(``prepare()`` in ``plugin/grading.pytest_configure``: it imports torch while the grading process does).
``GPTLAB_WORKER_START=cold`` keeps today's cold start; so does every failure here (no namespaces, an
environment the template was not started with, a template that died): ``TemplateUnavailable``, and the
``worker_control`` starts the worker cold.
"""

from __future__ import annotations

import ctypes
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository (or the handout) root
MODE_VAR = "GPTLAB_WORKER_START"  # "cold": never fork workers from a template
# what the cold worker has imported when it runs the submission's first request
PRELOAD = ("autograder.engine.worker_main", "autograder.engine.worker_confine", "autograder.engine.wire",
           "autograder.engine.worker_ops")
# the worker's environment variables that differ per worker (GPTLAB_LANG: read by worker_main.main, after the
# fork); every other one is read at import time (OMP_NUM_THREADS, CUDA_VISIBLE_DEVICES, ...) and must be the
# template's own
PER_WORKER = ("HOME", "TMPDIR", "GPTLAB_LANG")
TEMPLATE_HOME = "/nonexistent"
START_TIMEOUT_S = 60.0  # a template still importing torch on a busy machine: seconds, not a minute
_MAX = 1 << 20

_CLONE_NEWNS, _CLONE_NEWIPC, _CLONE_NEWUSER = 0x00020000, 0x08000000, 0x10000000
_CLONE_NEWPID, _CLONE_NEWNET = 0x20000000, 0x40000000
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC, _MS_REC, _MS_PRIVATE = 2, 4, 8, 16384, 1 << 18
_PR_SET_PDEATHSIG = 1


class TemplateUnavailable(Exception):
    """No worker could be forked from a template: start it cold."""


# -- the template (its own process) ------------------------------------------------------------


def serve(fd: int) -> None:
    """The template's loop. Never reads a request itself: a monitor forked for it does."""
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)
    ctl = socket.socket(fileno=fd)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # monitors are reaped by the kernel
    sys.stdout.flush()
    sys.stderr.flush()
    while True:
        try:
            if not ctl.recv(1, socket.MSG_PEEK):  # a request is queued (its first byte), or EOF
                os._exit(0)  # every grading process and pool holding its socket is gone
        except InterruptedError:
            continue
        except OSError:
            os._exit(0)
        took_r, took_w = os.pipe()
        try:
            pid = os.fork()
        except OSError:  # no process to be had: drop the request; its sender starts the worker cold
            os.close(took_r)
            os.close(took_w)
            _drop(ctl)
            continue
        if pid == 0:
            os.close(took_r)
            _monitor(ctl, took_w)
        os.close(took_w)
        os.read(took_r, 1)  # the monitor took the request (or died trying)
        os.close(took_r)


def _drop(ctl: socket.socket) -> None:
    try:
        _, fds, _, _ = socket.recv_fds(ctl, _MAX, 8)
        for f in fds:
            os.close(f)
    except OSError:
        pass


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _monitor(ctl: socket.socket, took: int) -> None:
    """Forked from the template (never returns): take one request, make the namespaces, fork the worker."""
    status = None
    code = 0
    try:
        _, fds, _, _ = socket.recv_fds(ctl, 16, 8)
        os.write(took, b".")
        os.close(took)
        ctl.close()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        if len(fds) != 4:
            os._exit(1)
        sock_fd, log_fd, status_fd, request_fd = fds
        status = socket.socket(fileno=status_fd)
        os.setsid()
        with os.fdopen(request_fd, "rb") as f:  # a memfd: the hide list has no size limit
            request = json.loads(f.read())
        if select.select([status], [], [], 0)[0]:
            os._exit(0)  # the grading process gave up waiting (closed its end) before we began
        differs = sorted(k for k in {*request["env"], *os.environ} if k not in PER_WORKER
                         and request["env"].get(k) != os.environ.get(k))
        if differs:
            raise TemplateUnavailable(f"the template was started with another {', '.join(differs)}")
        libc = _libc()
        uid, gid = os.geteuid(), os.getegid()
        flags = _CLONE_NEWNS | _CLONE_NEWNET | _CLONE_NEWIPC | _CLONE_NEWPID
        if request.get("user_ns"):
            flags |= _CLONE_NEWUSER
        if libc.unshare(flags) != 0:
            err = ctypes.get_errno()
            raise TemplateUnavailable(f"unshare: {os.strerror(err)}")
        if request.get("user_ns"):  # as unshare --map-root-user
            for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
                with open(f"/proc/self/{name}", "w") as f:
                    f.write(text)
        alive_r, alive_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            status.close()
            os.close(alive_w)
            _worker(request, sock_fd, log_fd, alive_r)
        os.close(alive_r)
        os.close(sock_fd)
        os.close(log_fd)
        worker_fd = os.pidfd_open(pid)
        socket.send_fds(status, [json.dumps({"monitor": os.getpid(), "worker": pid}).encode()],
                        [os.pidfd_open(os.getpid()), worker_fd])
        while True:
            ready = select.select([worker_fd, status], [], [])[0]
            if worker_fd in ready:
                break
            try:
                gone = not status.recv(64)
            except OSError:
                gone = True
            if gone:  # the grading process died, or stopped this worker: end it (and its namespace)
                signal.pidfd_send_signal(worker_fd, signal.SIGKILL)
                select.select([worker_fd], [], [])
                break
        _, st = os.waitpid(pid, 0)
        try:
            status.sendall(json.dumps({"status": os.waitstatus_to_exitcode(st)}).encode())
        except OSError:
            pass
    except BaseException as exc:  # noqa: BLE001 - the grading process starts a cold worker instead
        code = 1
        try:
            if status is not None:
                status.sendall(json.dumps({"error": f"{type(exc).__name__}: {exc}"[:500]}).encode())
        except OSError:
            pass
    finally:
        os._exit(code)


def _worker(request: dict, sock_fd: int, log_fd: int, alive_r: int) -> None:
    """PID 1 of the new namespaces (never returns): become what the cold worker is, then run it."""
    code = 0
    try:
        libc = _libc()
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # --kill-child
        if select.select([alive_r], [], [], 0)[0]:
            os._exit(1)  # the monitor died before the line above
        os.close(alive_r)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        from autograder.engine.worker_confine import _mount

        # what unshare --mount-proc does: private propagation, then a /proc of this PID namespace
        _mount(libc, None, "/", None, _MS_REC | _MS_PRIVATE)
        _mount(libc, "proc", "/proc", "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.closerange(3, sock_fd)  # every descriptor but 0, 1, 2 and the worker's socket
        os.closerange(sock_fd + 1, _max_fd())
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["workdir"])
        _fresh_state()
        from autograder.engine.worker_confine import set_worker_limits

        set_worker_limits(int(request["memory_mb"]))
        from autograder.engine.worker_main import main

        confine = request.get("confine")
        main(sock_fd, request["device"], confine or None)
    except BaseException:  # noqa: BLE001 - the log says why; the grading process sees the exit
        code = 70
        try:
            import traceback

            traceback.print_exc()
            sys.stderr.flush()
        except Exception:  # noqa: BLE001
            pass
    finally:
        os._exit(code)


def _max_fd() -> int:
    try:
        return int(os.sysconf("SC_OPEN_MAX"))
    except (ValueError, OSError):
        return 65536


def _fresh_state() -> None:
    """What a fresh interpreter would not share with its siblings: random state, cached temp folder."""
    if "tempfile" in sys.modules:
        sys.modules["tempfile"].tempdir = None
    np_random = sys.modules.get("numpy.random")
    if np_random is not None:
        try:
            np_random.seed()
        except Exception:  # noqa: BLE001
            pass
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.seed()  # torch draws its default generator's seed at start-up: each cold worker its own
    # Python's random module reseeds itself in a forked child (os.register_at_fork)


# -- the grading process's side --------------------------------------------------------------


class ForkedProcess:
    """A worker forked from a template, as ``subprocess.Popen`` is for a cold one: ``pid`` (the monitor,
    leader of its own session), ``poll``, ``wait``, plus ``kill`` (monitor and worker, through pidfds)."""

    def __init__(self, status: socket.socket, info: dict, pidfds: list[int]):
        self._status = status
        self.pid = int(info["monitor"])
        self.worker_pid = int(info["worker"])
        self._monitor_fd, self._worker_fd = pidfds
        self.returncode: int | None = None
        self._reported: int | None = None

    def __del__(self):
        if self.returncode is None:
            for fd in (self._monitor_fd, self._worker_fd):
                try:
                    os.close(fd)
                except OSError:
                    pass

    def _drain(self, timeout: float) -> None:
        """Read what the monitor said, up to ``timeout``; settle returncode once the worker is gone."""
        if self.returncode is not None:
            return
        end = time.monotonic() + timeout
        while self._status is not None:
            left = max(0.0, end - time.monotonic())
            if not select.select([self._status], [], [], left)[0]:
                break
            try:
                msg = self._status.recv(4096)
            except OSError:
                msg = b""
            if not msg:
                self._status.close()
                self._status = None
                break
            try:
                self._reported = int(json.loads(msg)["status"])
            except (ValueError, KeyError, TypeError):
                pass
        if self._status is None:  # the monitor is gone; the worker dies with it (PDEATHSIG)
            left = max(0.0, end - time.monotonic())
            if select.select([self._worker_fd], [], [], left)[0]:
                self.returncode = self._reported if self._reported is not None else -signal.SIGKILL
                for fd in (self._monitor_fd, self._worker_fd):
                    os.close(fd)

    def poll(self) -> int | None:
        self._drain(0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            self._drain(1.0 if end is None else max(0.0, min(1.0, end - time.monotonic())))
            if self.returncode is not None:
                return self.returncode
            if end is not None and time.monotonic() >= end:
                raise subprocess.TimeoutExpired("forked worker", timeout)

    def kill(self) -> None:
        if self.returncode is not None:
            return
        for fd in (self._worker_fd, self._monitor_fd):
            try:
                signal.pidfd_send_signal(fd, signal.SIGKILL)
            except OSError:
                pass


class Template:
    """The grading process's handle on a template: ``fork_worker`` asks it for one worker."""

    def __init__(self, ctl: socket.socket, proc: subprocess.Popen | None = None):
        self.ctl = ctl
        self.proc = proc  # the template's process when this grading process started it
        self._lock = threading.Lock()

    def fork_worker(self, *, sock_fd: int, log_fd: int, workdir: str, device: str, confine, env: dict,
                    memory_mb: int, user_ns: bool, timeout: float = START_TIMEOUT_S) -> ForkedProcess:
        request = {"workdir": workdir, "device": device, "confine": confine, "env": env,
                   "memory_mb": memory_mb, "user_ns": user_ns}
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        memfd = os.memfd_create("gptlab-worker-request", os.MFD_CLOEXEC)
        try:
            with os.fdopen(os.dup(memfd), "wb") as f:
                f.write(json.dumps(request).encode())
            os.lseek(memfd, 0, os.SEEK_SET)
            with self._lock:
                socket.send_fds(self.ctl, [b"w"], [sock_fd, log_fd, theirs.fileno(), memfd])
        except OSError as exc:
            mine.close()
            raise TemplateUnavailable(f"the template is gone ({exc})") from None
        finally:
            theirs.close()
            os.close(memfd)
        try:
            if not select.select([mine], [], [], timeout)[0]:
                raise TemplateUnavailable(f"no worker from the template within {timeout:g} s")
            msg, fds, _, _ = socket.recv_fds(mine, 4096, 2)
            info = json.loads(msg) if msg else {"error": "the template or its monitor died"}
            if "monitor" not in info or len(fds) != 2:
                for fd in fds:
                    os.close(fd)
                raise TemplateUnavailable(str(info.get("error", "no worker")))
        except BaseException:
            mine.close()  # a monitor that starts later sees it closed and forks nothing
            raise
        return ForkedProcess(mine, info, fds)


def _start_template(env: dict) -> tuple[subprocess.Popen, socket.socket]:
    """A template process, importing in the background: its socket queues requests meanwhile."""
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); "
            f"from autograder.engine.worker_template import serve; serve({theirs.fileno()})")
    try:
        proc = subprocess.Popen([sys.executable, "-I", "-c", code], pass_fds=[theirs.fileno()], cwd="/",
                                env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
    finally:
        theirs.close()
    return proc, mine


def start_for_pool(environ: dict) -> tuple[subprocess.Popen, socket.socket] | None:
    """For a warm pool: a template whose workers have the environment the pool's grading processes
    (environment ``environ``) give theirs; None where workers start cold (no namespaces, or asked)."""
    from autograder.engine import worker_confine, worker_control

    if environ.get(MODE_VAR) == "cold" or worker_confine.unshare_prefix() is None:
        return None
    return _start_template(worker_control.worker_env(TEMPLATE_HOME, environ))


_template: dict = {}


def prepare() -> None:
    """Early in a grading process: find this process's template, or start one (it imports while we do)."""
    template()


def template() -> Template | None:
    """This grading process's template, or None (workers start cold)."""
    if "t" in _template:
        return _template["t"]
    found = None
    fd = _template.pop("inherited", None)
    if os.environ.get(MODE_VAR) == "cold":
        if fd is not None:
            os.close(fd)
    elif fd is not None:
        found = Template(socket.socket(fileno=fd))
    else:
        try:
            started = start_for_pool(dict(os.environ))
        except Exception:  # noqa: BLE001 - no template (no process to be had): workers start cold
            started = None
        if started is not None:
            found = Template(started[1], started[0])
    _template["t"] = found
    return found


def inherit(fd: int) -> None:
    """In a grading process forked by a warm pool: ``fd`` is the pool's template's socket."""
    _template.clear()
    _template["inherited"] = fd


def own_template_pid() -> int | None:
    """The template this process started (not one inherited from a pool), if any."""
    t = _template.get("t")
    return t.proc.pid if t is not None and t.proc is not None else None


def forget() -> None:
    """Stop using this process's template (a test starts workers cold, or another template)."""
    t = _template.pop("t", None)
    if t is not None and t.proc is not None:
        t.ctl.close()
        try:
            t.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            t.proc.kill()
