"""Grading on a cluster without a cluster: the manifest, grade_item's idempotence and atomic writes, the merge
(missing, stale, torn, failed), the item lists of arrays, the Slurm scripts' text and the Kubernetes manifest
against its schema. The real Slurm run is tests/test_cluster_slurm.py."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from autograder.engine import report
from instructor import cluster, grade_item
from instructor.grade_manifest import (ManifestError, build, format_spec, load, parse_spec, task_items)
from instructor.merge_results import collect, merge
from tests.conftest import REFERENCE, REPO

# submissions the grader dismisses in a few seconds (nothing to load): the machinery is under test here, the
# grades themselves are compared with grade_class's in tests/test_cluster_slurm.py
BROKEN = "x = (\n"
EMPTY = "# nothing here\n"


@pytest.fixture
def fake_grading(monkeypatch):
    """grade_item's bookkeeping without the grader (seconds instead of minutes on a loaded machine): a stand-in
    for grade_class.grade_one that writes a results.json as the grader would. Real gradings: the tests above
    that call the CLI, and tests/test_cluster_slurm.py."""
    from instructor.grade_class import part_scores

    def fake(student, path, out_dir, reference, timeout, parts):
        data = report.set_verdict({"score": 0.0, "output": "", "tests": [
            {"name": "head: a check", "score": 0.0, "max_score": 1.0, "status": "failed", "tags": ["head"],
             "output": f"graded {Path(path).read_text()!r}"}]}, "ok")
        (Path(out_dir) / f"{student}.json").write_text(json.dumps(data))
        scores, maxima = part_scores(data, parts)
        return {"student": student, "status": "ok", "parts": scores, "max": maxima, "total": 0.0, "message": ""}

    monkeypatch.setattr(grade_item, "grade_one", fake)


def _class(tmp_path: Path, **files: str) -> Path:
    subs = tmp_path / "submitted"
    subs.mkdir()
    for name, text in files.items():
        (subs / name).write_text(text)
    return subs


def test_cluster_spec_round_trip_and_slices():
    assert format_spec([]) == ""
    assert format_spec([5, 0, 1, 2, 7, 8, 2]) == "0-2,5,7-8"
    for indices in ([0], [3, 4, 9], list(range(20)), [0, 2, 4, 6]):
        assert parse_spec(format_spec(indices)) == sorted(indices)
    with pytest.raises(ManifestError):
        parse_spec("3-1")
    with pytest.raises(ManifestError):
        parse_spec("a")
    selection = parse_spec("2,5-9,40")
    # dense task numbers cover every item of the selection exactly once, whatever the slice size
    for k in (1, 2, 3, 7):
        covered = [i for t in range(-(-len(selection) // k)) for i in task_items(t, k, selection)]
        assert covered == selection
    assert task_items(10, 2, selection) == []


def test_cluster_manifest_same_ids_as_grade_class(tmp_path):
    from instructor.grade_class import discover

    subs = tmp_path / "submitted"
    for student in ("bob", "alice"):
        (subs / student / "gpt_lab").mkdir(parents=True)
        shutil.copy(REFERENCE, subs / student / "gpt_lab" / "gpt_lab.ipynb")
    m = build(subs, tmp_path / "m.json")
    assert [(it.index, it.id) for it in m.items] == [(0, "alice"), (1, "bob")]
    assert {it.id: it.path for it in m.items} == {s: p.resolve() for s, p in discover(subs).items()}
    # a moved class folder: --root points the same manifest at it
    moved = Path(shutil.move(str(subs), tmp_path / "elsewhere"))
    assert load(tmp_path / "m.json", root=moved).item(1).path == moved / "bob" / "gpt_lab"
    with pytest.raises(ManifestError, match="out of range"):
        m.item(2)
    # a CSV manifest, paths relative to its folder; a duplicate id is refused
    (tmp_path / "m.csv").write_text("id,path\nbob,elsewhere/bob/gpt_lab\n")
    assert load(tmp_path / "m.csv").item(0).path == moved / "bob" / "gpt_lab"
    (tmp_path / "dup.csv").write_text("id,path\nbob,a\nbob,b\n")
    with pytest.raises(ManifestError, match="twice"):
        load(tmp_path / "dup.csv")
    # an id that cannot name a file is mapped to one that can (never a class refused for one name)
    (tmp_path / "odd.csv").write_text("id,path\n../x,a\n")
    odd = load(tmp_path / "odd.csv").item(0).id
    assert odd.startswith("x-") and "/" not in odd


@pytest.mark.e2e_paths
def test_grade_item_idempotent_skips_and_regrades_on_change(tmp_path):
    subs = _class(tmp_path, **{"a.py": BROKEN})
    m = build(subs, tmp_path / "m.json")
    out = tmp_path / "results"
    what, first = grade_item.grade(m.item(0), out, None, timeout=120)
    assert what == "graded" and first["id"] == "a" and first["total"] == 0
    assert first["results"]["tests"], first  # the grader's own results.json, one test per check
    text = (out / "a.json").read_text()
    what, again = grade_item.grade(m.item(0), out, None, timeout=120)
    assert what == "skipped" and again == first
    # same submission, same grader: the same file, byte for byte
    what, forced = grade_item.grade(m.item(0), out, None, timeout=120, force=True)
    assert what == "graded" and (out / "a.json").read_text() == text
    runs = json.loads((out / ".runs" / "a.json").read_text())
    assert runs["seconds"] > 0 and runs["peak_rss_mb"] > 50, runs  # the grader imports torch: > 50 MB
    assert not list(out.glob(".work-*")) and not list(out.glob(".*.tmp"))


def test_grade_item_regrades_a_changed_submission_or_grader(tmp_path, fake_grading, monkeypatch):
    subs = _class(tmp_path, **{"a.py": BROKEN})
    m = build(subs, tmp_path / "m.json")
    out = tmp_path / "results"
    _, first = grade_item.grade(m.item(0), out, None)
    assert grade_item.grade(m.item(0), out, None)[0] == "skipped"
    (subs / "a.py").write_text(EMPTY)
    what, changed = grade_item.grade(m.item(0), out, None)
    assert what == "graded" and changed["key"] != first["key"] and "nothing here" in json.dumps(changed)
    assert grade_item.grade(m.item(0), out, None)[0] == "skipped"
    what, _ = grade_item.grade(m.item(0), out, None, grader="another grader version")
    assert what == "graded"


@pytest.mark.e2e_paths
def test_grade_item_two_at_once_leave_one_whole_file(tmp_path):
    subs = _class(tmp_path, **{"a.py": BROKEN})
    build(subs, tmp_path / "m.json")
    cmd = [sys.executable, "-m", "instructor.grade_item", str(tmp_path / "m.json"), "0", "--out",
           str(tmp_path / "results"), "--force"]
    procs = [subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert all("graded" in o for o in outs), outs
    data = grade_item.read_result(tmp_path / "results" / "a.json")
    assert data is not None and data["id"] == "a", "two writers left a torn file"
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == [".runs", "a.json"]


@pytest.mark.e2e_paths
def test_grade_item_cli_task_slice_and_bad_input(tmp_path):
    subs = _class(tmp_path, **{"a.py": BROKEN, "b.py": BROKEN, "c.py": BROKEN})
    build(subs, tmp_path / "m.json")
    out = tmp_path / "results"
    run = lambda *a: subprocess.run([sys.executable, "-m", "instructor.grade_item", str(tmp_path / "m.json"), *a,  # noqa: E731
                                     "--out", str(out)], cwd=REPO, capture_output=True, text=True, timeout=300)
    # task 1 of slices of 1 over the items "0,2" is item 2 (c), and only it
    proc = run("--task", "1", "--items", "0,2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(p.name for p in out.glob("*.json")) == ["c.json"]
    # the same task again: skipped, nothing graded
    proc = run("--task", "1", "--items", "0,2")
    assert proc.returncode == 0 and "item 2 c: skipped" in proc.stdout, proc.stdout
    proc = run("--task", "5", "--items", "0,2")
    assert proc.returncode == 0 and "nothing to do" in proc.stdout
    proc = run("7")
    assert proc.returncode == 2 and "out of range" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "instructor.grade_item", str(tmp_path / "nope.json"), "0", "--out",
                           str(out)], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "cannot read the manifest" in proc.stderr


def test_merge_names_missing_stale_torn_and_failed(tmp_path, fake_grading):
    subs = _class(tmp_path, **{"a.py": BROKEN, "b.py": BROKEN, "c.py": BROKEN, "d.py": BROKEN})
    m = build(subs, tmp_path / "m.json")
    out = tmp_path / "results"
    for i in range(3):
        grade_item.grade(m.item(i), out, None, timeout=120)
    (subs / "b.py").write_text(EMPTY)  # b's result is now stale
    # the merge checks the keys in this process: the CLI call below sees the same submissions
    (out / "c.json").write_text('{"format": "gpt-lab result", "id": "c", ')  # torn
    # a, graded "ok" with 0 points, becomes a failed one: the grader timed out on it
    a = json.loads((out / "a.json").read_text())
    (out / "a.json").write_text(json.dumps({**a, "status": "timeout", "message": "did not finish within 1 s"}))
    collected = collect(m, out)
    assert {it.id: why.split(" ")[0] for it, why in collected.missing} == {"b": "stale", "c": "unreadable", "d": "no"}
    assert [it.id for it in collected.failed] == ["a"]
    assert collected.missing_indices() == [1, 2, 3]

    grades = tmp_path / "grades"
    proc = subprocess.run([sys.executable, "-m", "instructor.cluster", "merge", str(m.path), str(out), "--out",
                           str(grades)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    for line in ("missing 1 b: stale", "missing 2 c: unreadable", "missing 3 d: no result", "failed  0 a: timeout"):
        assert line in proc.stdout, proc.stdout
    with open(grades / "missing.csv", newline="") as f:
        assert [(r["index"], r["id"]) for r in csv.DictReader(f)] == [("1", "b"), ("2", "c"), ("3", "d")]
    with open(grades / "grades.csv", newline="") as f:
        rows = [(r["student"], r["status"]) for r in csv.DictReader(f)]
    # the max row, the failed item, and the missing ones as rows that say so (never a blank 0)
    assert rows[0][0] == "max" and rows[1:] == [("a", "timeout"), ("b", "missing"), ("c", "missing"), ("d", "missing")]
    assert "NOT graded" in proc.stdout and "no usable result from the cluster: stale" in proc.stdout

    # `missing` writes the item list an array resubmits, and the number of tasks
    proc = subprocess.run([sys.executable, "-m", "instructor.cluster", "missing", str(m.path), str(out),
                           "--per-task", "2", "--write", str(tmp_path / "todo.txt")], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "2", proc.stdout + proc.stderr
    assert (tmp_path / "todo.txt").read_text().strip() == "1-3"

    # once complete, the merge passes and missing.csv is gone
    for i in (1, 2, 3):
        grade_item.grade(m.item(i), out, None, timeout=120, force=True)
    collected, _ = merge(m, out, grades)
    assert not collected.missing and not (grades / "missing.csv").exists()
    assert sorted(p.name for p in grades.glob("*.json")) == ["a.json", "b.json", "c.json", "d.json"]


def test_slurm_scripts_array_time_memory_dependency(tmp_path):
    from instructor.slurm_job import task_minutes, write_scripts

    subs = _class(tmp_path, **{"a.py": BROKEN})
    m = build(subs, tmp_path / "m.json")
    paths = write_scripts(m.path, tmp_path / "results", tmp_path / "job", tmp_path / "grades", parallel=7,
                          per_task=20, mem="3G", timeout=240, partition="short")
    grade, merge_s, submit = (paths[n].read_text() for n in ("grade.sbatch", "merge.sbatch", "submit.sh"))
    assert "#SBATCH --mem=3G" in grade and f"#SBATCH --time={task_minutes(20, 240)}" in grade
    assert task_minutes(20, 240) == 100  # 20 items x (240 s time-out + 60 s start-up)
    assert "#SBATCH --partition=short" in grade and "#SBATCH --requeue" in grade
    assert '--task "$SLURM_ARRAY_TASK_ID" --per-task 20' in grade
    assert "--array=0-$((TASKS - 1))%7" in submit and "--dependency=afterany:$ARRAY" in submit
    assert "instructor.cluster missing" in submit and "instructor.cluster merge" in merge_s
    for p in paths.values():
        assert subprocess.run(["bash", "-n", str(p)], capture_output=True).returncode == 0, p
    app = write_scripts(m.path, tmp_path / "results", tmp_path / "job2", tmp_path / "grades",
                        apptainer="/images/gptlab.sif")["grade.sbatch"].read_text()
    assert "apptainer exec --containall --bind" in app and "/images/gptlab.sif python -m instructor.grade_item" in app


def test_kubernetes_indexed_job_valid_against_schema(tmp_path, fake_grading):
    kv = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate (the instructor extra) is not "
                                                           "installed: pip install -e '.[instructor]'")
    subs = _class(tmp_path, **{f"s{i}.py": BROKEN for i in range(5)})
    m = build(subs, tmp_path / "m.json")
    grade_item.grade(m.item(1), tmp_path / "results", None, timeout=120)
    job = tmp_path / "job.yaml"
    rc = cluster.main(["kubernetes", str(m.path), str(tmp_path / "results"), "--image", "registry.example/gptlab:1",
                       "--claim", "gptlab-class", "--out", str(job), "--parallel", "3", "--per-task", "2"])
    assert rc == 0
    docs = list(yaml.safe_load_all(job.read_text()))
    assert [d["kind"] for d in docs] == ["Job", "Job"]
    for d in docs:
        kv.validate(d, "1.37.0", strict=True)
    spec = docs[0]["spec"]
    assert spec["completionMode"] == "Indexed" and spec["completions"] == 2 and spec["parallelism"] == 2
    command = spec["template"]["spec"]["containers"][0]["command"][-1]
    # the 4 items without a result (0, 2, 3, 4), 2 per pod; paths as the pods see them
    assert '--task "$JOB_COMPLETION_INDEX" --per-task 2 --items 0,2-4' in command
    assert "/class/m.json" in command and "--root /class/submitted" in command and "--out /class/results" in command
    # the schema check can fail: a misspelt field or a wrong type is refused
    bad = json.loads(json.dumps(docs[0]))
    bad["spec"]["template"]["spec"]["containers"][0]["comand"] = ["x"]
    with pytest.raises(Exception, match="comand"):
        kv.validate(bad, "1.37.0", strict=True)
    bad = json.loads(json.dumps(docs[0]))
    bad["spec"]["completions"] = "two"
    with pytest.raises(Exception, match="two"):
        kv.validate(bad, "1.37.0", strict=True)
