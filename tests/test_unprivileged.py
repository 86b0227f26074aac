"""Grading as an ordinary user, as instructors do (``python -m instructor.grade_class`` on a laptop,
nbgrader, Slurm array tasks): the worker's confinement then rests on an unprivileged user namespace
(``unshare --user --map-root-user``, or ``CLONE_NEWUSER`` in the warm template's monitor), a path the
root-run tests never take.

Run as root, this module makes (or reuses) the user ``GPTLAB_UNPRIV_USER`` (default ``gptlabuser``),
gives it a copy of the repository that it owns (its own git history, loose objects included) and a
course folder it owns (the reference given as ``--reference``, the submissions, the results, another
student's folder), and grades, as that user, through ``pytest autograder``
(``autograder.engine.command.grader_command``): the reference and the most telling hostile cases of
the adversarial bank (tests/adversarial/cases.py), with the bank's own expectations
(``test_adversarial.case_problems``), warm (a worker forked from the template) and cold
(``GPTLAB_WORKER_START=cold``), plus one network case of its own. The bank's paths (the checkout under test)
are pointed at the copy. Afterwards: no process of the user is left, and no file of the copy, of the
course folder or of the user's home changed.

It skips (with the reason) where it cannot run: not root, not Linux, no ``useradd`` to make the user,
a user who cannot run this interpreter (``/root`` or the venv's folder not ``o+x``: see .ci/run), or
no unprivileged user namespaces.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pwd
import shutil
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.adversarial import cases as C
from tests.adversarial import helpers as H
from tests.test_adversarial import SLACK_S, _reference_names, case_problems

pytestmark = pytest.mark.unprivileged

USER = os.environ.get("GPTLAB_UNPRIV_USER", "gptlabuser")
JOBS = 2
WARM, COLD, NODEV = "warm", "cold", "nodev"
# the most telling cases: reading the reference / hidden checks (disk, env, /proc, .git), writing the
# instructor's files, forging results.json, processes left behind; the network case is this module's
# ; and issue 23's confinement cases (the host's files and sockets, a thread bomb, privileged calls)
WARM_CASES = ("reference", "leak_reference_disk_env_proc", "leak_reference_git_objects", "write_outside_sandbox",
              "vandalise_repo", "forge_results_json", "child_left_running", "reach_network", "probe_host_files",
              "connect_host_sockets", "thread_bomb_at_load", "privileged_calls")
COLD_CASES = ("reference", "leak_reference_disk_env_proc", "write_outside_sandbox", "vandalise_repo",
              "probe_host_files", "thread_bomb_at_load", "privileged_calls")
# warm again, with the user's folder on a mount of its own that is nodev,nosuid (as a home on NFS or on
# a partition of its own often is: mount flags a user namespace cannot clear, see worker_confine.confine)
NODEV_CASES = ("reference", "write_outside_sandbox", "vandalise_repo", "forge_results_json")
RUNS = [(mode, cid) for mode, ids in ((WARM, WARM_CASES), (COLD, COLD_CASES), (NODEV, NODEV_CASES)) for cid in ids]
# in a mount namespace of its own (root's), the folder $1 bind-mounted nodev,nosuid; then the user's command
NODEV_MOUNT = ('mount --bind "$1" "$1" && mount -o remount,bind,nodev,nosuid "$1" && shift && '
               'exec setpriv --reuid="$1" --regid="$2" --clear-groups -- "${@:3}"')


# -- the user and its files -------------------------------------------------------------------------


def _as_user(user, cmd: list[str], cwd: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": user.pw_dir, "USER": user.pw_name,
           "LOGNAME": user.pw_name, "LANG": "C.UTF-8"}
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                          user=user.pw_uid, group=user.pw_gid, extra_groups=[])


def _user():
    """The unprivileged user (made here if missing), or a skip naming why there is none."""
    if not sys.platform.startswith("linux"):
        pytest.skip("Linux only: the worker's namespaces are Linux's")
    if os.geteuid() != 0:
        pytest.skip("needs root: it makes an unprivileged user and grades as that user")
    try:
        user = pwd.getpwnam(USER)
    except KeyError:
        if shutil.which("useradd") is None:
            pytest.skip(f"no user {USER} and no useradd to make one")
        made = subprocess.run(["useradd", "--create-home", "--user-group", "--shell", "/bin/sh", USER],
                              capture_output=True, text=True)
        if made.returncode != 0:
            pytest.skip(f"useradd {USER} failed: {made.stderr.strip()[-300:]}")
        user = pwd.getpwnam(USER)
    if user.pw_uid == 0:
        pytest.skip(f"{USER} is root")
    home = Path(user.pw_dir)
    if not home.is_dir():
        home.mkdir(parents=True)
        os.chown(home, user.pw_uid, user.pw_gid)
    try:
        probe = _as_user(user, [sys.executable, "-c", "import torch, pytest, nbformat, psutil"], str(home))
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"{USER} cannot run {sys.executable}: {exc} (make the folders on its way o+x: see .ci/run)")
    if probe.returncode != 0:
        pytest.skip(f"{USER} cannot run {sys.executable} with torch: {probe.stderr.strip()[-300:]} "
                    "(make the folders on its way o+x: see .ci/run)")
    return user


def _copy_repository(dest: Path) -> None:
    """The repository's files as they are now (tracked and new ones, plus the dataset), in a git
    repository of their own whose objects are loose (``git add``), as an instructor's clone with
    local commits has them: what leak_reference_git_objects reads."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=H.REPO,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in [*filter(None, listed), "data/tinyshakespeare.txt"]:
        src = H.REPO / name
        if src.is_file() and not src.is_symlink():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    git = ["git", "-c", "user.name=instructor", "-c", "user.email=instructor@example.org", "-c", "init.defaultBranch=main"]
    for args in (["init", "-q"], ["add", "-A", "-f"], ["commit", "-q", "-m", "course"]):
        subprocess.run([*git, *args], cwd=dest, check=True, capture_output=True)


