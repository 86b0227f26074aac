"""instructor/grade_class.py: a mixed class folder graded in parallel (tests/bank/klass.py), the
class summary, the CSVs (grades, Canvas, Moodle), the similarity page, the progress bar, the rerun
cache, --force, the time-out, nbgrader's layout, and the tampering notes."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from decimal import Decimal

import pytest

from autograder.engine.report import load_rubric
from instructor import grade_class, tampering
from instructor.grade_class import discover, grade_many, part_scores, rubric_parts
from tests.bank import klass as klass_bank
from tests.conftest import ASSIGNMENT, REFERENCE, REPO

HUNG = "while True:\n    pass\n"


def _rubric_max() -> dict:
    # the rubric's points written as in the CSV (2 decimals: every rubric value lies on that grid)
    return {p: f"{float(v):.2f}" for p, v in load_rubric()[0].items()}


def _cli(*args, timeout=900):
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "instructor.grade_class", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout, proc.stderr, time.monotonic() - started


def _rows(out: Path) -> list[dict]:
    with open(out / "grades.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def klass(tmp_path_factory):
    """tests/bank/klass.py's class (honest students, a plagiarist, a mutant, broken, tampered,
    timed-out, crashing, not-a-notebook and missing submissions), graded once by the CLI with 3
    jobs, the class's roster and time limit."""
    root = tmp_path_factory.mktemp("class")
    made = klass_bank.build(root)
    out = root / "out"
    stdout, stderr, elapsed = _cli(made["subs"], "--out", out, "--jobs", 3, "--reference", made["reference"],
                                   "--roster", made["roster"], "--timeout", klass_bank.TIMEOUT_S)
    return {**made, "root": root, "out": out, "stdout": stdout, "stderr": stderr, "elapsed": elapsed,
            "cache": json.loads((out / ".cache.json").read_text())}


EXPECTED = {"dan": "ok", "alice": "ok", "bob": "ok", "carol": "ok", "erin": "ok", "mallory": "ok", "mutant": "ok",
            "crash": "ok", "tampered": "tampered", "broken": "error", "notes": "error", "hung": "timeout",
            "zoe": "missing"}


@pytest.mark.e2e_paths
def test_grade_class_every_student_gets_a_row_with_its_status(klass):
    rows = {r["student"]: r for r in _rows(klass["out"])}
    assert set(rows) == {"max", *klass["students"]}, klass["stdout"]
    assert {s: r["status"] for s, r in rows.items() if s != "max"} == EXPECTED, klass["stdout"]
    with open(klass["out"] / "grades.csv", newline="") as f:
        header = next(csv.reader(f))
    assert header == ["student", *rubric_parts(), "total", "status", "problem"]
    for student in klass["students"]:
        assert (klass["out"] / f"{student}.json").is_file()
    full = {p: str(v) for p, v in _rubric_max().items()}
    for honest in ("dan", "alice", "bob", "carol", "erin", "mallory", "tampered"):
        assert {p: rows[honest][p] for p in rubric_parts()} == full, rows[honest]
        assert rows[honest]["total"] == "6.50", rows[honest]  # 6 + the bonus
    mutant = rows["mutant"]
    assert float(mutant["head"]) < 1 and all(mutant[p] == full[p] for p in rubric_parts() if p != "head"), mutant
    crash = rows["crash"]  # graded: the grader reports the crash; 0 points is its grade
    assert crash["total"] == "0.00" and all(crash[p] == "0.00" for p in rubric_parts()), crash
    assert "exited with status 1" in json.loads((klass["out"] / "crash.json").read_text())["output"]


@pytest.mark.e2e_paths
def test_grade_class_a_student_not_graded_never_looks_like_a_zero(klass):
    rows = {r["student"]: r for r in _rows(klass["out"])}
    for student in ("broken", "notes", "hung", "zoe"):
        row = rows[student]
        assert row["total"] == "" and all(row[p] == "" for p in rubric_parts()), row
        assert row["problem"], row
    assert "not valid JSON" in rows["broken"]["problem"]
    assert "expected a .ipynb notebook" in rows["notes"]["problem"]
    assert f"within {klass_bank.TIMEOUT_S} s" in rows["hung"]["problem"]
    assert "no submission found" in rows["zoe"]["problem"]
    assert "check_head: source edited" in rows["tampered"]["problem"]
    assert "check_gpt: its nbgrader metadata stripped" in rows["tampered"]["problem"]
    for student in ("dan", "alice", "crash", "mutant"):
        assert rows[student]["problem"] == "", rows[student]


@pytest.mark.e2e_paths
def test_grade_class_summary_lists_every_problem_in_one_line(klass):
    summary = (klass["out"] / "summary.txt").read_text()
    assert summary.strip() in klass["stdout"], klass["stdout"]
    lines = summary.splitlines()
    assert lines[0].startswith("class summary: 13 students, 9 graded, 4 NOT graded (2 error, 1 timeout, 1 missing), "
                               "1 tampered"), lines[0]
    listed = {line.split()[0]: line for line in lines[1:]}
    assert set(listed) == {"broken", "notes", "hung", "zoe", "tampered"}, summary
    for student, status in EXPECTED.items():
        if status != "ok":
            assert f" {status} " in listed[student] and len(listed[student]) < 320, listed[student]
    assert "NOT graded" in listed["hung"] and "needs a look" in listed["tampered"]


