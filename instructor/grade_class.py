"""Grade a whole class: one ``pytest autograder`` run per submission, several at once.

    python -m instructor.grade_class SUBMISSIONS_DIR --out OUT_DIR [--jobs N] [--reference PATH]
                                     [--timeout S] [--force] [--assignment NAME] [--roster FILE]
                                     [--no-similarity] [--no-warm]

SUBMISSIONS_DIR is either nbgrader's layout (``submitted/<student>/<assignment>/*.ipynb``, i.e.
``DIR/<student>/<assignment>/...``) or a flat folder of notebooks / .py modules (student id = file stem).

Each submission is graded in its own ``python -m pytest <repo>/autograder`` subprocess (own temp
cwd and TMPDIR, own process group) with a wall-clock limit; on time-out the whole process tree is
killed (the grader's worker runs in a session of its own, so the tree is collected with psutil) and
the student gets status ``timeout``: not graded (no points in any CSV, listed in the summary).
By default that process is forked from a warm one that imported torch, pytest and the grader's modules
once (``instructor.warm_pool``: same arguments, folder, environment and worker), and the student's worker
is forked from the pool's warm template (``autograder.engine.worker_template``: the same namespaces, confinement
and limits as a cold worker); ``--no-warm``: a fresh interpreter for both, per submission.

Output in OUT_DIR: ``<student>.json`` (the grader's Gradescope results.json, or a stand-in saying
why there is none; ``extra_data.gptlab`` holds the verdict: status, one-line problem, tampering
notes), ``grades.csv`` (a ``max`` row, then student, one column per rubric part, total, status,
problem: ``instructor.exports``), ``canvas.csv`` and ``moodle.csv`` (LMS grade imports),
``similarity.html`` (``instructor.similarity``: pairs worth a human look), ``summary.txt``
(every submission that errored, timed out, was tampered with or was not found, with its reason:
``instructor.class_summary``, also printed at the end) and ``.cache.json``: a
rerun skips a submission whose content hash and grader version (hash of autograder/*.py,
autograder/checks/, the registry of parts and the reference) are unchanged, unless ``--force``.
Progress (n / N, time left, errors so far) is shown with tqdm on stderr.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from autograder import parts as registry
from autograder.engine.command import grader_command
from autograder.engine import report
from autograder.engine.report import load_rubric, write_json
from instructor import class_summary, exports, tampering
from instructor.text import plain

REPO = Path(__file__).resolve().parent.parent
AUTOGRADER = REPO / "autograder"
DEFAULT_REFERENCE = REPO / "solutions" / "gpt_lab.ipynb"
CACHE_NAME = ".cache.json"
CSV_NAME = "grades.csv"
SIMILARITY_NAME = "similarity.html"
CACHE_VERSION = 3  # 2: results carry status missing / tampered and a one-line problem; 3: the grader's verdict
STATUSES = class_summary.STATUSES
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
    files = sorted(p for p in root.iterdir() if (p.is_symlink() or not p.is_dir()) and _visible(p))  # links and special files get a row: the shared locator (autograder.engine.load) refuses them
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
    from autograder.engine.load import SubmissionError, read_bytes_safely

    try:  # never through a link, never blocking on a FIFO, bounded (the grader refuses those anyway)
        return "file:" + hashlib.sha256(read_bytes_safely(path)).hexdigest()
    except SubmissionError as exc:
        return "refused:" + hashlib.sha256(str(exc).encode()).hexdigest()
    except OSError:
        return "missing"


def grader_version(reference: Path | None = None) -> str:
    """Hash of what decides a grade besides the submission: the grader's code, rubric, reference."""
    files = sorted(p for p in AUTOGRADER.rglob("*") if p.suffix in (".py", ".toml", ".json", ".mo")
                   and "__pycache__" not in p.parts)  # .mo: the messages' translations
    h = hashlib.sha256(_hash_files(files, base=AUTOGRADER).encode())
    ref = Path(reference or DEFAULT_REFERENCE)
    h.update(b"reference\0" + (ref.read_bytes() if ref.is_file() else b"<none>"))
    # the tampering notes compare with the release and are part of the verdict
    history = [tampering.HISTORY] if tampering.HISTORY.is_file() else []  # earlier releases students may hold
    h.update(b"release\0" + _hash_files([*tampering.releases(), *history, Path(tampering.__file__)]).encode())
    return h.hexdigest()


