"""Slurm executor: generate the job scripts of a class (runs in the instructor's process, on a login node).

    python -m instructor.cluster slurm MANIFEST RESULTS_DIR --jobdir DIR --grades GRADES_DIR
           [--parallel P] [--per-task K] [--time MIN] [--mem SIZE] [--timeout S] [--partition NAME]
           [--apptainer IMAGE.sif] [--submit]

writes into DIR:

* ``grade.sbatch``: one array task grades K items (``instructor.grade_item --task $SLURM_ARRAY_TASK_ID``),
  with its own ``--time`` and ``--mem``, ``--requeue`` (a preempted task starts again and skips what is done);
* ``merge.sbatch``: ``instructor.cluster merge``, which names the missing and failed items and exits 1 when
  any is missing;
* ``submit.sh``: computes the items without an up-to-date result **at submission time**, writes them to
  ``DIR/items-<time>.txt``, submits ``--array=0-(T-1)%P`` over them (T = ceil(missing / K)) and the merge with
  ``--dependency=afterany:<array job>``. The same script is the resubmission after a failed, cancelled or
  preempted array: it grades only what is missing. ``python -m instructor.cluster resubmit DIR`` runs it.

Slurm is the scheduler; nothing here schedules. Array task ids are dense (0..T-1) whichever items are missing,
so a resubmission of scattered items, or 20,000 items where the cluster's MaxArraySize is 1001, fits (K items
per task).
"""

from __future__ import annotations

import math
import os
import shlex
import subprocess
import sys
from pathlib import Path

from instructor.grade_class import REPO

DEFAULT_MEM = "2G"  # measured peak of a grading (pytest + worker, summed RSS) ~0.7 GiB: docs/cluster.md
DEFAULT_TIMEOUT = 300.0


def task_minutes(per_task: int, timeout: float) -> int:
    """Per-task --time: every item may use its whole grading time-out, plus a minute each for start-up and
    hashing (a correct submission takes ~10 s; the time-out is the bound that matters)."""
    return max(5, math.ceil(per_task * (timeout + 60) / 60))


def _runner(apptainer: str | None, binds: list[Path]) -> str:
    if not apptainer:
        return shlex.quote(sys.executable)
    # --containall: no host home or /tmp inside; the class folders bound where they are on the host, so the
    # manifest's paths hold. The grader itself makes its sandbox's namespaces inside the container.
    bind = ",".join(sorted({str(b) for b in binds}))
    return f"apptainer exec --containall --bind {shlex.quote(bind)} {shlex.quote(apptainer)} python"


