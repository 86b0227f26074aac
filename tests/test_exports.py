"""instructor/exports.py and instructor/class_summary.py on results data made here (no grading run):
exact part scores, the max row, statuses, Canvas / Moodle imports with written answers and late
penalties."""

from __future__ import annotations

import csv
from datetime import datetime, timezone
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autograder.engine import report
from autograder.engine.report import load_rubric
from instructor import class_summary, exports

RUBRIC, BONUS = load_rubric()
PARTS = list(RUBRIC)


def results_json(passed: dict[str, tuple[int, int]], weights: dict[str, list[int]] | None = None, **extra) -> dict:
    """A results.json with, per part, (passed, checks): the first ``passed`` checks pass; each check's
    score its share of the part's points as the grader writes it (engine/report.PartScore: units of
    1/10,000, in proportion to the checks' ``weights``, 1 each by default)."""
    tests = []
    for part, (ok, n) in passed.items():
        w = (weights or {}).get(part) or [1] * n
        outcomes = [report.Outcome(part, f"c{i}", "", False, "passed" if i < ok else "failed", "", w[i])
                    for i in range(n)]
        shares = report.PartScore(part, RUBRIC[part], False, outcomes).shares()
        tests += [{"name": f"{part}: c{i}", "score": float(shares[i]) if i < ok else 0, "max_score": float(shares[i]),
                   "status": "passed" if i < ok else "failed", "output": "", "tags": [part]} for i in range(n)]
    return report.set_verdict({"score": 0, "tests": tests, "output": "", **extra}, "ok")


def read(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.integers(1, 9), st.integers(0, 9)), min_size=len(RUBRIC), max_size=len(RUBRIC)))
def test_exports_parts_rounded_once_add_up_and_stay_under_their_maximum(checks):
    passed = {p: (min(ok, n), n) for p, (n, ok) in zip(PARTS, checks)}
    data = results_json(passed)
    exact = exports.exact_parts(data, RUBRIC)
    assert exact == {p: sum((Fraction(str(t["score"])) for t in data["tests"] if t["tags"] == [p]), Fraction(0))
                     for p in passed}
    for p, (ok, n) in passed.items():  # equal weights: within the grader's unit of points x passed / checks
        assert abs(exact[p] - RUBRIC[p] * ok / n) <= Fraction(ok, 10_000)  # each share within a unit
    rounded = exports.round_parts(exact, 2)
    unit = Decimal("0.01")
    total = sum(exact.values(), Fraction(0))
    assert sum(rounded.values()) == exports.dec(total, 2)  # the parts add up to the total rounded once
    for p in PARTS:
        assert rounded[p] <= Decimal(str(float(RUBRIC[p])))  # never above the part's maximum
        assert abs(Fraction(rounded[p]) - exact[p]) < Fraction(unit)  # within one unit of the exact value


def test_exports_part_scores_follow_the_checks_weights():
    # a part's score is what the grader gave it: the sum of its passed checks' weighted shares, never
    # points x passed / checks (gpt: 'logits' weighs 5 of 9; passing the three light checks keeps 4/9)
    data = results_json({"gpt": (3, 4)}, weights={"gpt": [1, 1, 2, 5]})
    assert abs(exports.exact_parts(data, RUBRIC)["gpt"] - Fraction(1, 2) * 4 / 9) <= Fraction(3, 10_000)  # 0.5 x 4/9
    assert exports.exact_parts(data, RUBRIC)["gpt"] != RUBRIC["gpt"] * 3 / 4
    assert exports.round_parts(exports.exact_parts(data, RUBRIC), 2)["gpt"] == Decimal("0.22")
    # three of three equal checks: the shares add up to the part's points exactly (0.1667 + 0.1667 + 0.1666)
    assert exports.round_parts(exports.exact_parts(results_json({"gpt": (3, 3)}), RUBRIC), 2)["gpt"] == Decimal("0.50")


def test_exports_places_cover_every_maximum():
    assert exports.places_for(RUBRIC) == 2
    assert exports.places_for({"a": Fraction(1, 8)}) == 3