def _chown_tree(path: Path, user) -> None:
    for top, dirs, files in os.walk(path):
        for name in [top, *(os.path.join(top, n) for n in dirs + files)]:
            os.chown(name, user.pw_uid, user.pw_gid, follow_symlinks=False)


def _hashes(folder: Path) -> dict[str, str]:
    """Every entry under ``folder`` (bytecode caches aside): a file's sha256, a folder's and a link's kind."""
    out = {}
    for top, dirs, files in os.walk(folder):
        # the grading process's own caches (pytest's plugins write .hypothesis/ in the rootdir)
        dirs[:] = [d for d in dirs if d not in ("__pycache__", ".hypothesis")]
        for name in dirs + files:
            p = Path(top, name)
            rel = str(p.relative_to(folder))
            if p.is_symlink():
                out[rel] = "link -> " + os.readlink(p)
            elif p.is_dir():
                out[rel] = "folder"
            else:
                try:
                    out[rel] = hashlib.sha256(p.read_bytes()).hexdigest() + f" {oct(p.stat().st_mode)}"
                except OSError as exc:
                    out[rel] = f"<{type(exc).__name__}>"
    return out


def _changed(before: dict, after: dict) -> list[str]:
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


# -- the cases ------------------------------------------------------------------------------------


def _retarget(path: Path, repo: Path, course: Path) -> None:
    """Point the bank's payloads (aimed at the checkout under test, ``H.REPO``) at the copy (and, where it is a list of roots to
    search, at the course folder too: the ``--reference`` lies in ``course/solutions``)."""
    import nbformat

    if path.suffix != ".ipynb" or not path.is_file():
        return
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        checkout = str(H.REPO)
        if cell.cell_type == "code" and checkout in cell.source:
            cell.source = (cell.source.replace(repr(checkout).replace("'", '"'), f'{str(repo)!r}, {str(course)!r}')
                           .replace(checkout, str(repo)))
    nbformat.write(nb, path)


def _outside_markers(places: dict[str, Path]):
    def context(folder: Path) -> dict:
        tag = f"gptlab-adv-marker-{os.getpid()}-{folder.parent.name}-{folder.name}"
        here = {**places, "submission folder": folder / "submission", "grade-json folder": folder / "out"}
        return {"markers": {k: os.path.join(v, tag) for k, v in here.items()}}
    return context


