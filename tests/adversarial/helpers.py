"""Helpers for the adversarial bank: build hostile submissions from the reference, grade each with a
real ``pytest autograder`` subprocess, read the per-part scores back, and watch the machine
(stray processes, the repository's tracked files, files left outside a run's temporary folder).

Nothing of the reference is copied into the repository: submissions are built at test time from
``solutions/gpt_lab.ipynb`` (read with nbformat) and written under pytest's temporary folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from autograder import parts as registry
from autograder.engine.command import grader_command

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "solutions" / "gpt_lab.ipynb"
PARTS = registry.PARTS
TOL = 2e-3  # results.json rounds each check's score to 4 decimals; a part has at most ~10 checks
# a marker every hostile child process carries in its command line, so the final sweep can find it
STRAY_MARK = "gptlab-adv-stray"


def points() -> dict[str, float]:
    """Full points per part, from the registry the grader uses."""
    return {k: float(v) for k, v in registry.rubric()[0].items()}


# -- building submissions -------------------------------------------------------------------------


def reference_nb():
    import nbformat

    nb = nbformat.read(REFERENCE, as_version=4)
    for c in nb.cells:
        if c.cell_type == "code":
            c.outputs, c.execution_count = [], None
    return nb


def code_cell(source: str):
    import nbformat

    return nbformat.v4.new_code_cell(source)


def cell_index(nb, grade_id: str) -> int:
    found = [i for i, c in enumerate(nb.cells)
             if c.cell_type == "code" and (c.metadata.get("nbgrader") or {}).get("grade_id") == grade_id]
    if len(found) != 1:
        raise LookupError(f"expected one cell with grade_id {grade_id!r}, found {len(found)}")
    return found[0]


def first_code_index(nb) -> int:
    return next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")


def reference_quiz(nb=None) -> dict:
    """The reference's quiz answers (read at test time, in the test process only)."""
    nb = nb or reference_nb()
    ns: dict = {}
    src = nb.cells[cell_index(nb, "quiz_code")].source
    exec("\n".join(line for line in src.splitlines() if not line.startswith("###")), ns)
    return ns["quiz_answers"]


def wrong_quiz(nb=None) -> dict:
    """Answers that differ from the reference's on every question."""
    right = reference_quiz(nb)
    return {q: next(c for c in "abcd" if c != a.strip().lower()) for q, a in right.items()}


# Edits: functions nb -> nb (on a copy). Composable.

def prepend(source: str):
    """A cell run before everything else (before the reference's imports)."""
    def edit(nb):
        nb.cells.insert(first_code_index(nb), code_cell(source))
        return nb
    return edit


def after(grade_id: str, source: str):
    """A cell right after the cell ``grade_id``."""
    def edit(nb):
        nb.cells.insert(cell_index(nb, grade_id) + 1, code_cell(source))
        return nb
    return edit


def after_imports(source: str):
    """A cell right after the reference's first code cell (its imports: torch, nn, F)."""
    def edit(nb):
        nb.cells.insert(first_code_index(nb) + 1, code_cell(source))
        return nb
    return edit


def append(source: str):
    def edit(nb):
        nb.cells.append(code_cell(source))
        return nb
    return edit


def replace_cell(grade_id: str, source: str):
    def edit(nb):
        nb.cells[cell_index(nb, grade_id)].source = source
        return nb
    return edit


def substitute(grade_id: str, old: str, new: str):
    """Replace ``old`` (which must occur exactly once) in the cell ``grade_id``."""
    def edit(nb):
        cell = nb.cells[cell_index(nb, grade_id)]
        if cell.source.count(old) != 1:
            raise LookupError(f"{old!r} occurs {cell.source.count(old)} times in {grade_id}")
        cell.source = cell.source.replace(old, new)
        return nb
    return edit


def append_to_cell(grade_id: str, source: str):
    def edit(nb):
        cell = nb.cells[cell_index(nb, grade_id)]
        cell.source = cell.source.rstrip("\n") + "\n\n" + source
        return nb
    return edit


def as_module(nb) -> str:
    """The notebook's code cells (slow cells and check cells left out) as a percent-format .py."""
    out = []
    for c in nb.cells:
        if c.cell_type != "code" or "slow" in (c.metadata.get("tags") or []):
            continue
        meta = c.metadata.get("nbgrader") or {}
        if meta.get("grade") and not meta.get("solution"):
            continue
        out.append("# %%\n" + "\n".join(line for line in c.source.splitlines()
                                          if not line.lstrip().startswith(("%", "!"))))
    return "\n\n".join(out) + "\n"


# -- grading ------------------------------------------------------------------------------------