def rubric_parts() -> list[str]:
    return list(registry.ids())


# -- one submission ----------------------------------------------------------------------------


def _kill_tree(proc: subprocess.Popen) -> None:
    """Kill the pytest process, its group, and every descendant (the grader's worker runs in a
    session of its own, so killing the group alone would leave it running)."""
    from autograder.engine.processes import kill_tree

    kill_tree(proc.pid)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def part_scores(data: dict, parts: list[str]) -> tuple[dict[str, float], dict[str, float]]:
    """Per-part (score, max) of a results.json: points x passed / checks, rounded once as in every
    CSV (``instructor.exports``: adding up exactly to the total), and the rubric's points."""
    rubric, _ = load_rubric()
    rounded = exports.round_parts(exports.exact_parts(data, rubric), exports.places_for(rubric))
    return ({p: float(rounded.get(p, 0)) for p in parts}, {p: float(rubric.get(p, 0)) for p in parts})


def _run_grader(cmd: list[str], work: Path, env: dict, log_path: Path, timeout: float, pool=None) -> int | None:
    """The grading process's exit status (None: timed out, its tree killed): a child forked from the warm
    pool's zygote (``instructor.warm_pool``) when one is given and answers, else a fresh ``python -m pytest``."""
    if pool is not None:
        from instructor.warm_pool import WarmPoolError

        try:
            return pool.run(cmd[3:], work, env, log_path, timeout)  # cmd[3:]: pytest's own arguments
        except (WarmPoolError, OSError):
            pass  # no warm process could be had: the cold start below grades it all the same
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_tree(proc)
            return None


def grade_one(student: str, path: Path, out_dir: Path, reference: Path | None, timeout: float,
              parts: list[str], pool=None, lang: str | None = None, cold: bool = False) -> dict:
    """Run the grader on one submission; never raises, whatever the submission (its name, its
    metadata, its structure): anything that goes wrong is this student's row, with its reason.
    The result's ``status`` is the verdict of ``autograder.engine.report`` (ok / hung / tampered /
    error / timeout / missing), read from the grader's results.json (``extra_data.gptlab``), never
    from its messages; ``tampering`` lists the notes that make a graded submission ``tampered``."""
    out_dir = Path(out_dir)
    json_path = out_dir / f"{student}.json"
    started = time.monotonic()
    status, code, message, data = "error", "no_results", "", None
    work = None
    try:
        work = Path(tempfile.mkdtemp(prefix="grade-"))  # not the student's id: it is any file name
        result_json = work / "results.json"
        cmd = grader_command(path, result_json, reference=reference)
        if lang:  # the messages' language (without it: the notebook's own, metadata.gptlab.lang)
            cmd += ["--lang", lang]
        env = {**os.environ, "TMPDIR": str(work), "PYTHONDONTWRITEBYTECODE": "1"}
        env.setdefault("OMP_NUM_THREADS", "1")  # several graders share the cores: no oversubscription
        if cold:  # today's start throughout: the worker too is a fresh interpreter (autograder.engine.worker_template)
            env["GPTLAB_WORKER_START"] = "cold"
        log_path = work / "pytest.log"
        rc = _run_grader(cmd, work, env, log_path, timeout, pool)
        tail = log_path.read_bytes()[-3000:].decode("utf-8", "replace") if log_path.exists() else ""
        if rc is None:
            status, code = "timeout", "grading_timeout"
            message = f"grading did not finish within {timeout:g} s: stopped, not graded"
        elif rc not in (0, 1):
            code, message = "grader_exited", f"the grader exited with status {rc}\n{tail}"
        else:
            try:
                data = json.loads(result_json.read_text())
            except (OSError, ValueError) as exc:
                message = f"the grader wrote no results.json ({exc})\n{tail}"
            else:
                meta = report.verdict_of(data)
                if meta is None:
                    data, code, message = None, "malformed_results", "the grader's results.json carries no verdict"
                else:
                    status, code = meta["status"], meta["cause"]
                    message = meta["problem"] if status != "ok" else ""
    except Exception as exc:  # noqa: BLE001 - one bad submission never stops the batch
        status, code, data = "error", "grader_failed", None
        message = f"could not run the grader: {type(exc).__name__}: {exc}"
    finally:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
    notes = _tampering_notes(path) if status == "ok" else []
    if notes:  # graded all the same (the grader runs its own checks), flagged for a human
        status, code, message = "tampered", "locked_cells_changed", "; ".join(notes)
    problem = class_summary.one_line(message)
    if data is None:
        data = class_summary.stand_in(status, problem, output=message, code=code)
    # the class's verdict (summary, CSVs): the grader's, or this run's when the grader gave none
    report.set_verdict(data, status, code, problem, tampering=notes)
    write_json(json_path, data)
    scores, maxima = part_scores(data, parts)
    return {
        "student": student,
        "path": str(path),
        "status": status,
        "cause": code,
        "parts": scores,
        "max": maxima,
        "total": float(sum(exports.Decimal(str(v)) for v in scores.values())),
        "message": message,
        "problem": problem,
        "tampering": notes,
        "seconds": round(time.monotonic() - started, 2),
        "cached": False,
        "json": str(json_path),
    }


