"""instructor/grade_class.py: a mixed class folder graded in parallel, the CSV, the rerun cache,
--force, the time-out, and nbgrader's layout."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from instructor import grade_class
from instructor.grade_class import discover, grade_many, part_scores, rubric_parts
from tests.bank.mutants import ALL_MUTANTS
from tests.conftest import REFERENCE, REPO, write_edit

MUTANT = next(m for m in ALL_MUTANTS if m.id == "head_no_scale")
HUNG = "while True:\n    pass\n"
CRASH = "import os\nos._exit(1)\n"


def _cli(*args, timeout=600):
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "instructor.grade_class", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout, time.monotonic() - started


def _rows(out: Path) -> list[dict]:
    with open(out / "grades.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def klass(tmp_path_factory):
    """A flat class folder: the reference, a mutant, a hung and a crashing module, and a text file;
    graded once by the CLI with 3 jobs (no --timeout: the grader stops the hung cells itself)."""
    root = tmp_path_factory.mktemp("class")
    subs = root / "submitted"
    subs.mkdir()
    shutil.copy(REFERENCE, subs / "ref.ipynb")
    shutil.copy(write_edit(MUTANT, root / "edits"), subs / "mutant.ipynb")
    (subs / "hung.py").write_text(HUNG)
    (subs / "crash.py").write_text(CRASH)
    (subs / "notes.txt").write_text("my answers are in the notebook, sorry\n")
    out = root / "out"
    # a snapshot of the reference: the grader version (cache key) must not change under the test
    reference = Path(shutil.copy(REFERENCE, root / "reference.ipynb"))
    stdout, elapsed = _cli(subs, "--out", out, "--jobs", 3, "--reference", reference)
    return {"root": root, "subs": subs, "out": out, "stdout": stdout, "elapsed": elapsed, "reference": reference,
            "cache": json.loads((out / ".cache.json").read_text())}


def test_every_submission_gets_a_row(klass):
    rows = {r["student"]: r for r in _rows(klass["out"])}
    assert set(rows) == {"ref", "mutant", "hung", "crash", "notes"}, klass["stdout"]
    with open(klass["out"] / "grades.csv", newline="") as f:
        header = next(csv.reader(f))
    assert header == ["student", *rubric_parts(), "total", "status"]
    assert all(r["status"] in ("ok", "timeout", "error") for r in rows.values())
    for student in rows:
        assert (klass["out"] / f"{student}.json").is_file()
    ref = rows["ref"]
    assert ref["status"] == "ok" and float(ref["total"]) > 0
    assert all(float(ref[p]) > 0 for p in rubric_parts()), ref
    mutant = rows["mutant"]
    assert mutant["status"] == "ok" and float(mutant["head"]) < float(ref["head"]), mutant
    assert all(mutant[p] == ref[p] for p in rubric_parts() if p != "head"), (mutant, ref)
    for bad in ("hung", "crash", "notes"):
        assert float(rows[bad]["total"]) == 0 and all(float(rows[bad][p]) == 0 for p in rubric_parts()), rows[bad]
    assert rows["notes"]["status"] == "error", rows["notes"]  # not a notebook at all
    assert rows["crash"]["status"] == "ok", rows["crash"]  # graded: the grader reports the crash
    assert "exited with status 1" in json.loads((klass["out"] / "crash.json").read_text())["output"]


def test_hung_submission_does_not_hold_up_the_others(klass):
    results = {s: e["result"] for s, e in klass["cache"]["students"].items()}
    hung = results["hung"]
    others = [r for s, r in results.items() if s != "hung"]
    # the others were graded while the hung one ran: the batch took far less than one after another
    assert klass["elapsed"] < hung["seconds"] + sum(r["seconds"] for r in others) - 10, (klass["elapsed"], results)
    assert all(r["seconds"] < hung["seconds"] for r in results.values() if r["student"] not in ("hung", "ref", "mutant"))


def test_rerun_skips_unchanged_then_force_regrades(klass):
    out, subs = klass["out"], klass["subs"]
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("[!.]*.json")}
    csv_before = (out / "grades.csv").read_text()
    ref = ("--reference", klass["reference"])
    stdout, elapsed = _cli(subs, "--out", out, "--jobs", 3, *ref)
    assert "5 unchanged, skipped" in stdout, stdout
    assert elapsed < 15, f"a rerun of an unchanged class took {elapsed:.0f} s"
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("[!.]*.json")} == before
    assert (out / "grades.csv").read_text() == csv_before

    # a changed submission is regraded, the others are not
    (subs / "notes.txt").write_text("changed\n")
    results = grade_many(discover(subs), out, jobs=2, reference=klass["reference"])
    assert [s for s, r in results.items() if not r["cached"]] == ["notes"]

    # --force regrades unchanged ones (a small folder, same students, same out dir)
    small = klass["root"] / "small"
    small.mkdir()
    shutil.copy(subs / "notes.txt", small / "notes.txt")
    shutil.copy(subs / "crash.py", small / "crash.py")
    stdout, _ = _cli(small, "--out", out, "--jobs", 2, *ref)
    assert "2 unchanged, skipped" in stdout, stdout
    stdout, _ = _cli(small, "--out", out, "--jobs", 2, "--force", *ref)
    assert "0 unchanged, skipped" in stdout, stdout
    assert (out / "crash.json").stat().st_mtime_ns > before["crash.json"]
    assert {r["student"] for r in _rows(out)} == {"notes", "crash"}


def test_timeout_kills_the_whole_grading_tree(tmp_path):
    import psutil

    sub = tmp_path / "hung.py"
    sub.write_text(HUNG)
    started = time.monotonic()
    results = grade_many({"hung": sub}, tmp_path / "out", jobs=1, timeout=6)
    assert time.monotonic() - started < 6 + 20
    r = results["hung"]
    assert r["status"] == "timeout" and r["total"] == 0 and all(v == 0 for v in r["parts"].values()), r
    assert json.loads((tmp_path / "out" / "hung.json").read_text())["score"] == 0
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


def test_part_scores_sum_by_first_tag():
    data = {"tests": [{"score": 0.25, "max_score": 0.25, "tags": ["head"]},
                      {"score": 0, "max_score": 0.25, "tags": ["head"]},
                      {"score": 0.5, "max_score": 0.5, "tags": ["train"]}]}
    score, maximum = part_scores(data, ["head", "train", "gpt"])
    assert score == {"head": 0.25, "train": 0.5, "gpt": 0.0}
    assert maximum == {"head": 0.5, "train": 0.5, "gpt": 0.0}


def test_grader_version_tracks_the_reference(tmp_path):
    other = tmp_path / "ref.ipynb"
    shutil.copy(REFERENCE, other)
    assert grade_class.grader_version(other) == grade_class.grader_version(REFERENCE)
    other.write_text(other.read_text() + "\n")
    assert grade_class.grader_version(other) != grade_class.grader_version(REFERENCE)
