"""One class graded by each executor, in the same run: ``grade_class`` cold (the local pool, a fresh
``python -m pytest`` per submission: ``--no-warm``), ``grade_class`` with the warm pool (``instructor.warm_pool``:
each grading process forked from a zygote that imported torch and pytest once; the zygote's start is counted)
and a Slurm job array (``instructor.cluster slurm``, on the cluster ``sinfo`` reaches: here the single node of
.ci/start_slurm.sh).

    python benchmarks/executors.py [--students 200] [--jobs 2] [--skip-slurm]

The class cycles through the five kinds of benchmarks/class_grading.py (reference, untouched stubs, a
mis-scaled Head, a training loop without zero_grad, a syntax error in one cell). Prints, per executor, the wall
time, submissions per second, seconds per submission and that figure over a bare ``import torch`` (the floor
of any grading that imports torch in a fresh process), then the per-task seconds and peak memory the array
tasks measured (docs/cluster.md), and checks that the merged grades.csv is identical across executors. Then one
grade of the reference alone, cold and from the warm pool, over a bare ``import torch``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from class_grading import kinds  # noqa: E402  the same class as the class-grading benchmark

from instructor.grade_class import close_warm_pool, discover, grade_many  # noqa: E402
from instructor.grade_manifest import build  # noqa: E402
from instructor.slurm_job import submit, write_scripts  # noqa: E402


def bare_import_torch(runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import torch"], check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def wait_gone(job: str, limit: float = 4 * 3600) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        out = subprocess.run(["squeue", "-h", "-j", job], capture_output=True, text=True).stdout
        if not out.strip():
            return
        time.sleep(1)
    raise TimeoutError(f"job {job} still queued after {limit:g} s")


def line(name: str, seconds: float, n: int, torch_s: float) -> str:
    per = seconds / n
    return (f"{name:24s} {seconds:8.1f} s  {n / seconds:6.3f} submissions/s  {per:6.2f} s per submission  "
            f"{per / torch_s:5.2f}x import torch  {load()}")


def load() -> str:
    """The machine's load average when a figure was taken: on a shared machine, figures taken under
    different loads are not comparable, and this says so."""
    return "(load average %.1f)" % os.getloadavg()[0]


def single_grades(path: Path, tmp: Path, reference: Path, rounds: int) -> int:
    """One grade of a correct submission alone (jobs=1), cold and from the warm pool (already started: its
    start is paid once per machine), each right after a bare ``import torch``, ``rounds`` times: on a shared
    machine only figures taken side by side compare. Prints each round and the medians of the ratios."""
    close_warm_pool()
    grade_many({"warmup": path}, tmp / "single-warmup", jobs=1, reference=reference, force=True, warm=True,
               reports=False)  # starts the zygote
    ratios: dict[str, list[float]] = {"cold": [], "warm pool": []}
    for r in range(rounds):
        torch_s = bare_import_torch(runs=1)
        figures = []
        for name, warm in (("cold", False), ("warm pool", True)):
            t0 = time.perf_counter()
            grade_many({"reference": path}, tmp / f"single-{r}-{warm}", jobs=1, reference=reference, force=True,
                       warm=warm, reports=False)
            seconds = time.perf_counter() - t0
            ratios[name].append(seconds / torch_s)
            figures.append(f"{name} {seconds:5.2f} s ({seconds / torch_s:4.2f}x)")
        print(f"single grade, round {r + 1}: import torch {torch_s:5.2f} s, " + ", ".join(figures) + f"  {load()}",
              flush=True)
    close_warm_pool()
    print("single grade of the reference over a bare import torch, median: "
          + ", ".join(f"{k} {statistics.median(v):.2f}x" for k, v in ratios.items()))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--students", type=int, default=200)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="local pool size and Slurm parallelism")
    ap.add_argument("--skip-slurm", action="store_true")
    ap.add_argument("--rounds", type=int, default=3, help="paired single grades (import torch, cold, warm)")
    ap.add_argument("--single-only", action="store_true", help="only the paired single grades, no class")
    args = ap.parse_args()
    slurm = not args.skip_slurm and shutil.which("sbatch") is not None
    if not args.skip_slurm and not slurm:
        print("no sbatch here: the Slurm executor is skipped (bash .ci/start_slurm.sh starts a single-node cluster)")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        notebooks, subs = kinds(), tmp / "submitted"
        names = list(notebooks)
        for i in range(args.students):
            folder = subs / f"s{i:04d}-{names[i % len(names)]}"
            folder.mkdir(parents=True)
            nbformat.write(notebooks[names[i % len(names)]], folder / "gpt_lab.ipynb")
        reference = Path(shutil.copy(ROOT / "solutions" / "gpt_lab.ipynb", tmp / "reference.ipynb"))

        torch_s = bare_import_torch()
        if args.single_only:
            return single_grades(subs / f"s0000-{names[0]}", tmp, reference, args.rounds)
        print(f"{args.students} submissions, {args.jobs} at once; bare `import torch`: {torch_s:.2f} s {load()}")
        timings = {}
        t0 = time.perf_counter()
        grade_many(discover(subs), tmp / "local", jobs=args.jobs, reference=reference, force=True, warm=False)
        timings["grade_class (local pool)"] = time.perf_counter() - t0
        print(line("grade_class (local pool)", timings["grade_class (local pool)"], args.students, torch_s), flush=True)

        close_warm_pool()  # the zygote's start (imports) is part of the warm pool's time
        t0 = time.perf_counter()
        grade_many(discover(subs), tmp / "warm", jobs=args.jobs, reference=reference, force=True, warm=True)
        timings["grade_class --warm"] = time.perf_counter() - t0
        print(line("grade_class --warm", timings["grade_class --warm"], args.students, torch_s), flush=True)
        local_csv = (tmp / "local" / "grades.csv").read_text()
        same_warm = (tmp / "warm" / "grades.csv").read_text() == local_csv
        print(f"warm pool's grades.csv identical to grade_class's: {'yes' if same_warm else 'NO'}", flush=True)

        if slurm:
            manifest = build(subs, tmp / "manifest.json", reference=reference)
            write_scripts(manifest.path, tmp / "results", tmp / "job", tmp / "slurm-grades", parallel=args.jobs,
                          job_name="gptlab-bench")
            t0 = time.perf_counter()
            array, merge_job = submit(tmp / "job")
            wait_gone(array)
            wait_gone(merge_job)
            timings["Slurm array + merge"] = time.perf_counter() - t0
            print(line("Slurm array + merge", timings["Slurm array + merge"], args.students, torch_s))
            runs = [json.loads(p.read_text()) for p in (tmp / "results" / ".runs").glob("*.json")]
            for kind in names:
                mine = [r for r in runs if r["id"].endswith("-" + kind)]
                if mine:
                    print(f"  array task, {kind:13s} {statistics.median(r['seconds'] for r in mine):6.1f} s median, "
                          f"{max(r['seconds'] for r in mine):6.1f} s max, "
                          f"peak memory {max(r['peak_rss_mb'] for r in mine):6.0f} MB (summed RSS)")
            slurm_csv = tmp / "slurm-grades" / "grades.csv"
            same = slurm_csv.exists() and slurm_csv.read_text() == local_csv
            print(f"merged grades.csv identical to grade_class's: {'yes' if same else 'NO'}")
            if not same:
                print("\n".join(p.read_text() for p in (tmp / "job" / "logs").glob("merge-*.out")))
                return 1
        if len(timings) > 1:
            base = timings["grade_class (local pool)"]
            print("throughput relative to grade_class: " + ", ".join(f"{k} {base / v:.2f}x" for k, v in timings.items()))

        single_grades(subs / f"s0000-{names[0]}", tmp, reference, args.rounds)
        if not same_warm:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