def test_exports_grades_csv_max_row_statuses_and_blank_rows(tmp_path):
    full = {p: (3, 3) for p in PARTS}
    results = {
        "ann": results_json(full),
        "ben": results_json({**full, "head": (2, 9), "gpt": (1, 3)}),
        "cat": {"score": 0, "tests": [], "output": "x", "extra_data": {"gptlab": {"status": "timeout",
                                                                                 "problem": "too slow\nmore"}}},
        "dov": results_json({p: (0, 3) for p in PARTS}),  # a blank notebook: graded, 0
    }
    rows = read(exports.write_grades_csv(results, tmp_path))
    assert [r["student"] for r in rows] == ["max", "ann", "ben", "cat", "dov"]
    top = rows[0]
    assert top["total"] == "6.00" and {p: top[p] for p in PARTS} == {p: f"{float(v):.2f}" for p, v in RUBRIC.items()}
    assert "bigram" in top["problem"] and "not in the maximum" in top["problem"]
    assert rows[1]["total"] == "6.50" and rows[1]["status"] == "ok"
    ben = rows[2]
    # each part within one rounding unit of its exact share (head 2 of 9 checks, gpt 1 of 3), whatever the registry's points
    exact = {"head": RUBRIC["head"] * Fraction(2, 9), "gpt": RUBRIC["gpt"] * Fraction(1, 3)}
    assert all(abs(Decimal(ben[p]) - Decimal(v.numerator) / Decimal(v.denominator)) < Decimal("0.01")
               for p, v in exact.items()), (ben["head"], ben["gpt"], exact)
    assert Decimal(ben["head"]) < Decimal(top["head"]) and Decimal(ben["gpt"]) < Decimal(top["gpt"])
    assert sum(Decimal(ben[p]) for p in PARTS) == Decimal(ben["total"])
    assert rows[3]["status"] == "timeout" and rows[3]["problem"] == "too slow" and rows[3]["total"] == ""
    assert rows[4]["status"] == "ok" and rows[4]["total"] == "0.00"  # graded: 0, not blank
    with pytest.raises(ValueError):
        exports.write_grades_csv({"max": results_json(full)}, tmp_path)


def test_exports_classify_reads_the_verdict_never_the_messages():
    # the status is extra_data.gptlab's, whatever the messages say and in whatever language
    unread = report.set_verdict({"tests": [{"output": "no se pudo leer la entrega", "tags": ["gpt"]}] * 2,
                                 "output": ""}, "error", "unreadable", "x.ipynb is not valid JSON\nmore")
    assert class_summary.classify(unread) == ("error", "x.ipynb is not valid JSON")
    assert class_summary.cause(unread) == "unreadable"
    gone = report.set_verdict({"tests": []}, "missing", "no_submission", "the path does not exist")
    assert class_summary.classify(gone)[0] == "missing"
    hung = results_json({"gpt": (1, 3)})
    report.set_verdict(hung, "hung", "cell_timeout", "cell 2 ran past its limit")
    assert class_summary.classify(hung) == ("hung", "cell 2 ran past its limit")
    # a message that reads like a verdict changes nothing (it was the student's to write)
    looks = results_json({"gpt": (3, 3)}, output="WARNING: tampered; the submission could not be read: x")
    assert class_summary.classify(looks) == ("ok", "")
    # a results file without a verdict is not a grade: never ok with 0
    for bare in ({"tests": [], "output": "grader crashed"}, {"tests": [{"status": "failed", "tags": ["gpt"]}]},
                 {"extra_data": {"gptlab": "ok"}}, {"extra_data": {"gptlab": {"status": "great"}}}, [], "x"):
        assert class_summary.classify(bare)[0] == "error", bare


def test_exports_load_folder_keeps_an_unreadable_file(tmp_path):
    (tmp_path / "ann.json").write_text('{"tests": []')
    (tmp_path / ".cache.json").write_text("{}")
    found = class_summary.load_folder(tmp_path)
    assert list(found) == ["ann"] and class_summary.classify(found["ann"])[0] == "error"