def _tampering_notes(path: Path) -> list[str]:
    """``tampering.notes``, which never costs a student's row: if the comparison itself fails on what was
    submitted, the note says so (a human looks) and the grade stands."""
    try:
        return tampering.notes(path)
    except Exception as exc:  # noqa: BLE001 - any structure a student can write
        return [f"the locked cells could not be compared with the release ({type(exc).__name__})"]


def _failed(student: str, path: Path, out_dir: Path, exc: BaseException) -> dict:
    """The row of a student whose grading raised where nothing should (the batch goes on)."""
    problem = class_summary.one_line(f"could not run the grader: {type(exc).__name__}: {exc}")
    data = class_summary.stand_in("error", problem, code="grader_failed")
    try:
        write_json(Path(out_dir) / f"{student}.json", data)
    except OSError:
        pass
    return {"student": student, "path": str(path), "status": "error", "cause": "grader_failed", "parts": {},
            "max": {}, "total": 0.0, "message": problem, "problem": problem, "tampering": [], "seconds": 0.0,
            "cached": False, "json": str(Path(out_dir) / f"{student}.json")}


# -- a class -----------------------------------------------------------------------------------


def _load_cache(out_dir: Path) -> dict:
    try:
        cache = json.loads((out_dir / CACHE_NAME).read_text())
        if cache.get("version") == CACHE_VERSION and isinstance(cache.get("students"), dict):
            return cache
    except (OSError, ValueError):
        pass
    return {"version": CACHE_VERSION, "students": {}}


def load_results(results: dict[str, dict]) -> dict[str, dict]:
    """{student: results JSON} for grade_many's results (what the summary and exports read)."""
    out = {}
    for student, r in results.items():
        try:
            out[student] = json.loads(Path(r["json"]).read_text())
        except (OSError, ValueError, KeyError) as exc:
            out[student] = class_summary.stand_in("error", f"results file unreadable: {exc}", code="no_results")
    return out


# -- the warm pool (instructor.warm_pool): one zygote per instructor process, kept across calls ---------------

_warm: dict = {}
_warm_lock = threading.Lock()


def warm_pool(version: str):
    """This process's warm pool for grader ``version`` (a changed grader gets a new zygote), or None where
    none can work. Kept across grade_many calls (the nbgrader path grades one student per call)."""
    from instructor import warm_pool as wp

    if not wp.available():
        return None
    with _warm_lock:
        if _warm.get("version") != version:
            if _warm.get("pool") is not None:
                _warm["pool"].close()
            else:
                import atexit

                atexit.register(close_warm_pool)
            _warm.update(version=version, pool=wp.WarmPool())
        return _warm["pool"]