def write_scripts(manifest: str | os.PathLike, results_dir: str | os.PathLike, jobdir: str | os.PathLike,
                  grades_dir: str | os.PathLike, *, parallel: int = 50, per_task: int = 1,
                  minutes: int | None = None, mem: str = DEFAULT_MEM, timeout: float = DEFAULT_TIMEOUT,
                  partition: str | None = None, apptainer: str | None = None, reference: str | None = None,
                  job_name: str = "gptlab") -> dict[str, Path]:
    from instructor.grade_manifest import load

    m = load(manifest)
    manifest, results_dir = m.path, Path(results_dir).resolve()
    jobdir, grades_dir = Path(jobdir).resolve(), Path(grades_dir).resolve()
    for d in (jobdir / "logs", results_dir, grades_dir):
        d.mkdir(parents=True, exist_ok=True)
    minutes = minutes or task_minutes(per_task, timeout)
    binds = [m.root, results_dir, grades_dir, jobdir, manifest.parent]
    binds += [Path(r).resolve().parent for r in (reference, m.reference) if r]  # the reference, if not the image's
    run = _runner(apptainer, binds)
    ref = f" --reference {shlex.quote(str(Path(reference).resolve()))}" if reference else ""
    q = lambda p: shlex.quote(str(p))  # noqa: E731
    part = f"#SBATCH --partition={partition}\n" if partition else ""
    cd = "" if apptainer else f"cd {q(REPO)}\n"  # the image has the project installed; here, the checkout

    grade = f"""#!/bin/bash
#SBATCH --job-name={job_name}-grade
{part}#SBATCH --ntasks=1
#SBATCH --cpus-per-task=1
#SBATCH --mem={mem}
#SBATCH --time={minutes}
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --output={jobdir}/logs/grade-%A_%a.out
# One array task: the ${{SLURM_ARRAY_TASK_ID}}-th slice of {per_task} item(s) of the list in $1 (written by
# submit.sh). Submit with submit.sh, not directly: it sets the array and the list.
set -euo pipefail
ITEMS="${{1:?usage: sbatch --array=0-N grade.sbatch ITEMS_FILE}}"
export OMP_NUM_THREADS=1 PYTHONDONTWRITEBYTECODE=1
{cd}exec {run} -m instructor.grade_item {q(manifest)} --task "$SLURM_ARRAY_TASK_ID" --per-task {per_task} \\
    --items "@$ITEMS" --out {q(results_dir)} --timeout {timeout:g}{ref}
"""
    merge = f"""#!/bin/bash
#SBATCH --job-name={job_name}-merge
{part}#SBATCH --ntasks=1
#SBATCH --cpus-per-task=1
#SBATCH --mem=1G
#SBATCH --time=30
#SBATCH --output={jobdir}/logs/merge-%j.out
# grades.csv from the results folder; exit 1 (and the list on stdout, missing.csv) when items are missing
set -euo pipefail
{cd}exec {run} -m instructor.cluster merge {q(manifest)} {q(results_dir)} --out {q(grades_dir)}{ref}
"""
    submit = f"""#!/bin/bash
# Submit the grading of every item without an up-to-date result, then the merge after it. Run it again after a
# failed, cancelled or preempted array: it submits only what is missing. Prints: ARRAY_JOB_ID MERGE_JOB_ID
# (ARRAY_JOB_ID "-" when nothing was missing).
set -euo pipefail
{cd}ITEMS={q(jobdir)}/items-$(date +%Y%m%d-%H%M%S)-$$.txt
TASKS=$({run} -m instructor.cluster missing {q(manifest)} {q(results_dir)} --per-task {per_task} --write "$ITEMS"{ref})
DEPEND=()
ARRAY=-
if [ "$TASKS" -gt 0 ]; then
    ARRAY=$(sbatch --parsable --array=0-$((TASKS - 1))%{parallel} {q(jobdir / "grade.sbatch")} "$ITEMS")
    ARRAY=${{ARRAY%%;*}}
    DEPEND=(--dependency=afterany:$ARRAY)
    echo "submitted the grading array $ARRAY: $TASKS task(s), items $(cat "$ITEMS")" >&2
else
    echo "every item has an up-to-date result: merge only" >&2
fi
MERGE=$(sbatch --parsable ${{DEPEND[@]+"${{DEPEND[@]}}"}} {q(jobdir / "merge.sbatch")})  # bash 4.2 and set -u
MERGE=${{MERGE%%;*}}
echo "submitted the merge $MERGE (grades in {grades_dir})" >&2
echo "$ARRAY $MERGE"
"""
    paths = {}
    for name, text in (("grade.sbatch", grade), ("merge.sbatch", merge), ("submit.sh", submit)):
        p = jobdir / name
        p.write_text(text)
        p.chmod(0o755)
        paths[name] = p
    return paths


def submit(jobdir: str | os.PathLike) -> tuple[str, str]:
    """Run DIR/submit.sh: (array job id or "-", merge job id)."""
    proc = subprocess.run(["bash", str(Path(jobdir) / "submit.sh")], capture_output=True, text=True)
    sys.stderr.write(proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"submit.sh failed (exit {proc.returncode}): {proc.stderr.strip()}")
    array, merge = proc.stdout.split()[-2:]
    return array, merge
