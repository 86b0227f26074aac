"""Start, limit, talk to and kill the submission's worker process (grading-process side).

What the worker gets (see README, "What the grader enforces"):
- its own process session and a fresh temporary working directory, removed afterwards;
- a clean environment: no variable of the grading run (``PYTEST_*``, ``NBGRADER_*``, the reference's
  path), ``PYTHON*`` ignored (``python -I``);
- resource limits: address space (``memory_mb``), file size, no core dumps; its cgroups (``worker_cgroup``:
  threads and processes together, memory for the whole tree) where they can be made, else the tree's memory
  added up here; a process count: the grader counts the worker's processes while it waits and kills them
  all past ``max_processes``; its threads are capped inside (RLIMIT_NPROC in its own user namespace:
  ``worker_confine``);
- a time limit on every request (soft: a signal in the worker; hard: the grader kills the process
  group and every descendant a few seconds later), and never past the submission's own deadline;
- a disk quota: a tmpfs of ``isolation.DISK_QUOTA_MB`` as its folder where namespaces exist; without
  them the grader measures the folder while it waits and kills the worker past the same figure;
- a cap on the size of each answer it sends back (``protocol.MAX_ANSWER_BYTES``), checked before
  the answer is read.
"""

from __future__ import annotations

import ctypes
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from pathlib import Path

from autograder.engine import worker_confine as isolation
from autograder.engine import wire as protocol
from autograder.engine import worker_template
from autograder.engine.worker_cgroup import TreeLimits
from autograder.engine.processes import kill_tree
from autograder.i18n import tr

ROOT = Path(__file__).resolve().parents[2]  # the repository (or the handout) root
GRACE_S = 3.0  # time the soft limit gets to interrupt the student's code before the kill
POLICE_EVERY_S = 0.25  # process count and disk use checked this often while a request runs
DISK_QUOTA_BYTES = isolation.DISK_QUOTA_MB << 20


# Defences of the worker's confinement left out ("root", "user", "seccomp", "cgroup", "police"): only tests
# fill it, to show that each hostile case fails without its defence (a planted bug): through a monkeypatch
# (tests/engine), or through this variable for a whole grading run (tests/test_confinement.py). A run
# without one says so in its report (the worker's isolation notes).
SKIP_VAR = "GPTLAB_TEST_ONLY_SKIP_DEFENCES"
SKIPPED_DEFENCES: set[str] = {d for d in os.environ.get(SKIP_VAR, "").split(",") if d}


class WorkerDied(Exception):
    """The worker process ended or stopped answering."""

    def __init__(self, message: str, timed_out: bool = False, budget: bool = False):
        super().__init__(message)
        self.timed_out = timed_out
        self.budget = budget  # the submission's whole time budget ran out (not this request's limit)


def _keep() -> list[Path]:
    keep = [ROOT / "autograder", ROOT / "data", Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix),
            Path(sys.executable).resolve().parent.parent]
    if os.environ.get("GPTLAB_DATA"):
        keep.append(Path(os.environ["GPTLAB_DATA"]))
    return keep


def worker_env(home: str, environ) -> dict:
    """The worker's whole environment: nothing of the grading run's but what it needs."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": home,
        "TMPDIR": home,
        "MPLBACKEND": "Agg",
        "OMP_NUM_THREADS": environ.get("OMP_NUM_THREADS", "1"),
        "LANG": "C.UTF-8",
    }
    for key in ("GPTLAB_DATA", "CUDA_VISIBLE_DEVICES"):
        if key in environ:
            env[key] = environ[key]
    from autograder import i18n

    if i18n.language() != i18n.DEFAULT:  # the stand-ins' and time limits' messages, in the run's language
        env["GPTLAB_LANG"] = i18n.language()
    return env


def _become_subreaper() -> None:
    """Orphaned descendants of the worker are re-parented to us, so we can find and kill them."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