def close_warm_pool() -> None:
    with _warm_lock:
        pool = _warm.pop("pool", None)
        _warm.pop("version", None)
    if pool is not None:
        pool.close()


def _fresh(entry, digest: str, version: str, json_path: Path) -> bool:
    """A cache entry still valid for this submission and this grader (and its results file there)."""
    return bool(entry and entry.get("hash") == digest and entry.get("grader") == version and json_path.exists())


def is_graded(student: str, path, out_dir, reference=None) -> bool:
    """Whether ``grade_many`` would take this student's result from out_dir's cache (nothing to grade)."""
    out_dir = Path(out_dir)
    entry = _load_cache(out_dir)["students"].get(student)
    version = grader_version(Path(reference) if reference is not None else None)
    return _fresh(entry, submission_hash(Path(path)), version, out_dir / f"{student}.json")


def grade_many(paths: dict[str, Path], out_dir, jobs: int | None = None, reference=None, timeout: float = 300,
               force: bool = False, progress=None, roster=None, start=None, reports: bool = True,
               warm: bool = True, lang: str | None = None) -> dict[str, dict]:
    """Grade every submission (student id -> path), at most ``jobs`` at once; write
    ``<student>.json``, ``grades.csv``, ``canvas.csv``, ``moodle.csv``, ``summary.txt`` and
    ``.cache.json`` in out_dir; return student -> result (status, per-part scores and maxima,
    total, message, problem, seconds, cached). ``roster``: student ids expected (a student
    without a submission gets a ``missing`` row); ``start(n)`` is called with the number of
    submissions to grade before the first one, ``progress(result)`` after each. ``reports=False``:
    only the JSON files and the cache (a caller grading one student of a class, as nbgrader does).
    ``warm``: grading processes forked from a warm zygote (``instructor.warm_pool``) and the students' workers
    from the pool's warm template (``autograder.engine.worker_template``) where that works, else (or with
    ``warm=False``: both cold, as before) one fresh ``python -m pytest`` and worker per submission; the
    grades are the same. ``lang``: the language of the messages (``pytest autograder --lang``); by default
    each notebook's own."""
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
        if not force and _fresh(entry, digest, version, out_dir / f"{student}.json"):
            results[student] = {**entry["result"], "cached": True}
        else:
            todo[student] = (Path(path), digest)

    lock = threading.Lock()

    def save():  # entries of students not in this call are kept: grading a subset forgets nothing
        write_json(out_dir / CACHE_NAME, {"version": CACHE_VERSION, "students": entries})

    for student in roster or ():
        if student not in paths:
            results[student] = _missing(student, out_dir)
    if start:
        start(len(todo))
    warm_pool_ = warm_pool(version) if warm and todo else None
    if todo:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = {pool.submit(grade_one, s, p, out_dir, reference, timeout, parts, warm_pool_, lang, not warm): (s, d)
                       for s, (p, d) in todo.items()}
            for fut in as_completed(futures):
                student, digest = futures[fut]
                try:
                    result = fut.result()
                except Exception as exc:  # noqa: BLE001 - one student's failure is that student's row
                    result = _failed(student, todo[student][0], out_dir, exc)
                with lock:
                    results[student] = result
                    entries[student] = {"hash": digest, "grader": version, "result": result}
                    save()
                if progress:
                    progress(result)
    if todo or roster:
        save()
    if reports:
        data = load_results(results)
        exports.export_all(data, out_dir)
        class_summary.write_summary(data, out_dir)
    return results


def _missing(student: str, out_dir: Path) -> dict:
    reason = "no submission found for this student (on the roster)"
    data = class_summary.missing_stand_in(reason)
    write_json(out_dir / f"{student}.json", data)
    return {"student": student, "path": "", "status": "missing", "parts": {}, "max": {}, "total": 0.0,
            "message": reason, "problem": reason, "seconds": 0.0, "cached": False,
            "json": str(out_dir / f"{student}.json")}