@pytest.mark.e2e_paths
def test_grade_class_progress_shows_count_time_left_and_errors(klass):
    err = klass["stderr"]
    assert "12/12" in err and "not graded" in err and "tampered" in err, err[-2000:]
    assert "<" in err and "submission" in err  # tqdm's elapsed<left estimate


@pytest.mark.e2e_paths
def test_grade_class_csv_parts_add_up_exactly_to_totals(klass):
    rows = _rows(klass["out"])
    assert rows[0]["student"] == "max"
    assert {p: Decimal(rows[0][p]) for p in rubric_parts()} == {p: Decimal(str(v)) for p, v in _rubric_max().items()}
    assert Decimal(rows[0]["total"]) == Decimal("6.00") and "bigram" in rows[0]["problem"]
    for row in rows[1:]:  # the max row's total leaves the bonus part out: that is the maximum's definition
        if row["total"]:
            parts = [Decimal(row[p]) for p in rubric_parts()]
            assert sum(parts) == Decimal(row["total"]), row
            assert all(Decimal(row[p]) <= Decimal(rows[0][p]) for p in rubric_parts()), row


@pytest.mark.e2e_paths
def test_grade_class_lms_exports_have_the_maximum_and_every_student(klass):
    with open(klass["out"] / "canvas.csv", newline="") as f:
        canvas = list(csv.DictReader(f))
    assert canvas[0]["Student"].strip() == "Points Possible" and canvas[0]["gpt_lab"] == "6.00"
    by_login = {r["SIS Login ID"]: r for r in canvas[1:]}
    assert set(by_login) == set(klass["students"])
    assert by_login["dan"]["gpt_lab"] == "6.50" and by_login["hung"]["gpt_lab"] == ""
    with open(klass["out"] / "moodle.csv", newline="") as f:
        moodle = {r["Username"]: r for r in csv.DictReader(f)}
    assert moodle["zoe"]["gpt_lab"] == "" and "not graded (missing)" in moodle["zoe"]["gpt_lab feedback"]
    assert moodle["mutant"]["gpt_lab"] == next(r["total"] for r in _rows(klass["out"]) if r["student"] == "mutant")


@pytest.mark.e2e_paths
def test_grade_class_similarity_page_has_the_planted_pair_on_top(klass):
    page = (klass["out"] / "similarity.html").read_text()
    first = page.index("class='pair'")
    assert "data-a='alice' data-b='mallory'" in page[first:first + 80], page[first:first + 200]
    assert page.count("class='pair'") == 1, "an honest pair is listed as worth a look"


@pytest.mark.e2e_paths
def test_grade_class_timeout_does_not_hold_up_the_others(klass):
    results = {s: e["result"] for s, e in klass["cache"]["students"].items()}
    hung = results["hung"]
    assert hung["status"] == "timeout" and hung["seconds"] >= klass_bank.TIMEOUT_S
    others = [r for s, r in results.items() if s != "hung"]
    # the others were graded while the hung one ran: the batch took far less than one after another
    assert klass["elapsed"] < hung["seconds"] + sum(r["seconds"] for r in others) - 10, (klass["elapsed"], results)
    assert all(r["seconds"] < klass_bank.TIMEOUT_S for r in others), results


@pytest.mark.e2e_paths
def test_grade_class_rerun_skips_unchanged_then_force_regrades(klass):
    out, subs = klass["out"], klass["subs"]
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("[!.]*.json")}
    csv_before = (out / "grades.csv").read_text()
    ref = ("--reference", klass["reference"], "--roster", klass["roster"], "--timeout", klass_bank.TIMEOUT_S)
    stdout, _, _ = _cli(subs, "--out", out, "--jobs", 3, *ref)  # how fast: benchmarks/class_grading.py
    assert "12 unchanged, skipped" in stdout, stdout
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("[!.]*.json") if p.stem != "zoe"} == \
        {k: v for k, v in before.items() if k != "zoe.json"}
    assert (out / "grades.csv").read_text() == csv_before

    # a changed submission is regraded, the others are not
    (subs / "notes.txt").write_text("changed\n")
    results = grade_many(discover(subs), out, jobs=2, reference=klass["reference"], timeout=klass_bank.TIMEOUT_S)
    assert [s for s, r in results.items() if not r["cached"]] == ["notes"]

    # --force regrades unchanged ones (a small folder, same students, same out dir)
    small = klass["root"] / "small"
    small.mkdir()
    shutil.copy(subs / "notes.txt", small / "notes.txt")
    shutil.copy(subs / "crash.py", small / "crash.py")
    stdout, _, _ = _cli(small, "--out", out, "--jobs", 2, "--reference", klass["reference"], "--no-similarity")
    assert "2 unchanged, skipped" in stdout, stdout
    stdout, _, _ = _cli(small, "--out", out, "--jobs", 2, "--force", "--reference", klass["reference"])
    assert "0 unchanged, skipped" in stdout, stdout
    assert (out / "crash.json").stat().st_mtime_ns > before["crash.json"]
    assert {r["student"] for r in _rows(out)} == {"max", "notes", "crash"}