# every Worker of this process that may be running: what one Worker leaves behind is its own to kill, never
# another's tree (a process holding several workers: a test session, a grader that restarts one)
_WORKERS: "weakref.WeakSet[Worker]" = weakref.WeakSet()


class Worker:
    def __init__(self, device: str = "cpu", memory_mb: int = 6144, max_processes: int = 64,
                 hide: list[str] | None = None):
        self.device = device
        self.extra_hide = list(hide or [])
        self.isolated = False
        self._pid_ns: str | None = None
        self.memory_mb = memory_mb
        self.max_processes = max_processes
        self.proc: subprocess.Popen | None = None
        self.sock: socket.socket | None = None
        self.workdir: Path | None = None
        self.log_path: Path | None = None
        self.start_notes: list[str] = []  # why a worker was started cold where a template was meant to fork it
        self._tree: TreeLimits | None = None  # its cgroups (threads and processes, memory), where they can be had
        self._tree_tried = False
        _become_subreaper()

    # -- life cycle -------------------------------------------------------------------------

    def _limits(self) -> None:  # runs in the child between fork and exec
        os.setsid()
        if self._tree is not None:
            self._tree.add(os.getpid())  # unshare, and the worker it starts
        isolation.set_worker_limits(self.memory_mb)

    def start(self) -> None:
        _WORKERS.add(self)
        # one folder for the worker's whole life (restarts included), emptied at each start
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="gptlab-worker-"))
        for entry in self.workdir.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
        self.log_path = self.workdir / "output.log"
        parent, child = socket.socketpair()
        self._parent = parent
        env = worker_env(str(self.workdir), os.environ)
        if not self._tree_tried and "cgroup" not in SKIPPED_DEFENCES:
            self._tree_tried = True
            self._tree = TreeLimits.create(isolation.MAX_TASKS, self.memory_mb << 20)
        prefix = isolation.unshare_prefix()
        self.isolated = prefix is not None
        confine = self._confinement() if self.isolated else None
        if self.isolated and self._fork(child, env, confine, "--user" in prefix):
            return
        code = (
            f"import sys; sys.path.insert(0, {str(ROOT)!r}); "
            f"from autograder.engine.worker_main import main; main({child.fileno()}, {self.device!r}, {confine!r})"
        )
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [*(prefix or ()), sys.executable, "-I", "-c", code],
                pass_fds=[child.fileno()],
                cwd=self.workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=self._limits,
            )
        child.close()
        self.sock = parent

    def _confinement(self) -> dict:
        """What the worker builds its own root from (worker_confine.confine): the allowlist, what to cover
        inside it, its folder, its cap on threads and processes."""
        hide = [str(ROOT / "autograder" / "checks" / "hidden"), *self.extra_hide]
        spec = {"keep": [str(k) for k in _keep()], "hide": hide, "writable": str(self.workdir),
                "tasks": isolation.MAX_TASKS, "device": self.device}
        if SKIPPED_DEFENCES:
            spec["skip"] = sorted(SKIPPED_DEFENCES)
        return spec

    def _fork(self, child: socket.socket, env: dict, confine, user_ns: bool) -> bool:
        """The worker forked from a warm template (``worker_template``), in the same namespaces, confinement,
        limits, environment and folder as a cold one; False where none can be had (then it starts cold)."""
        template = worker_template.template()
        if template is None:
            return False
        log = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            self.proc = template.fork_worker(sock_fd=child.fileno(), log_fd=log, workdir=str(self.workdir),
                                             device=self.device, confine=confine, env=env,
                                             memory_mb=self.memory_mb, user_ns=user_ns)
        except worker_template.TemplateUnavailable as exc:
            self.start_notes.append(f"started cold: {exc}")
            print(f"gpt-lab sandbox: the worker starts cold ({exc})", file=sys.stderr, flush=True)
            return False
        finally:
            os.close(log)
        if self._tree is not None:
            try:  # before its first request, so before any submission code
                self._tree.add(self.proc.worker_pid)
            except OSError:
                self.proc.kill()
                raise
        child.close()
        self.sock = self._parent
        return True

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _descendants(self) -> list:
        try:
            import psutil

            found = psutil.Process(os.getpid()).children(recursive=True)
            # the template this process started serves every worker of the run: never one to kill, nor
            # the monitors and workers forked from it (each Worker ends its own through pidfds; what its
            # worker started dies with the worker's PID namespace)
            keep = worker_template.own_template_pid()
            spared = {keep} | ({p.pid for p in psutil.Process(keep).children(recursive=True)} if keep else set())
            for other in list(_WORKERS):  # another live Worker's tree is its own business
                if other is not self and other.proc is not None and other.proc.pid:
                    spared.add(other.proc.pid)
                    try:
                        spared |= {p.pid for p in psutil.Process(other.proc.pid).children(recursive=True)}
                    except psutil.Error:
                        pass
        except Exception:  # noqa: BLE001 - psutil missing or the process table changed under us
            return []
        return [p for p in found if p.pid not in spared]

    def kill(self) -> None:
        self._pid_ns = None
        self._kill()

    def _kill(self) -> None:
        """Kill the worker, its process group, and every process it left behind."""
        if self.proc is not None:
            for _ in range(3):
                # the worker's group and tree, and every process it left behind (re-parented to us)
                kill_tree(self.proc.pid, others=self._descendants())
                if isinstance(self.proc, worker_template.ForkedProcess):
                    self.proc.kill()  # forked from a template: not among our descendants
                try:
                    self.proc.wait(timeout=2)
                    break
                except subprocess.TimeoutExpired:
                    continue
            # reap re-parented orphans
            for p in self._descendants():
                try:
                    p.wait(timeout=0.5)
                except Exception:  # noqa: BLE001
                    pass
        if self.sock is not None:
            self.sock.close()
        self.proc, self.sock = None, None

    def close(self) -> None:
        self.kill()
        if self._tree is not None:
            self._tree.remove()
            self._tree, self._tree_tried = None, False
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def _police(self) -> None:
        pids = _worker_pids(self.proc.pid, self._namespace()) if self.proc is not None else []
        if len(pids) > self.max_processes:
            self.kill()
            raise WorkerDied(tr("started more than {max_processes} processes (a fork bomb?) and was stopped")
                              .format(max_processes=self.max_processes))
        # without a memory cgroup (worker_cgroup: its fallback), the tree's memory is added up here
        if self._tree is None and "police" not in SKIPPED_DEFENCES and pids and _tree_memory(pids, self.memory_mb << 20) > self.memory_mb << 20:
            self.kill()
            raise WorkerDied(tr("used more than {megabytes} MB of memory across its processes and was stopped")
                              .format(megabytes=self.memory_mb))
        if self.proc is not None and self.disk_used() > DISK_QUOTA_BYTES:
            self.kill()
            raise WorkerDied(tr("wrote more than {megabytes} MB to disk and was stopped")
                              .format(megabytes=DISK_QUOTA_BYTES >> 20))

    def _namespace(self) -> str | None:
        """The worker's PID namespace (the namespace of unshare's child), once it exists."""
        if self.isolated and self._pid_ns is None and self.proc is not None:
            try:
                with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
                    child = f.read().split()
                if child:
                    self._pid_ns = os.readlink(f"/proc/{child[0]}/ns/pid")
            except OSError:
                pass
        return self._pid_ns

    # -- requests ------------------------------------------------------------------------------

    def request(self, message: dict, timeout: float, deadline: float | None = None) -> dict:
        """Send one request and wait for its answer, at most ``timeout`` (+ the grace period) and never
        past ``deadline`` (``time.monotonic()``: the submission's whole budget). Every read is
        bounded by what is left (a worker that trickles its answer a byte at a time is stopped at
        the limit), and an answer over ``protocol.MAX_ANSWER_BYTES`` is refused unread."""
        if deadline is not None and deadline - time.monotonic() <= 0:
            raise WorkerDied(tr("not run: the submission's time budget was spent"), timed_out=True, budget=True)
        if not self.alive or self.sock is None:
            self.kill()
            self.start()
        end = time.monotonic() + timeout + GRACE_S
        budget = deadline is not None and deadline < end
        if budget:
            end = deadline
        message = {**message, "timeout": max(0.1, min(timeout, end - time.monotonic()))}
        try:
            self.sock.settimeout(max(0.1, end - time.monotonic()))
            protocol.send(self.sock, message)
            next_check = 0.0
            while not select.select([self.sock], [], [], 0.05)[0]:
                now = time.monotonic()
                if now > end:
                    raise TimeoutError
                if now >= next_check:  # the process table and the folder: a few ms, once in a while
                    self._police()
                    next_check = now + POLICE_EVERY_S
            answer = protocol.recv(self.sock, deadline=end, max_bytes=protocol.MAX_ANSWER_BYTES)
        except (socket.timeout, TimeoutError):
            self.kill()
            if budget:
                raise WorkerDied(tr("was stopped: the submission's time budget was spent"), timed_out=True, budget=True)
            raise WorkerDied(tr("did not finish within {timeout:g} s (the process was stopped)")
                              .format(timeout=timeout), timed_out=True)
        except (EOFError, OSError) as exc:
            code = self.proc.wait(timeout=5) if self.proc else None
            self.kill()
            raise WorkerDied(_describe_exit(code, exc)) from None
        except protocol.ProtocolError as exc:
            self.kill()
            raise WorkerDied(tr("sent back a malformed or oversized answer ({exc})").format(exc=exc)) from None
        return answer

    def disk_used(self, limit_entries: int = 100_000) -> int:
        """Bytes under the worker's folder (on the host: what a worker without namespaces wrote).
        Past ``limit_entries`` files the count stops and reports the quota as exceeded."""
        if self.workdir is None:
            return 0
        total, seen, stack = 0, 0, [str(self.workdir)]
        while stack:
            try:
                entries = list(os.scandir(stack.pop()))
            except OSError:
                continue
            for entry in entries:
                seen += 1
                if seen > limit_entries:
                    return DISK_QUOTA_BYTES + 1
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                total += info.st_blocks * 512
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
        return total