def read_roster_ids(path) -> list[str]:
    """Student ids from a roster: a CSV with a ``student`` column, or one id per line."""
    text = Path(path).read_text().splitlines()
    if text and "student" in next(csv.reader([text[0]])):
        return list(exports.read_roster(path))
    return [line.strip() for line in text if line.strip() and not line.startswith("#")]


class Progress:
    """A class's grading on the terminal (tqdm): n / N, the time left, how many could not be graded or
    were tampered with so far, and one line per submission as it finishes. Pass ``start`` and ``update``
    to ``grade_many``."""

    def __init__(self, desc: str = "grading"):
        self.desc, self.bar, self.problems = desc, None, []

    def start(self, n: int) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=n, unit="submission", desc=self.desc, file=sys.stderr, dynamic_ncols=True)
        self.bar.set_postfix_str("0 not graded")

    def update(self, r: dict) -> None:
        if r["status"] != "ok":
            self.problems.append(r)
        self.bar.set_postfix_str(f"{sum(p['status'] in class_summary.NOT_GRADED for p in self.problems)} not graded, "
                                 f"{sum(p['status'] == 'tampered' for p in self.problems)} tampered")
        # the student id is a file name and the problem quotes the grader: plain text on the terminal
        self.bar.write(plain(f"{r['student']}: {r['status']} {r['total']:g} ({r['seconds']:.1f} s)"
                             + (f": {r['problem']}" if r.get("problem") else "")), file=sys.stdout)
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m instructor.grade_class", description=__doc__.split("\n\n")[0])
    ap.add_argument("submissions", help="nbgrader's submitted/ folder, or a flat folder of notebooks / .py files")
    ap.add_argument("--out", required=True, help="where the JSON files, grades.csv and the cache go")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="submissions graded at once")
    ap.add_argument("--reference", default=None, help="reference solution (default: solutions/gpt_lab.ipynb)")
    ap.add_argument("--timeout", type=float, default=300.0, help="wall-clock seconds per submission")
    ap.add_argument("--lang", default=None, help="language of the grader's messages, en or es "
                                                 "(default: each notebook's own)")
    ap.add_argument("--force", action="store_true", help="regrade even unchanged submissions")
    ap.add_argument("--assignment", default=None, help="nbgrader layout: the assignment folder to grade")
    ap.add_argument("--no-similarity", action="store_true", help="do not write similarity.html")
    ap.add_argument("--warm", action=argparse.BooleanOptionalAction, default=True,
                    help="fork each grading process from a warm one that imported torch and pytest once "
                    "(default where it works; --no-warm: a fresh python per submission, as before)")
    ap.add_argument("--roster", default=None, help="the class list (CSV with a 'student' column, or one id a "
                    "line): a student without a submission is listed as missing")
    args = ap.parse_args(argv)
    try:
        paths = discover(args.submissions, args.assignment)
    except FileNotFoundError as exc:
        print(exc, file=sys.stderr)
        return 2
    if not paths:
        print(f"no submissions in {args.submissions}", file=sys.stderr)
        return 2

    roster = read_roster_ids(args.roster) if args.roster else None
    bar = Progress()
    results = grade_many(paths, args.out, jobs=args.jobs, reference=args.reference, timeout=args.timeout,
                         force=args.force, progress=bar.update, roster=roster, start=bar.start, warm=args.warm,
                         lang=args.lang)
    bar.close()
    cached = sum(r["cached"] for r in results.values())
    counts = class_summary.counts(load_results(results))
    print(f"{len(results)} submissions ({cached} unchanged, skipped): "
          + ", ".join(f"{n} {s}" for s, n in counts.items()) + f"; {Path(args.out) / CSV_NAME}")
    if not args.no_similarity:
        from instructor import similarity

        page = Path(args.out) / SIMILARITY_NAME
        pairs = similarity.report(paths, page)
        print(f"similarity: {sum(p.score >= 0.5 for p in pairs)} pair(s) worth a look in {page}")
    print(class_summary.format_summary(load_results(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
