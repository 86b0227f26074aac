"""Grade a whole class: one ``pytest autograder`` run per submission, several at once.

    python -m instructor.grade_class SUBMISSIONS_DIR --out OUT_DIR [--jobs N] [--reference PATH]
                                     [--timeout S] [--force] [--assignment NAME]

SUBMISSIONS_DIR is either nbgrader's layout (``submitted/<student>/<assignment>/*.ipynb``, i.e.
``DIR/<student>/<assignment>/...``) or a flat folder of notebooks / .py modules (student id = file stem).

Each submission is graded in its own ``python -m pytest <repo>/autograder`` subprocess (own temp
cwd and TMPDIR, own process group) with a wall-clock limit; on time-out the whole process tree is
killed (the grader's worker runs in a session of its own, so the tree is collected with psutil) and
the student gets status ``timeout`` and 0 points.

Output in OUT_DIR: ``<student>.json`` (the grader's Gradescope results.json, or a stand-in saying
why there is none), ``grades.csv`` (student, one column per rubric part, total, status) and
``.cache.json``: a rerun skips a submission whose content hash and grader version (hash of
autograder/*.py, autograder/hidden/*.py, the rubric and the reference) are unchanged, unless
``--force``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parent.parent
AUTOGRADER = REPO / "autograder"
DEFAULT_REFERENCE = REPO / "solutions" / "gpt_lab.ipynb"
CACHE_NAME = ".cache.json"
CSV_NAME = "grades.csv"
CACHE_VERSION = 1
STATUSES = ("ok", "timeout", "error")
_IGNORED = {".ipynb_checkpoints", "__pycache__", ".DS_Store"}


# -- discovery ---------------------------------------------------------------------------------


def _visible(p: Path) -> bool:
    return not p.name.startswith(".") and p.name not in _IGNORED


def discover(submissions_dir: str | os.PathLike, assignment: str | None = None) -> dict[str, Path]:
    """Student id -> what to grade (a file, or a folder holding one notebook).

    Sub-folders are students in nbgrader's layout (``DIR/<student>/<assignment>/``); plain files
    are students of a flat folder (id = file stem; the full name if two files share a stem).
    Every visible file counts, also one that is not a notebook: it gets a row (the grader says why
    it scores nothing) rather than vanishing from the grade sheet.
    """
    root = Path(submissions_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"no submissions folder at {root}")
    found: dict[str, Path] = {}
    files = sorted(p for p in root.iterdir() if (p.is_symlink() or not p.is_dir()) and _visible(p))  # links and special files get a row: the shared locator (autograder.loader) refuses them
    stems: dict[str, int] = {}
    for p in files:
        stems[p.stem] = stems.get(p.stem, 0) + 1
    for p in files:
        found[p.stem if stems[p.stem] == 1 else p.name] = p
    for d in sorted(p for p in root.iterdir() if p.is_dir() and _visible(p)):
        found[d.name] = _assignment_dir(d, assignment)
    return found


def _assignment_dir(student_dir: Path, assignment: str | None) -> Path:
    if assignment is not None:
        return student_dir / assignment  # a missing one is graded as missing: the row says so
    subdirs = [p for p in student_dir.iterdir() if p.is_dir() and _visible(p)]
    if any(p.is_file() and p.suffix in (".ipynb", ".py") for p in student_dir.iterdir()) or not subdirs:
        return student_dir
    if len(subdirs) == 1:
        return subdirs[0]
    named = [p for p in subdirs if p.name == "gpt_lab"]
    return named[0] if named else student_dir  # ambiguous: the grader reports it


# -- hashing -----------------------------------------------------------------------------------


def _hash_files(files, base: Path | None = None) -> str:
    h = hashlib.sha256()
    for f in files:
        f = Path(f)
        name = str(f.relative_to(base)) if base else f.name
        h.update(name.encode() + b"\0")
        try:
            h.update(f.read_bytes())
        except OSError:
            h.update(b"<unreadable>")
        h.update(b"\0")
    return h.hexdigest()


def submission_hash(path: Path) -> str:
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and not (set(p.parts) & _IGNORED))
        return "dir:" + _hash_files(files, base=path)
    if path.is_file():
        return "file:" + hashlib.sha256(path.read_bytes()).hexdigest()
    return "missing"


def grader_version(reference: Path | None = None) -> str:
    """Hash of what decides a grade besides the submission: the grader's code, rubric, reference."""
    files = sorted(AUTOGRADER.glob("*.py")) + sorted((AUTOGRADER / "hidden").glob("*.py"))
    files += [p for p in (AUTOGRADER / "rubric.toml", AUTOGRADER / "hidden_manifest.json") if p.exists()]
    h = hashlib.sha256(_hash_files(files, base=AUTOGRADER).encode())
    ref = Path(reference or DEFAULT_REFERENCE)
    h.update(b"reference\0" + (ref.read_bytes() if ref.is_file() else b"<none>"))
    return h.hexdigest()