def _worker_pids(pgid: int, pid_ns: str | None) -> list[int]:
    """Processes in the worker's process group or PID namespace."""
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.getpgid(int(name)) == pgid or (pid_ns and os.readlink(f"/proc/{name}/ns/pid") == pid_ns):
                    pids.append(int(name))
            except OSError:
                pass
    return pids


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _tree_memory(pids: list[int], limit: int) -> int:
    """Bytes the processes use together. Resident sizes first (cheap: /proc/PID/statm); only where they add
    up past ``limit`` is it worth the exact figure, since pages a worker shares with its template and its
    children are counted in each: proportional set sizes (smaps_rollup's Pss), which add up to the truth."""
    rss = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm") as f:
                rss += int(f.read().split()[1]) * _PAGE
        except (OSError, ValueError, IndexError):
            pass
    if rss <= limit:
        return rss
    pss = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        pss += int(line.split()[1]) * 1024
                        break
        except (OSError, ValueError, IndexError):
            pass
    return pss or rss


def _describe_exit(code, exc) -> str:
    if code is None:
        return tr("the submission's process stopped answering ({cause})").format(cause=exc)
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        extra = tr(" (a crash, e.g. a segmentation fault)") if name == "SIGSEGV" else ""
        extra = tr(" (killed: out of memory?)") if name == "SIGKILL" else extra
        return tr("the submission's process died with {signal}{extra}").format(signal=name, extra=extra)
    return tr("the submission's process exited with status {code} (sys.exit / os._exit in the "
              "submission?)").format(code=code)
