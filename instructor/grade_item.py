"""Grade item i of a manifest into RESULTS_DIR/<id>.json: the stateless entry point every cluster task runs.

    python -m instructor.grade_item MANIFEST INDEX [INDEX ...] --out RESULTS_DIR
                                    [--root DIR] [--reference PATH] [--timeout S] [--force]
    python -m instructor.grade_item MANIFEST --task T [--per-task K] [--items SPEC|@FILE] --out RESULTS_DIR ...

The second form is for arrays: task T grades the T-th slice of K items of the selection (``--items``, ranges
such as ``0-9,12``; default every item), so an array of dense task numbers 0..ceil(M/K)-1 covers any M items:
a resubmission of scattered missing items, or 20,000 items under a cluster's MaxArraySize.

Runs in one Slurm array task, one Kubernetes pod, or a shell loop; it keeps no state but the results folder:

* The grading is ``grade_class.grade_one`` (a sandboxed ``pytest autograder`` run, killed with its whole tree
  past ``--timeout``): the same grade as ``grade_class`` for the same submission, reference and rubric.
* Idempotent: the file carries a key (hash of the submission's content and of the grader: its code, rubric
  and reference). When ``<id>.json`` is there with the current key, the item is skipped; a changed submission
  or grader regrades it. The file holds no time, host or temporary path, so the same submission under the same
  grader gives the same file.
* Safe when two tasks grade the same item at once (a requeued task still running, a resubmission): each grades
  in a private folder and moves its file into place with ``os.replace``, so a reader sees one whole file or
  none, never a mix. A task killed midway (``scancel``, preemption, a node lost) leaves no ``<id>.json``: the
  item counts as missing and a resubmission grades it.
* Each run also leaves ``RESULTS_DIR/.runs/<id>.json`` (seconds, peak memory of the grading processes, host,
  Slurm / Kubernetes task): the figures of docs/cluster.md, kept apart so that the result stays reproducible.

Exit status: 0 when every item given has an up-to-date result (graded now or before, whatever its score),
2 for a manifest or index that cannot be used, 1 when the grading itself could not be run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

from autograder.engine.report import GRADED, write_json, write_text_atomic
from instructor import class_summary
from instructor.grade_class import grade_one, grader_version, rubric_parts, submission_hash
from instructor.grade_manifest import Item, ManifestError, item_key, load, parse_spec, task_items
from instructor.text import plain

RESULT_FORMAT = "gpt-lab result"
RUNS_DIR = ".runs"


def result_path(results_dir: Path, student: str) -> Path:
    return Path(results_dir) / f"{student}.json"


def read_result(path: Path) -> dict | None:
    """A result file's content, or None when it is absent or not one of ours (a torn or foreign file)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == RESULT_FORMAT else None