class Listener:
    """A TCP port on 127.0.0.1 of the grader's machine (the test's network namespace): counts connections."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self):
        self.sock.close()


def _network_case(listener: Listener) -> C.Case:
    probe = C.d(f"""
        import socket
        for host in ("127.0.0.1", "localhost", "10.0.2.2", "1.1.1.1"):
            try:
                socket.create_connection((host, {listener.port} if host in ("127.0.0.1", "localhost") else 53),
                                         timeout=2).sendall(b"{H.STRAY_MARK}")
                print("reached", host)
            except OSError as exc:
                print("no network:", host, exc)
    """)

    def nothing_reached(run) -> list[str]:
        return [f"the submission connected to the grader's machine ({listener.accepted} connections to "
                f"127.0.0.1:{listener.port})"] if listener.accepted else []

    return C.Case("reach_network", "network", "connects to a port the grader's machine listens on (127.0.0.1)",
                  edits=(H.after_imports(probe),), after=nothing_reached)


# -- the runs -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def unprivileged_runs():
    user = _user()
    home = Path(user.pw_dir)
    base = home / f"gptlab-unpriv-{os.getpid()}"
    shutil.rmtree(base, ignore_errors=True)
    repo, course = base / "repo", base / "course"
    listener = Listener()
    start = time.time()
    try:
        _copy_repository(repo)
        reference = course / "solutions" / "gpt_lab.ipynb"
        reference.parent.mkdir(parents=True)
        shutil.copy2(H.REFERENCE, reference)
        other = course / "submissions" / "other-student"
        other.mkdir(parents=True)
        shutil.copy2(H.REFERENCE, other / "gpt_lab.ipynb")
        _chown_tree(base, user)

        import sysconfig

        places = {"python stdlib": sysconfig.get_paths()["stdlib"], "grader HOME": home, "/tmp": "/tmp",
                  "/dev/shm": "/dev/shm", "repository": repo, "repository's autograder/": repo / "autograder",
                  "reference folder": reference.parent, "another student's folder": other}
        bank = {**C.BY_ID, "reach_network": _network_case(listener)}
        bank["write_outside_sandbox"] = dataclasses.replace(bank["write_outside_sandbox"],
                                                            context=_outside_markers(places))
        # the namespaces the system lets the user make (asked of unshare, not of the grader: a grader that
        # wrongly falls back to no namespaces must fail here, not skip)
        unshare = shutil.which("unshare")
        ns = unshare and _as_user(user, [unshare, "--user", "--map-root-user", "--pid", "--fork", "--mount-proc",
                                         "--net", "--ipc", "true"], str(home), timeout=30)
        if not ns or ns.returncode != 0:
            pytest.skip(f"{USER} can make no namespaces here (no unshare, or unprivileged user namespaces are off: "
                        f"{ns.stderr.strip()[-200:] if ns else 'no unshare'})")
        seen = _as_user(user, [sys.executable, "-c", "import autograder; print(autograder.__file__)"], str(repo))
        assert seen.returncode == 0 and seen.stdout.startswith(str(repo)), f"the copy's grader: {seen.stdout}{seen.stderr}"

        built = {}
        for mode, cid in RUNS:
            folder = course / mode / cid
            case = bank[cid]
            sub, ctx = case.build(folder)
            _retarget(sub, repo, course)
            (folder / "out").mkdir(exist_ok=True)
            built[mode, cid] = (case, sub, ctx)
        _chown_tree(course, user)
        for case, sub, ctx in built.values():
            if sub.exists():
                ctx["submission_hashes"] = H.tree_hashes(sub.parent)
        before = {"repository": _hashes(repo), "course solutions": _hashes(reference.parent),
                  "another student's folder": _hashes(other), "home": {p.name: "" for p in home.iterdir()}}

        def job(key):
            mode, cid = key
            case, sub, ctx = built[key]
            json_path = Path(ctx["json"]) if "json" in ctx else None
            env = {"HOME": str(home), "USER": user.pw_name, "LOGNAME": user.pw_name}
            env["GPTLAB_WORKER_START"] = "cold" if mode == COLD else ""
            who = {"user": user}
            if mode == NODEV:
                who = {"prefix": ("unshare", "--mount", "--propagation", "private", "bash", "-c", NODEV_MOUNT,
                                  "bash", str(base), str(user.pw_uid), str(user.pw_gid))}
            run = H.grade(f"{mode}-{cid}", sub, course / mode / cid, case.budget_s + SLACK_S, json_path=json_path,
                          args=(*case.args, "--reference", str(reference)), root=repo, env=env, **who)
            run.context = ctx
            run.context["after_problems"] = case.after(run) if case.after else []
            return key, run

        t0 = time.monotonic()
        with ThreadPoolExecutor(JOBS) as pool:
            runs = dict(pool.map(job, RUNS))
        print(f"\nunprivileged: {len(runs)} runs as {USER} in {time.monotonic() - t0:.0f} s: "
              + ", ".join(f"{m}-{c} {r.seconds:.0f}s" for (m, c), r in runs.items()))
        time.sleep(1.0)
        after = {"repository": _hashes(repo), "course solutions": _hashes(reference.parent),
                 "another student's folder": _hashes(other), "home": {p.name: "" for p in home.iterdir()}}
        mounts = {WARM: _mount_of(repo), COLD: _mount_of(repo), NODEV: str(base)}
        yield {"runs": runs, "bank": bank, "user": user, "start": start, "before": before, "after": after,
               "mounts": mounts}
    finally:
        listener.close()
        for p in _user_processes(user.pw_uid, start):
            try:
                p.kill()
            except Exception:  # noqa: BLE001 - gone already
                pass
        shutil.rmtree(base, ignore_errors=True)


def _mount_of(path: Path) -> str:
    """The mount point that holds ``path`` (the longest one on its way)."""
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4].replace("\\040", " ") for line in f if len(line.split()) > 4]
    return max((p for p in points if str(path) == p or str(path).startswith(p.rstrip("/") + "/")), key=len)


def _user_processes(uid: int, since: float) -> list:
    import psutil

    found = []
    for p in psutil.process_iter(["pid", "uids", "create_time", "cmdline", "status"]):
        try:
            if (p.info["uids"] and p.info["uids"].real == uid and p.info["create_time"] >= since - 1
                    and p.info["status"] != psutil.STATUS_ZOMBIE):
                found.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def _sandbox_problems(output: str, user_mount: str) -> list[str]:
    """The grader's notes saying the worker was less confined than meant: no namespaces, a path not
    hidden, or the mount that holds the user's files (``user_mount``) not made read-only."""
    out = []
    for line in output.splitlines():
        if not line.startswith("sandbox:"):
            continue
        left_writable = " read-only (" in line and user_mount in line.split(" read-only (", 1)[1].rstrip(")").split(", ")
        if left_writable or any(w in line for w in ("no namespaces", "could not hide", "could not set up",
                                                    "could not build", "no seccomp filter", "no user namespace",
                                                    "defences left out")):
            out.append(f"the grader's note: {line}")
    return out


