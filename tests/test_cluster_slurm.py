"""A class graded through a real Slurm job array (the single-node cluster of .ci/start_slurm.sh): submit, cancel
one task midway, see the merge name it missing, resubmit only it, merge, and compare with grade_class."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import time
from pathlib import Path

import nbformat
import pytest

from instructor.grade_class import discover, grade_many
from instructor.grade_manifest import build
from instructor.slurm_job import submit, write_scripts
from tests.bank.mutants import ALL_MUTANTS
from tests.conftest import ASSIGNMENT, REFERENCE, write_edit

pytestmark = pytest.mark.slurm

MUTANT = next(m for m in ALL_MUTANTS if m.id == "head_no_scale")
# a loaded 2-core machine grades one submission in 10 to 60 s: generous bounds, only to end a stuck run
WAIT_S = 1200


def _cluster_or_skip():
    if shutil.which("sbatch") is None:
        pytest.skip("sbatch not found: install Slurm (apt-get install slurm-wlm munge) and run .ci/start_slurm.sh")
    proc = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=30)
    if proc.returncode != 0 or not proc.stdout.strip():
        pytest.skip(f"sbatch is here but no Slurm cluster answers ({proc.stderr.strip()[:200]}): "
                    "run .ci/start_slurm.sh")


def _squeue(job: str) -> dict[str, str]:
    """Job or array task id -> state, for the tasks of ``job`` still queued or running."""
    proc = subprocess.run(["squeue", "-h", "-r", "-j", job, "-o", "%i %T"], capture_output=True, text=True,
                          timeout=30)
    return dict(line.split() for line in proc.stdout.splitlines() if line.strip())


def _wait_gone(job: str, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while _squeue(job):
        assert time.monotonic() < deadline, f"{what} (job {job}) still queued after {WAIT_S} s: {_squeue(job)}"
        time.sleep(1)


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_slurm_array_cancel_resubmit_merge_matches_grade_class(tmp_path):
    import psutil

    _cluster_or_skip()
    subs = tmp_path / "submitted"
    for name in ("reference", "stub", "mutant", "broken"):
        (subs / name).mkdir(parents=True)
    shutil.copy(REFERENCE, subs / "reference" / "gpt_lab.ipynb")
    shutil.copy(ASSIGNMENT, subs / "stub" / "gpt_lab.ipynb")
    shutil.copy(write_edit(MUTANT, tmp_path / "edits"), subs / "mutant" / "gpt_lab.ipynb")
    broken = nbformat.read(REFERENCE, as_version=4)  # one cell with a syntax error; the rest still loads
    (cell,) = [c for c in broken.cells if (c.metadata.get("nbgrader") or {}).get("grade_id") == "feedforward_code"]
    cell.source = cell.source.replace("def forward(", "def forward((", 1)
    nbformat.write(broken, subs / "broken" / "gpt_lab.ipynb")
    # a snapshot of the reference: the grader version (the results' key) must not change under the test
    reference = Path(shutil.copy(REFERENCE, tmp_path / "reference.ipynb"))

    manifest = build(subs, tmp_path / "manifest.json", reference=reference)
    assert [it.id for it in manifest.items] == ["broken", "mutant", "reference", "stub"]
    victim = manifest.items[2]  # the reference: the longest grading, so "midway" is easy to hit
    results, grades, jobdir = tmp_path / "results", tmp_path / "grades", tmp_path / "job"
    write_scripts(manifest.path, results, jobdir, grades, parallel=2, timeout=300, job_name="gptlab-test")

    array, merge_job = submit(jobdir)
    assert array != "-"
    task = f"{array}_{victim.index}"
    deadline = time.monotonic() + WAIT_S
    while _squeue(array).get(task) != "RUNNING":
        assert task in _squeue(array), f"task {task} ended before it could be cancelled"
        assert time.monotonic() < deadline, _squeue(array)
        time.sleep(0.5)
    time.sleep(3)  # inside the grading: pytest and the worker started
    assert not (results / f"{victim.id}.json").exists()
    subprocess.run(["scancel", task], check=True, timeout=30)
    _wait_gone(array, "the grading array")
    _wait_gone(merge_job, "the merge")

    # the cancelled task left no result, no temporary file, no process
    assert not (results / f"{victim.id}.json").exists()
    assert sorted(p.name for p in results.glob("*.json")) == ["broken.json", "mutant.json", "stub.json"]
    time.sleep(1)
    left = [p.pid for p in psutil.process_iter(["cmdline"])
            if str(victim.path) in " ".join(p.info.get("cmdline") or [])]
    assert not left, f"processes of the cancelled task still running: {left}"
    merge_log = (jobdir / "logs" / f"merge-{merge_job}.out").read_text()
    assert f"missing 2 {victim.id}: no result" in merge_log and "3 of 4 items graded" in merge_log, merge_log
    assert [r["id"] for r in _rows(grades / "missing.csv")] == [victim.id]

    # the resubmission grades only the missing item, then merges everything
    array2, merge2 = submit(jobdir)
    items_files = sorted(jobdir.glob("items-*.txt"), key=lambda p: p.stat().st_mtime)
    assert items_files[-1].read_text().strip() == str(victim.index)
    _wait_gone(array2, "the resubmitted array")
    _wait_gone(merge2, "the second merge")
    merge_log = (jobdir / "logs" / f"merge-{merge2}.out").read_text()
    assert "4 of 4 items graded, 0 failed, 0 missing" in merge_log, merge_log
    assert not (grades / "missing.csv").exists()
    runs = json.loads((results / ".runs" / f"{victim.id}.json").read_text())
    assert runs["slurm"]["array_job_id"] == array2, runs

    # the same class through grade_class: the same grades.csv, the same per-student results
    local = tmp_path / "local"
    grade_many(discover(subs), local, jobs=2, reference=reference)
    assert (grades / "grades.csv").read_text() == (local / "grades.csv").read_text()
    for it in manifest.items:
        assert json.loads((grades / f"{it.id}.json").read_text()) == json.loads((local / f"{it.id}.json").read_text())
    rows = {r["student"]: r for r in _rows(grades / "grades.csv")}
    # and the grades tell the kinds apart (a merge of empty results would also be "identical")
    assert float(rows["reference"]["total"]) > float(rows["mutant"]["total"]) > float(rows["broken"]["total"]) > 0
    assert float(rows["mutant"]["head"]) < float(rows["reference"]["head"])
    # the untouched stubs earn only the given MultiHeadAttention's points
    assert float(rows["stub"]["total"]) == float(rows["stub"]["multihead"]) > 0