class _PeakMemory:
    """Peak resident memory of this process and all its descendants together, sampled every 0.2 s.

    Summed RSS counts shared pages (torch's libraries) once per process, so it overstates what the kernel
    charges a cgroup: an upper bound, which is what a memory request needs. Sampling can miss a peak
    shorter than 0.2 s; the grader's worker holds its memory for seconds, so the figure is not far off.
    """

    def __init__(self):
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        try:
            import psutil
        except ImportError:
            return
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for p in [me, *me.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            self._stop.wait(0.2)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def _task() -> dict:
    env = os.environ
    info = {"host": socket.gethostname()}
    if env.get("SLURM_JOB_ID"):
        info["slurm"] = {k: env.get(f"SLURM_{k.upper()}") for k in ("job_id", "array_job_id", "array_task_id")}
    if env.get("JOB_COMPLETION_INDEX"):
        info["kubernetes_index"] = env["JOB_COMPLETION_INDEX"]
    return info


def grade(item: Item, results_dir: Path, reference: Path | None, timeout: float = 300.0,
          force: bool = False, parts: list[str] | None = None, grader: str | None = None) -> tuple[str, dict]:
    """Grade one item unless its result is up to date; return ("graded" | "skipped", the result)."""
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    grader = grader or grader_version(reference)
    submission = submission_hash(item.path)
    key = item_key(submission, grader)
    target = result_path(results_dir, item.id)
    old = read_result(target)
    if not force and old is not None and old.get("key") == key:
        return "skipped", old

    parts = parts or rubric_parts()
    work = Path(tempfile.mkdtemp(dir=results_dir, prefix=f".work-{item.id}-"))
    started = time.monotonic()
    try:
        with _PeakMemory() as memory:
            row = grade_one(item.id, item.path, work, reference, timeout, parts)
        data = json.loads((work / f"{item.id}.json").read_text())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    seconds = time.monotonic() - started
    result = {
        "format": RESULT_FORMAT,
        "id": item.id,
        "key": key,
        "submission": submission,
        "grader": grader,
        "status": row["status"],
        "cause": row.get("cause", ""),
        "problem": row.get("problem", ""),
        "parts": row["parts"],
        "max": row["max"],
        "total": row["total"],
        "message": row["message"],
        "results": data,  # the grader's Gradescope results.json, as grade_class writes it
    }
    write_json(target, result, indent=1, sort_keys=True, end="\n")
    runs = results_dir / RUNS_DIR
    runs.mkdir(exist_ok=True)
    write_text_atomic(runs / f"{item.id}.json", json.dumps({
        "id": item.id, "status": row["status"], "seconds": round(seconds, 3),
        "peak_rss_mb": round(memory.peak / 2**20, 1), "finished": time.time(), **_task()}) + "\n")
    return "graded", result


_WHAT = {"graded": "ran", "skipped": "skipped (up to date)"}


def task_line(item: Item, what: str, result: dict) -> str:
    """The task log's line for one item: what happened to it, from its verdict (never its messages)."""
    status = result.get("status")
    verdict = ("graded" if status in GRADED else "NOT graded") + f" ({status}"
    verdict += f", {result['cause']})" if result.get("cause") else ")"
    line = f"item {item.index} {item.id}: {_WHAT.get(what, what)}; {verdict}"
    if status in GRADED:
        line += f" {result['total']:g} points"
    problem = result.get("problem") or (result.get("message") if status != "ok" else "")
    return line + (f": {class_summary.one_line(problem)}" if problem else "")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m instructor.grade_item", description=__doc__.split("\n\n")[0])
    ap.add_argument("manifest", help="the class's manifest (JSON from `python -m instructor.cluster manifest`, or CSV)")
    ap.add_argument("index", nargs="*", type=int, help="item number(s), from 0")
    ap.add_argument("--task", type=int, default=None, help="array task number (SLURM_ARRAY_TASK_ID, "
                                                           "JOB_COMPLETION_INDEX): grade its slice of --items")
    ap.add_argument("--per-task", type=int, default=1, help="items per task (with --task)")
    ap.add_argument("--items", default=None, help="with --task: the items the array covers, as ranges (0-9,12) "
                                                  "or @FILE holding them; default all")
    ap.add_argument("--out", required=True, help="the results folder: <id>.json per item")
    ap.add_argument("--root", default=None, help="where the submissions folder is mounted here, if not where the "
                                                 "manifest says")
    ap.add_argument("--reference", default=None, help="reference solution (default: the manifest's, else "
                                                      "solutions/gpt_lab.ipynb)")
    ap.add_argument("--timeout", type=float, default=300.0, help="wall-clock seconds per submission")
    ap.add_argument("--force", action="store_true", help="grade even when an up-to-date result is there")
    args = ap.parse_args(argv)
    try:
        manifest = load(args.manifest, root=args.root)
        if (args.task is None) == (not args.index):
            raise ManifestError("give either item numbers or --task")
        if args.task is not None:
            selection = parse_spec(args.items) if args.items is not None else list(range(len(manifest)))
            indices = task_items(args.task, args.per_task, selection)
        else:
            indices = args.index
        items = [manifest.item(i) for i in indices]
    except ManifestError as exc:
        print(f"grade_item: {exc}", file=sys.stderr)
        return 2
    reference = Path(args.reference) if args.reference else manifest.reference
    grader = grader_version(reference)
    parts = rubric_parts()
    rc = 0
    if not items:
        print(f"task {args.task}: no item in its slice (the selection has fewer items): nothing to do", flush=True)
    for item in items:
        try:
            what, result = grade(item, Path(args.out), reference, args.timeout, args.force, parts, grader)
        except Exception as exc:  # noqa: BLE001 - the next item still runs; this one stays missing
            print(f"item {item.index} {item.id}: could not be graded: {type(exc).__name__}: {exc}", flush=True)
            rc = 1
            continue
        print(plain(task_line(item, what, result)), flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