def test_exports_lms_written_answers_and_late_penalty(tmp_path):
    full = {p: (3, 3) for p in PARTS}
    results = {"ann": results_json(full), "ben": results_json(full), "cat": results_json({p: (0, 3) for p in PARTS})}
    roster = tmp_path / "roster.csv"
    roster.write_text("student,name,sis_user_id,email,submitted_at\n"
                      "ann,Ann A,111,ann@x.org,2026-12-01T10:00:00+00:00\n"
                      "ben,Ben B,222,ben@x.org,2026-12-03T10:00:00+00:00\n"
                      "cat,Cat C,333,cat@x.org,\n"
                      "dov,Dov D,444,dov@x.org,\n")
    maxima = exports.written_maxima()
    assert maxima == {"written_qk": 1, "written_scale": 1, "written_heads": 1, "written_baseline": 1}
    written = tmp_path / "written.csv"
    written.write_text("student,written_qk,written_scale,written_heads,written_baseline\nann,1,0.5,1,1\nben,1,1,1,1\n")
    due = exports.parse_time("2026-12-01T23:59:00")
    paths = exports.export_all(results, tmp_path, roster=exports.read_roster(roster),
                               written=exports.read_written(written, maxima), written_max=maxima, due=due,
                               per_day=Fraction(1, 10), cap=Fraction(1, 2))
    canvas = read(paths[1])
    assert canvas[0]["Student"].strip() == "Points Possible" and canvas[0]["gpt_lab"] == "10.00"
    by_id = {r["SIS User ID"]: r for r in canvas[1:]}
    assert by_id["111"]["Student"] == "Ann A" and by_id["111"]["gpt_lab"] == "10.00"  # 6.5 + 3.5, on time
    assert by_id["222"]["gpt_lab"] == "8.40"  # (6.5 + 4) less 2 started days late x 10 %
    assert by_id["333"]["gpt_lab"] == "0.00" and by_id["444"]["gpt_lab"] == ""  # graded 0 / missing
    moodle = {r["Username"]: r for r in read(paths[2])}
    assert moodle["ben"]["Email address"] == "ben@x.org" and "2 day(s) late: -20%" in moodle["ben"]["gpt_lab feedback"]
    assert "written answers not graded yet" in moodle["cat"]["gpt_lab feedback"]
    assert "not graded (missing)" in moodle["dov"]["gpt_lab feedback"]
    grades = read(paths[0])
    assert [r["student"] for r in grades] == ["max", "ann", "ben", "cat", "dov"] and grades[-1]["status"] == "missing"
    bad = tmp_path / "bad.csv"
    bad.write_text("student,written_qk\nann,2\n")
    with pytest.raises(ValueError):
        exports.read_written(bad, maxima)


def test_exports_late_penalty_per_started_day_and_capped():
    due = datetime(2026, 12, 1, tzinfo=timezone.utc)
    on_time = exports.late_penalty(due, due, Fraction(1, 10), Fraction(1, 2))
    assert on_time == (0, 0)
    assert exports.late_penalty(datetime(2026, 12, 1, 0, 1, tzinfo=timezone.utc), due, Fraction(1, 10),
                                Fraction(1, 2)) == (Fraction(1, 10), 1)
    assert exports.late_penalty(datetime(2026, 12, 30, tzinfo=timezone.utc), due, Fraction(1, 10),
                                Fraction(1, 2)) == (Fraction(1, 2), 29)
    assert exports.parse_time("2026-11-30 12:00:00.123456 UTC") == datetime(2026, 11, 30, 12, 0, 0, 123456,
                                                                            tzinfo=timezone.utc)


