"""Grade exports from results JSON: per student and part (``grades.csv``), and LMS grade imports
(Canvas, Moodle). Runs in the grading process (or anywhere): plain functions over results data.

    python -m instructor.exports RESULTS_DIR [--out DIR] [--roster CSV] [--written CSV | --gradebook gradebook.db]
                                 [--due ISO_TIME --late-per-day F [--late-max F]] [--submitted DIR]
                                 [--assignment NAME]

One definition of the maximum and of the bonus, read from the rubric (``autograder.engine.report.load_rubric``):
the maximum is the sum of the points of the parts that are not bonus parts; a bonus part's points
are extra credit, counted in the total but not in the maximum (a full-marks student has
``total`` = maximum + bonus). Every CSV starts with that maximum (a ``max`` row, or Canvas's
``Points Possible`` row).

Exact part scores: a part's score is the sum of its passed checks' scores as a Fraction (each check's
share of the part's points, weighted by the registry and exact in units of 1/10,000: the grader's own
part total, never recounted as passed / checks), rounded once, to the
rubric's precision (at least 2 decimals), by the largest-remainder method: every part is within
one last-digit unit of its exact value, never above its maximum (the maximum lies on the rounding
grid), and the part columns add up exactly to the total, which is the exact total rounded half up.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from pathlib import Path

from autograder.engine.report import load_rubric
from instructor.class_summary import NOT_GRADED, add_missing, classify, load_folder
from instructor.text import csv_cell, plain

REPO = Path(__file__).resolve().parent.parent
RELEASE = REPO / "assignment" / "gpt_lab.ipynb"
GRADES_CSV, CANVAS_CSV, MOODLE_CSV = "grades.csv", "canvas.csv", "moodle.csv"
MAX_ROW = "max"  # the first data row of grades.csv; `max` is reserved, no student may be called so


# -- exact scores ------------------------------------------------------------------------------


def exact_parts(data: dict, rubric: dict[str, Fraction]) -> dict[str, Fraction]:
    """Part -> its points earned, exactly, from one results JSON: the sum of its passed checks' scores.
    Each check's score is its share of the part's points in units of 1/10,000, weights applied by the
    grader (engine/report.py, the registry's [parts.<id>.weights]), so the sum is exact at 4 decimals and
    the same as the grading run's own total; never recounted here as passed / checks. 0 for a part without
    checks."""
    earned = {p: Fraction(0) for p in rubric}
    for t in data.get("tests") or []:
        part = (t.get("tags") or [""])[0]
        if part in rubric and t.get("status") == "passed":
            try:
                earned[part] += Fraction(str(t.get("score", 0)))
            except (ValueError, ZeroDivisionError):
                pass
    return {p: min(max(earned[p], Fraction(0)), rubric[p]) for p in rubric}


def places_for(rubric: dict[str, Fraction], extra=()) -> int:
    """Decimal places of the rounding grid: 2, or more when a maximum needs them (0.125 needs 3),
    so that every maximum lies on the grid and a rounded score can never pass it."""
    places = 2
    for value in [*rubric.values(), *extra]:
        value = Fraction(value)
        while (value * 10**places).denominator != 1 and places < 6:
            places += 1
    return places


def round_parts(exact: dict[str, Fraction], places: int) -> dict[str, Decimal]:
    """Round once, by largest remainders: the parts add up exactly to the exact total rounded half up."""
    unit = Fraction(1, 10**places)
    q = Decimal(1).scaleb(-places)
    total_units = int(dec(sum(exact.values(), Fraction(0)), places).scaleb(places))
    floors = {p: math.floor(v / unit) for p, v in exact.items()}
    remainders = sorted(exact, key=lambda p: -(exact[p] / unit - floors[p]))  # stable: rubric order on ties
    extra = total_units - sum(floors.values())
    for p in remainders[:max(0, extra)]:
        if exact[p] / unit != floors[p]:
            floors[p] += 1
    return {p: (Decimal(n) * q).quantize(q) for p, n in floors.items()}


def dec(value: Fraction, places: int) -> Decimal:
    q = Decimal(1).scaleb(-places)
    return (Decimal(value.numerator) / Decimal(value.denominator)).quantize(q, rounding=ROUND_HALF_UP)


def maximum(rubric: dict[str, Fraction], bonus: set[str]) -> tuple[Fraction, Fraction]:
    """(maximum, bonus points): the one definition every export uses."""
    return (sum((v for p, v in rubric.items() if p not in bonus), Fraction(0)),
            sum((v for p, v in rubric.items() if p in bonus), Fraction(0)))


# -- per student and part ----------------------------------------------------------------------


def rows(results: dict[str, dict], rubric_path=None) -> tuple[list[str], list[dict]]:
    """(header, rows) of grades.csv: the ``max`` row first, then one row per student (sorted)."""
    rubric, bonus = load_rubric(rubric_path)
    places = places_for(rubric)
    top, extra = maximum(rubric, bonus)
    header = ["student", *rubric, "total", "status", "problem"]
    first = {"student": MAX_ROW, **{p: dec(v, places) for p, v in rubric.items()}, "total": dec(top, places),
             "status": "", "problem": (f"bonus parts {', '.join(sorted(bonus))} ({dec(extra, places)} points) "
                                       f"count in the total, not in the maximum") if bonus else ""}
    out = [first]
    for student in sorted(results):
        if student == MAX_ROW:
            raise ValueError(f"a student may not be called {MAX_ROW!r}: it names the maximum row")
        status, problem = classify(results[student])
        parts = round_parts(exact_parts(results[student], rubric), places)
        if status in NOT_GRADED:  # a broken submission never looks like a blank one: no numbers at all
            row = {"student": student, **{p: "" for p in rubric}, "total": ""}
        else:
            row = {"student": student, **parts, "total": sum(parts.values(), Decimal(0))}
        row.update(status=status, problem=problem)
        out.append(row)
    return header, out


def _write(path: Path, header: list[str], data: list[dict]) -> Path:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=header)
        w.writeheader()
        for row in data:
            # every text a student can shape (its id, a problem, feedback) as text in a spreadsheet
            w.writerow({k: csv_cell(plain(v)) if isinstance(v, str) else v for k, v in
                        ((k, row.get(k, "")) for k in header)})
    tmp.replace(path)
    return path


def write_grades_csv(results: dict[str, dict], out_dir, rubric_path=None) -> Path:
    header, data = rows(results, rubric_path)
    return _write(Path(out_dir) / GRADES_CSV, header, data)


# -- LMS: written answers, late penalties, Canvas, Moodle --------------------------------------


def written_maxima(release=RELEASE) -> dict[str, Fraction]:
    """grade_id -> points of the manually graded cells (the written answers) of the release notebook."""
    import json

    nb = json.loads(Path(release).read_text())
    out = {}
    for cell in nb["cells"]:
        meta = (cell.get("metadata") or {}).get("nbgrader") or {}
        if cell.get("cell_type") == "markdown" and meta.get("grade") and meta.get("solution"):
            out[meta["grade_id"]] = Fraction(str(meta.get("points", 0)))
    return out


def read_roster(path) -> dict[str, dict]:
    """student -> its roster row (columns: student, and any of name, canvas_id, sis_user_id,
    sis_login_id, section, email, username, submitted_at)."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if "student" not in (reader.fieldnames or []):
            raise ValueError(f"{path}: the roster needs a 'student' column")
        return {r["student"].strip(): {k: (v or "").strip() for k, v in r.items()} for r in reader if r["student"]}


def read_written(path, maxima: dict[str, Fraction]) -> dict[str, Fraction]:
    """student -> written-answer points, from a CSV: student, one column per written grade_id."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        cols = [c for c in reader.fieldnames or [] if c != "student"]
        unknown = set(cols) - set(maxima)
        if "student" not in (reader.fieldnames or []) or unknown:
            raise ValueError(f"{path}: expected columns student, {', '.join(maxima)} (unknown: {sorted(unknown)})")
        out = {}
        for r in reader:
            total = Fraction(0)
            for c in cols:
                value = Fraction((r[c] or "0").strip())
                if not 0 <= value <= maxima[c]:
                    raise ValueError(f"{path}: {r['student']} {c} = {value}, outside 0..{maxima[c]}")
                total += value
            out[r["student"].strip()] = total
        return out


def read_gradebook_written(db, maxima: dict[str, Fraction], assignment: str = "gpt_lab",
                           notebook: str = "gpt_lab") -> dict[str, Fraction]:
    """student -> written-answer points, from nbgrader's gradebook (the manual scores given in formgrader):
    only students whose every written answer has been graded (the others read "not graded yet"). ``db``:
    the gradebook's file (``gradebook.db``) or a database URL."""
    from nbgrader.api import Gradebook, MissingEntry

    url = str(db) if "://" in str(db) else f"sqlite:///{Path(db).resolve()}"
    if "://" not in str(db) and not Path(db).is_file():
        raise ValueError(f"{db}: no gradebook there")
    out = {}
    with Gradebook(url) as gb:
        for student in gb.students:
            try:
                sub = gb.find_submission_notebook(notebook, assignment, student.id)
            except MissingEntry:
                continue
            grades = {g.name: g for g in sub.grades if g.name in maxima}
            if set(grades) != set(maxima) or any(g.needs_manual_grade or g.score is None for g in grades.values()):
                continue
            # nbgrader's score: the manual score where one was given; bounded by the release's points
            out[student.id] = sum((min(maxima[n], max(Fraction(0), Fraction(str(g.score))))
                                   for n, g in grades.items()), Fraction(0))
    return out


def parse_time(text: str) -> datetime:
    """An ISO time, or nbgrader's timestamp.txt (``2026-11-30 12:00:00.123456 UTC``); naive = UTC."""
    text = text.strip()
    if text.endswith(" UTC"):
        text = text[:-4]
    t = datetime.fromisoformat(text)
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def submitted_times(submitted_dir, assignment: str = "gpt_lab") -> dict[str, datetime]:
    """student -> submission time from nbgrader's ``submitted/<student>/<assignment>/timestamp.txt``."""
    out = {}
    for stamp in Path(submitted_dir).glob(f"*/{assignment}/timestamp.txt"):
        try:
            out[stamp.parent.parent.name] = parse_time(stamp.read_text())
        except (OSError, ValueError):
            pass
    return out


def late_penalty(submitted: datetime | None, due: datetime | None, per_day: Fraction, cap: Fraction) -> tuple[Fraction, int]:
    """(fraction of the score taken, days late): per started day late, at most ``cap``."""
    if submitted is None or due is None or submitted <= due:
        return Fraction(0), 0
    days = math.ceil((submitted - due).total_seconds() / 86400)
    return min(cap, per_day * days), days


def lms_rows(results: dict[str, dict], rubric_path=None, roster=None, written=None, written_max=None,
             due=None, per_day=Fraction(0), cap=Fraction(1), times=None) -> tuple[Fraction, list[dict]]:
    """(points possible, [{student, score (Decimal or '' when not graded), feedback, roster fields}])."""
    rubric, bonus = load_rubric(rubric_path)
    top, _ = maximum(rubric, bonus)
    written_total = sum((written_max or {}).values(), Fraction(0))
    possible = top + (written_total if written is not None else 0)
    places = places_for(rubric, [possible, *(written_max or {}).values()])
    roster = roster or {}
    times = dict(times or {})
    for student, row in roster.items():
        if row.get("submitted_at"):
            times[student] = parse_time(row["submitted_at"])
    out = []
    for student in sorted(add_missing(results, roster)):
        data = results.get(student) or add_missing({}, [student])[student]
        status, problem = classify(data)
        notes = []
        if status in NOT_GRADED:
            score, notes = "", [f"autograded part not graded ({status}): {problem}"]
        else:
            points = sum(exact_parts(data, rubric).values(), Fraction(0))
            notes.append(f"autograded {dec(points, places)} / {dec(top, places)}")
            if written is not None:
                mine = written.get(student)
                points += mine or 0
                notes.append(f"written {dec(mine, places)} / {dec(written_total, places)}" if mine is not None
                             else "written answers not graded yet")
            penalty, days = late_penalty(times.get(student), due, per_day, cap)
            if penalty:
                points -= points * penalty
                notes.append(f"{days} day(s) late: -{float(penalty) * 100:g}%")
            if status in ("tampered", "hung"):
                notes.append(f"flagged: {problem}")
            score = dec(points, places)
        out.append({**roster.get(student, {}), "student": student, "score": score, "feedback": "; ".join(notes)})
    return possible, out


def write_canvas_csv(path, assignment: str, possible: Fraction, data: list[dict]) -> Path:
    """Canvas's gradebook import: Student, ID, SIS User ID, SIS Login ID, Section, then the assignment
    column; the ``Points Possible`` row first. Without a roster the student id goes to SIS Login ID
    (nbgrader's student ids are usually logins). Canvas accepts scores above points possible (the bonus)."""
    header = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", assignment]
    places = places_for({}, [possible])
    lines = [{"Student": "    Points Possible", assignment: dec(possible, places)}]
    for r in data:
        lines.append({"Student": r.get("name") or r["student"], "ID": r.get("canvas_id", ""),
                      "SIS User ID": r.get("sis_user_id", ""),
                      "SIS Login ID": r.get("sis_login_id") or (r["student"] if not r.get("canvas_id") else ""),
                      "Section": r.get("section", ""), assignment: r["score"]})
    return _write(Path(path), header, lines)


def write_moodle_csv(path, assignment: str, data: list[dict]) -> Path:
    """Moodle's grade import from CSV (Grades > Import > CSV file): an identifier column to map
    (Username, or Email address) and a grade and a feedback column to map to the grade item."""
    header = ["Username", "Email address", assignment, f"{assignment} feedback"]
    lines = [{"Username": r.get("username") or r["student"], "Email address": r.get("email", ""),
              assignment: r["score"], f"{assignment} feedback": r["feedback"]} for r in data]
    return _write(Path(path), header, lines)


def export_all(results: dict[str, dict], out_dir, assignment="gpt_lab", rubric_path=None, **lms) -> list[Path]:
    """grades.csv, canvas.csv and moodle.csv in out_dir; ``lms`` as for :func:`lms_rows`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    roster = lms.get("roster") or {}
    paths = [write_grades_csv(add_missing(results, roster), out_dir, rubric_path)]
    possible, data = lms_rows(results, rubric_path, **lms)
    paths.append(write_canvas_csv(out_dir / CANVAS_CSV, assignment, possible, data))
    paths.append(write_moodle_csv(out_dir / MOODLE_CSV, assignment, data))
    return paths


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m instructor.exports", description=__doc__.split("\n\n")[0])
    ap.add_argument("results", help="a folder of <student>.json results (grade_class's --out folder)")
    ap.add_argument("--out", default=None, help="where the CSV files go (default: the results folder)")
    ap.add_argument("--assignment", default="gpt_lab", help="the assignment's name in the LMS")
    ap.add_argument("--rubric", default=None, help="a registry of parts with other points (default: autograder/parts.toml)")
    ap.add_argument("--roster", default=None, help="CSV: student, and any of name, canvas_id, sis_user_id, "
                    "sis_login_id, section, email, username, submitted_at; absent students are 'missing'")
    ap.add_argument("--written", default=None, help="CSV: student, one column per written answer grade_id")
    ap.add_argument("--gradebook", default=None,
                    help="nbgrader's gradebook.db: the written answers' scores given in formgrader (instead of --written)")
    ap.add_argument("--notebook", default="gpt_lab", help="the notebook's name in the gradebook")
    ap.add_argument("--due", default=None, help="deadline, ISO time (naive = UTC)")
    ap.add_argument("--late-per-day", type=Fraction, default=Fraction(0), help="score fraction taken per day late")
    ap.add_argument("--late-max", type=Fraction, default=Fraction(1), help="largest late penalty (fraction)")
    ap.add_argument("--submitted", default=None, help="nbgrader submitted/ folder: times from timestamp.txt")
    args = ap.parse_args(argv)
    results = load_folder(args.results)
    maxima = written_maxima()
    if args.written and args.gradebook:
        ap.error("--written or --gradebook, not both")
    written = read_written(args.written, maxima) if args.written else None
    if args.gradebook:
        written = read_gradebook_written(args.gradebook, maxima, args.assignment, args.notebook)
    lms = {"roster": read_roster(args.roster) if args.roster else None, "written": written, "written_max": maxima,
           "due": parse_time(args.due) if args.due else None, "per_day": args.late_per_day, "cap": args.late_max,
           "times": submitted_times(args.submitted, args.assignment) if args.submitted else None}
    for path in export_all(results, args.out or args.results, args.assignment, args.rubric, **lms):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