def rubric_parts() -> list[str]:
    with open(AUTOGRADER / "rubric.toml", "rb") as f:
        return list(tomllib.load(f).get("points", {}))


# -- one submission ----------------------------------------------------------------------------


def _kill_tree(proc: subprocess.Popen) -> None:
    """Kill the pytest process, its group, and every descendant (the grader's worker runs in a
    session of its own, so killing the group alone would leave it running)."""
    try:
        import psutil

        descendants = psutil.Process(proc.pid).children(recursive=True)
    except Exception:  # noqa: BLE001 - psutil missing, or the process already gone
        descendants = []
    groups = {proc.pid}
    for p in descendants:
        try:
            groups.add(os.getpgid(p.pid))
        except OSError:
            pass
    for _ in range(2):
        for g in groups:
            try:
                os.killpg(g, signal.SIGKILL)
            except OSError:
                pass
        for p in descendants:
            try:
                p.kill()
            except Exception:  # noqa: BLE001
                pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def part_scores(data: dict, parts: list[str]) -> tuple[dict[str, float], dict[str, float]]:
    """Per-part (score, max) from a results.json: the sum over tests whose tags[0] is the part."""
    score = {p: 0.0 for p in parts}
    maximum = {p: 0.0 for p in parts}
    for t in data.get("tests", []):
        tags = t.get("tags") or [""]
        part = tags[0]
        score[part] = score.get(part, 0.0) + float(t.get("score") or 0)
        maximum[part] = maximum.get(part, 0.0) + float(t.get("max_score") or 0)
    return ({p: round(v, 4) for p, v in score.items()}, {p: round(v, 4) for p, v in maximum.items()})


def _unreadable(data: dict) -> str:
    """The grader's reason when it could not read the submission at all, else ''."""
    tests = data.get("tests") or []
    outputs = {str(t.get("output", "")) for t in tests}
    if tests and len(outputs) == 1 and next(iter(outputs)).startswith("the submission could not be read"):
        return next(iter(outputs))
    return ""


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def grade_one(student: str, path: Path, out_dir: Path, reference: Path | None, timeout: float,
              parts: list[str]) -> dict:
    """Run the grader on one submission; never raises for a bad submission."""
    out_dir = Path(out_dir)
    json_path = out_dir / f"{student}.json"
    started = time.monotonic()
    status, message, data = "error", "", None
    work = Path(tempfile.mkdtemp(prefix=f"grade-{student}-"))
    try:
        result_json = work / "results.json"
        cmd = [sys.executable, "-m", "pytest", str(AUTOGRADER), "-q", "-p", "no:cacheprovider",
               "--rootdir", str(REPO), "--submission", str(Path(path).resolve()),
               "--grade-json", str(result_json)]
        if reference is not None:
            cmd += ["--reference", str(Path(reference).resolve())]
        env = {**os.environ, "TMPDIR": str(work), "PYTHONDONTWRITEBYTECODE": "1"}
        env.setdefault("OMP_NUM_THREADS", "1")  # several graders share the cores: no oversubscription
        log_path = work / "pytest.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(cmd, cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
            try:
                rc = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill_tree(proc)
                rc = None
        tail = log_path.read_bytes()[-3000:].decode("utf-8", "replace")
        if rc is None:
            status, message = "timeout", f"grading did not finish within {timeout:g} s: stopped, 0 points"
        elif rc not in (0, 1):
            message = f"the grader exited with status {rc}\n{tail}"
        else:
            try:
                data = json.loads(result_json.read_text())
                status = "ok"
            except (OSError, ValueError) as exc:
                message = f"the grader wrote no results.json ({exc})\n{tail}"
            else:
                unread = _unreadable(data)
                if unread:  # not a submission at all (not a notebook, not UTF-8, ...): flag the row
                    status, message = "error", unread
    except Exception as exc:  # noqa: BLE001 - one bad submission never stops the batch
        message = f"could not run the grader: {type(exc).__name__}: {exc}"
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if data is None:
        data = {"score": 0.0, "output": message, "tests": [], "status": status}
    _write_json(json_path, data)
    scores, maxima = part_scores(data, parts)
    return {
        "student": student,
        "path": str(path),
        "status": status,
        "parts": scores,
        "max": maxima,
        "total": round(float(data.get("score", sum(scores.values()))), 4),
        "message": message,
        "seconds": round(time.monotonic() - started, 2),
        "cached": False,
        "json": str(json_path),
    }