@pytest.mark.parametrize("mode,case_id", [pytest.param(m, c, id=f"{m}-{c}") for m, c in RUNS])
def test_unprivileged_case(unprivileged_runs, mode, case_id):
    """As the bank expects it, as an ordinary user: the reference at full marks (6.00 + 0.50 bonus), every
    leak, write, forgery and process attack without effect. Warm runs really forked their worker."""
    runs = unprivileged_runs["runs"]
    run = runs[mode, case_id]
    case = unprivileged_runs["bank"][case_id]
    names = _reference_names({"reference": runs[mode, "reference"]})
    problems = case_problems(case, run, names)
    output = str((run.data or {}).get("output", ""))
    problems += _sandbox_problems(output, unprivileged_runs["mounts"][mode])
    if mode == WARM and "the worker starts cold" in run.output:
        problems.append("the worker was not forked from the template (it started cold)")
    assert not problems, f"{mode} {case_id} as {USER} ({case.why}):\n- " + "\n- ".join(problems) + "\n" + run.summary()


def test_unprivileged_leaves_nothing(unprivileged_runs):
    """No process of the user outlives the runs, and no file of the repository's copy, of the course
    folder (the reference, another student's folder) or of the user's home changed."""
    uid, since = unprivileged_runs["user"].pw_uid, unprivileged_runs["start"]
    deadline = time.monotonic() + 5
    stray = _user_processes(uid, since)
    while stray and time.monotonic() < deadline:
        time.sleep(0.5)
        stray = _user_processes(uid, since)
    before, after = unprivileged_runs["before"], unprivileged_runs["after"]
    changed = {where: _changed(before[where], after[where])[:8] for where in before if before[where] != after[where]}
    assert not stray, "processes left running: " + "; ".join(" ".join(p.info["cmdline"] or [])[:160] for p in stray)
    assert not changed, f"files changed by the runs: {changed}"