def test_exports_cli_on_a_results_folder(tmp_path):
    import json
    import subprocess
    import sys

    from tests.conftest import REPO

    (tmp_path / "ann.json").write_text(json.dumps(results_json({p: (3, 3) for p in PARTS})))
    sub = tmp_path / "submitted" / "ann" / "gpt_lab"
    sub.mkdir(parents=True)
    (sub / "timestamp.txt").write_text("2026-12-02 08:00:00 UTC")
    proc = subprocess.run([sys.executable, "-m", "instructor.exports", tmp_path, "--out", tmp_path / "csv",
                           "--due", "2026-12-01T23:59:00", "--late-per-day", "1/4", "--submitted",
                           tmp_path / "submitted"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert read(tmp_path / "csv" / "canvas.csv")[1]["gpt_lab"] == "4.88"  # 6.5 x 0.75 = 4.875, half up


def test_exports_summary_cli_on_a_results_folder(tmp_path):
    import json
    import subprocess
    import sys

    from tests.conftest import REPO

    (tmp_path / "ann.json").write_text(json.dumps(results_json({p: (3, 3) for p in PARTS})))
    (tmp_path / "ben.json").write_text(json.dumps(report.set_verdict({"tests": [], "output": "x"}, "error",
                                                                      "grader_failed", "the grader crashed\ntraceback")))
    (tmp_path / "roster.txt").write_text("ann\nben\ncid\n")
    cmd = [sys.executable, "-m", "instructor.class_summary", tmp_path, "--roster", tmp_path / "roster.txt"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("class summary: 3 students, 1 graded, 2 NOT graded (1 error, 0 timeout, 1 missing)")
    assert lines[1].split()[:2] == ["ben", "error"] and lines[1].endswith("the grader crashed")
    assert lines[2].split()[:2] == ["cid", "missing"] and len(lines) == 3
    assert (tmp_path / "summary.txt").read_text() == proc.stdout
    (tmp_path / "ben.json").unlink()
    (tmp_path / "roster.txt").write_text("ann\n")
    assert subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120).returncode == 0


def _gradebook_with_written_scores(path, scores: dict[str, dict[str, float | None]]) -> None:
    """A real nbgrader gradebook: the release's written answers as manually graded cells, and each
    student's manual scores as formgrader saves them (None: not graded yet)."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{path}") as gb:
        gb.add_assignment("gpt_lab")
        gb.add_notebook("gpt_lab", "gpt_lab")
        for name, points in exports.written_maxima().items():
            gb.add_grade_cell(name, "gpt_lab", "gpt_lab", max_score=float(points), cell_type="markdown")
            gb.add_solution_cell(name, "gpt_lab", "gpt_lab")
        gb.add_grade_cell("check_head", "gpt_lab", "gpt_lab", max_score=0.75, cell_type="code")
        for student, marks in scores.items():
            gb.add_student(student)
            gb.add_submission("gpt_lab", student)
            for name, value in marks.items():
                grade = gb.find_grade(name, "gpt_lab", "gpt_lab", student)
                grade.manual_score = value
                grade.needs_manual_grade = value is None
            gb.db.commit()


def test_exports_written_answers_come_from_the_gradebook(tmp_path):
    pytest.importorskip("nbgrader")
    maxima = exports.written_maxima()
    db = tmp_path / "gradebook.db"
    _gradebook_with_written_scores(db, {
        "ann": {"written_qk": 1, "written_scale": 0.5, "written_heads": 1, "written_baseline": 1},
        "ben": {"written_qk": 1, "written_scale": None, "written_heads": 1, "written_baseline": 1},  # one to go
    })
    assert exports.read_gradebook_written(db, maxima) == {"ann": Fraction(7, 2)}
    results = {"ann": results_json({p: (3, 3) for p in PARTS}), "ben": results_json({p: (3, 3) for p in PARTS})}
    import subprocess
    import sys

    from tests.conftest import REPO

    folder = tmp_path / "results"
    folder.mkdir()
    for student, data in results.items():
        (folder / f"{student}.json").write_text(__import__("json").dumps(data))
    proc = subprocess.run([sys.executable, "-m", "instructor.exports", folder, "--out", tmp_path / "csv",
                           "--gradebook", db], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    canvas = {r["SIS Login ID"]: r for r in read(tmp_path / "csv" / "canvas.csv")[1:]}
    assert canvas["ann"]["gpt_lab"] == "10.00"  # 6.5 autograded + 3.5 written in formgrader
    moodle = {r["Username"]: r for r in read(tmp_path / "csv" / "moodle.csv")}
    assert "written answers not graded yet" in moodle["ben"]["gpt_lab feedback"]