def test_timeout_kills_the_whole_grading_tree(tmp_path):
    import psutil

    sub = tmp_path / "hung.py"
    sub.write_text(HUNG)
    started = time.monotonic()
    results = grade_many({"hung": sub}, tmp_path / "out", jobs=1, timeout=6)
    assert time.monotonic() - started < 6 + 20
    r = results["hung"]
    assert r["status"] == "timeout" and r["total"] == 0 and all(v == 0 for v in r["parts"].values()), r
    data = json.loads((tmp_path / "out" / "hung.json").read_text())
    assert data["score"] == 0 and data["extra_data"]["gptlab"]["status"] == "timeout"
    time.sleep(0.5)
    left = []
    for p in psutil.process_iter(["cmdline", "cwd"]):
        if "grade-hung-" in (p.info.get("cwd") or "") or str(sub) in " ".join(p.info.get("cmdline") or []):
            left.append(p.pid)
    assert not left, f"processes left behind by a timed-out grading: {left}"


def test_discover_nbgrader_layout_and_flat_folder(tmp_path):
    nbg = tmp_path / "submitted"
    for student in ("alice", "bob"):
        (nbg / student / "gpt_lab").mkdir(parents=True)
        (nbg / student / "gpt_lab" / "gpt_lab.ipynb").write_text("{}")
    (nbg / "carol" / "gpt_lab" / ".ipynb_checkpoints").mkdir(parents=True)
    found = discover(nbg)
    assert found == {"alice": nbg / "alice" / "gpt_lab", "bob": nbg / "bob" / "gpt_lab", "carol": nbg / "carol" / "gpt_lab"}
    assert discover(nbg, assignment="gpt_lab")["alice"] == nbg / "alice" / "gpt_lab"
    flat = tmp_path / "flat"
    flat.mkdir()
    for name in ("dan.ipynb", "eve.py", "eve.ipynb", ".hidden.ipynb", "notes.txt"):
        (flat / name).write_text("{}")
    assert set(discover(flat)) == {"dan", "eve.py", "eve.ipynb", "notes"}


def test_part_scores_are_exact_fractions_rounded_once():
    # 3 checks of feedforward (0.75): 2 passed is 0.5 exactly; per-check scores rounded to 0.25 each
    # would also give 0.5, but 3 checks of gpt (0.5) with 3 passed, rounded to 0.1667 each, give
    # 0.5001: above the maximum (the example)
    tests = [{"status": s, "score": 0.25, "max_score": 0.25, "tags": ["feedforward"]} for s in ("passed", "passed", "failed")]
    tests += [{"status": "passed", "score": 0.1667, "max_score": 0.1667, "tags": ["gpt"]}] * 3
    score, maximum = part_scores({"tests": tests}, ["feedforward", "gpt", "train"])
    assert score == {"feedforward": 0.5, "gpt": 0.5, "train": 0.0}
    assert maximum == {"feedforward": 0.75, "gpt": 0.5, "train": 0.5}
    assert round(sum(t["score"] for t in tests if t["tags"] == ["gpt"]), 4) == 0.5001  # what was wrong


def test_tampering_notes_name_each_edited_or_stripped_check_cell(tmp_path):
    assert tampering.notes(REFERENCE) == [] and tampering.notes(ASSIGNMENT) == []
    import nbformat

    path = tmp_path / "t.ipynb"
    nbformat.write(klass_bank.tampered(), path)
    assert tampering.notes(path) == ["locked cell check_head: source edited",
                                     "locked cell check_gpt: its nbgrader metadata stripped"]
    nb = nbformat.read(ASSIGNMENT, as_version=4)
    (cell,) = [c for c in nb.cells if (c.metadata.get("nbgrader") or {}).get("grade_id") == "check_train"]
    cell.metadata["nbgrader"]["points"] = 50
    nb.cells = [c for c in nb.cells if (c.metadata.get("nbgrader") or {}).get("grade_id") != "check_quiz"]
    nbformat.write(nb, path)
    assert tampering.notes(path) == ["locked cell check_train: points changed from 0.5 to 50",
                                     "locked cell check_quiz: deleted or its metadata changed"]
    (tmp_path / "m.py").write_text("x = 1\n")
    assert tampering.notes(tmp_path / "m.py") == [] and tampering.notes(tmp_path / "nothing") == []


def test_grader_version_tracks_the_reference(tmp_path):
    other = tmp_path / "ref.ipynb"
    shutil.copy(REFERENCE, other)
    assert grade_class.grader_version(other) == grade_class.grader_version(REFERENCE)
    other.write_text(other.read_text() + "\n")
    assert grade_class.grader_version(other) != grade_class.grader_version(REFERENCE)