@dataclass
class Run:
    case_id: str
    submission: Path
    json_path: Path
    tmpdir: Path  # TMPDIR of the grading run: the worker's temporary folder is made in it
    rc: int | None = None
    seconds: float = 0.0
    timed_out: bool = False
    output: str = ""
    data: dict | None = None
    json_error: str = ""
    context: dict = field(default_factory=dict)  # what the case's own checks need (marker paths, ...)

    def parts(self) -> dict[str, float]:
        scores = {p: 0.0 for p in PARTS}
        for t in (self.data or {}).get("tests", []):
            tag = (t.get("tags") or [""])[0]
            if tag in scores:
                scores[tag] += float(t.get("score", 0))
        return scores

    def failing(self, part: str | None = None, limit: int = 4) -> str:
        lines = [f"{t.get('name')}: {(str(t.get('output') or '').splitlines() or [''])[0][:200]}"
                 for t in (self.data or {}).get("tests", [])
                 if t.get("status") != "passed" and (part is None or (t.get("tags") or [""])[0] == part)]
        more = f" (+{len(lines) - limit} more)" if len(lines) > limit else ""
        return "; ".join(lines[:limit]) + more

    def summary(self) -> str:
        tail = self.output[-1500:]
        return (f"[{self.case_id}] rc={self.rc} {self.seconds:.1f}s timed_out={self.timed_out} "
                f"json_error={self.json_error!r}\n--- grader output (tail) ---\n{tail}")


def grade(case_id: str, submission: Path, workdir: Path, limit_s: float, json_path: Path | None = None,
          args: tuple = (), root: Path = REPO, user=None, env: dict | None = None, prefix: tuple = ()) -> Run:
    """One real ``pytest autograder`` run, in its own process group, killed past ``limit_s``: with the
    grader of the checkout ``root``, as ``user`` (a ``pwd`` entry: tests/test_unprivileged.py) or as
    ourselves, with ``env`` added to our environment, the command after ``prefix``."""
    tmpdir = workdir / "tmp"
    tmpdir.mkdir(parents=True, exist_ok=True)
    json_path = json_path or workdir / "out" / "results.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    run = Run(case_id, submission, json_path, tmpdir)
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "NBGRADER"))}
    environ.update(env or {})
    environ["TMPDIR"] = str(tmpdir)
    cmd = [*prefix, *grader_command(submission, json_path, root=root, extra=("-p", "no:randomly", *args))]
    who = {} if user is None else {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=root, env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True, **who)
    try:
        out, _ = proc.communicate(timeout=limit_s)
    except subprocess.TimeoutExpired:
        run.timed_out = True
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
    run.seconds = time.monotonic() - start
    run.rc = proc.returncode
    run.output = out.decode("utf-8", "replace")
    try:
        run.data = json.loads(json_path.read_text())
    except (OSError, ValueError) as exc:
        run.json_error = f"{type(exc).__name__}: {exc}"
    return run


# -- watching the machine -----------------------------------------------------------------------


def tracked_hashes() -> dict[str, str]:
    """sha256 of every tracked file of the repository (and the porcelain status of tracked files)."""
    names = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    out = {}
    for name in names.decode().split("\0"):
        if name:
            p = REPO / name
            try:
                out[name] = hashlib.sha256(p.read_bytes()).hexdigest()
            except OSError as exc:
                out[name] = f"<{type(exc).__name__}>"
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                            capture_output=True, text=True).stdout
    out["<git status>"] = status
    return out


def tree_hashes(folder: Path) -> dict[str, str]:
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            out[str(p.relative_to(folder))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def stray_processes(roots: list[Path]) -> list[str]:
    """Processes started by the bank's runs that are still alive: any process whose command line
    carries STRAY_MARK, or mentions autograder.engine.worker_main / unshare / sleep and whose working
    directory lies under one of ``roots`` (each run's TMPDIR, where its worker lived)."""
    import psutil

    roots = [str(r) for r in roots]
    found = []
    for p in psutil.process_iter(["pid", "cmdline", "cwd", "status"]):
        try:
            cmd = " ".join(p.info["cmdline"] or [])
            cwd = p.info["cwd"] or ""
            if p.info["status"] == psutil.STATUS_ZOMBIE or p.pid == os.getpid():
                continue
            mine = any(cwd.startswith(r) for r in roots)
            if STRAY_MARK in cmd or (mine and any(w in cmd for w in ("autograder.engine.worker_main", "unshare", "sleep", "python"))):
                found.append(f"pid {p.pid} cwd={cwd} cmd={cmd[:200]}")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def kill_strays(roots: list[Path]) -> None:
    import psutil

    for line in stray_processes(roots):
        pid = int(line.split()[1])
        try:
            psutil.Process(pid).kill()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass


Builder = Callable[[Path], Path]