# -- a class -----------------------------------------------------------------------------------


def _load_cache(out_dir: Path) -> dict:
    try:
        cache = json.loads((out_dir / CACHE_NAME).read_text())
        if cache.get("version") == CACHE_VERSION and isinstance(cache.get("students"), dict):
            return cache
    except (OSError, ValueError):
        pass
    return {"version": CACHE_VERSION, "students": {}}


def write_csv(results: dict[str, dict], out_dir: Path, parts: list[str]) -> Path:
    path = Path(out_dir) / CSV_NAME
    tmp = path.with_name(f".{CSV_NAME}.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["student", *parts, "total", "status"])
        for student in sorted(results):
            r = results[student]
            w.writerow([student, *(f"{r['parts'].get(p, 0.0):g}" for p in parts), f"{r['total']:g}", r["status"]])
    os.replace(tmp, path)
    return path


def grade_many(paths: dict[str, Path], out_dir, jobs: int | None = None, reference=None, timeout: float = 300,
               force: bool = False, progress=None) -> dict[str, dict]:
    """Grade every submission (student id -> path), at most ``jobs`` at once; write
    ``<student>.json``, ``grades.csv`` and ``.cache.json`` in out_dir; return student -> result
    (status, per-part scores and maxima, total, message, seconds, cached)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = max(1, int(jobs or os.cpu_count() or 1))
    reference = Path(reference) if reference is not None else None
    parts = rubric_parts()
    version = grader_version(reference)
    cache = _load_cache(out_dir)
    entries = cache["students"]
    results: dict[str, dict] = {}
    todo: dict[str, tuple[Path, str]] = {}
    for student, path in paths.items():
        if "/" in student or student in ("", ".", "..") or student.startswith("."):
            raise ValueError(f"student id {student!r} cannot name a file")
        digest = submission_hash(Path(path))
        entry = entries.get(student)
        if (not force and entry and entry.get("hash") == digest and entry.get("grader") == version
                and (out_dir / f"{student}.json").exists()):
            results[student] = {**entry["result"], "cached": True}
        else:
            todo[student] = (Path(path), digest)

    lock = threading.Lock()

    def save():  # entries of students not in this call are kept: grading a subset forgets nothing
        _write_json(out_dir / CACHE_NAME, {"version": CACHE_VERSION, "students": entries})

    if todo:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = {pool.submit(grade_one, s, p, out_dir, reference, timeout, parts): (s, d)
                       for s, (p, d) in todo.items()}
            for fut in as_completed(futures):
                student, digest = futures[fut]
                result = fut.result()
                with lock:
                    results[student] = result
                    entries[student] = {"hash": digest, "grader": version, "result": result}
                    save()
                if progress:
                    progress(result)
    save()
    write_csv(results, out_dir, parts)
    return results


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m instructor.grade_class", description=__doc__.split("\n\n")[0])
    ap.add_argument("submissions", help="nbgrader's submitted/ folder, or a flat folder of notebooks / .py files")
    ap.add_argument("--out", required=True, help="where the JSON files, grades.csv and the cache go")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="submissions graded at once")
    ap.add_argument("--reference", default=None, help="reference solution (default: solutions/gpt_lab.ipynb)")
    ap.add_argument("--timeout", type=float, default=300.0, help="wall-clock seconds per submission")
    ap.add_argument("--force", action="store_true", help="regrade even unchanged submissions")
    ap.add_argument("--assignment", default=None, help="nbgrader layout: the assignment folder to grade")
    args = ap.parse_args(argv)
    try:
        paths = discover(args.submissions, args.assignment)
    except FileNotFoundError as exc:
        print(exc, file=sys.stderr)
        return 2
    if not paths:
        print(f"no submissions in {args.submissions}", file=sys.stderr)
        return 2

    def progress(r):
        print(f"{r['student']}: {r['status']} {r['total']:g} ({r['seconds']:.1f} s)", flush=True)

    results = grade_many(paths, args.out, jobs=args.jobs, reference=args.reference, timeout=args.timeout,
                         force=args.force, progress=progress)
    cached = sum(r["cached"] for r in results.values())
    counts = {s: sum(r["status"] == s for r in results.values()) for s in STATUSES}
    print(f"{len(results)} submissions ({cached} unchanged, skipped): "
          + ", ".join(f"{n} {s}" for s, n in counts.items()) + f"; {Path(args.out) / CSV_NAME}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
