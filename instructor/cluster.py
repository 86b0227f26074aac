"""Grade a class on a cluster: the manifest, the executors' job files, the merge (instructor's command line).

    python -m instructor.cluster manifest SUBMITTED_DIR --out manifest.json [--assignment NAME] [--reference P]
    python -m instructor.cluster slurm MANIFEST RESULTS_DIR --jobdir DIR --grades GRADES_DIR [--submit] ...
    python -m instructor.cluster resubmit DIR            # the missing items only, then the merge
    python -m instructor.cluster kubernetes MANIFEST RESULTS_DIR --image IMG --claim PVC --out job.yaml ...
    python -m instructor.cluster missing MANIFEST RESULTS_DIR [--per-task K --write FILE]
    python -m instructor.cluster merge MANIFEST RESULTS_DIR --out GRADES_DIR

Every executor runs the same task, ``python -m instructor.grade_item`` (one item, or a slice of items, into
RESULTS_DIR/<id>.json); the local pool is ``python -m instructor.grade_class``. The walkthrough for 20,000
submissions is docs/cluster.md.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from instructor.grade_manifest import ManifestError, build, format_spec, load


def _manifest(args):
    m = build(args.submissions, args.out, assignment=args.assignment, reference=args.reference)
    print(f"{len(m)} submissions in {m.root}: {m.path}")
    return 0


def _missing(args):
    from instructor.merge_results import collect

    collected = collect(load(args.manifest, root=args.root), args.results, args.reference)
    indices = collected.missing_indices()
    spec = format_spec(indices)
    if args.write:
        Path(args.write).write_text(spec + "\n")
        print(math.ceil(len(indices) / args.per_task))  # the number of array tasks
    else:
        print(spec)
    print(f"{len(indices)} of {len(collected.manifest)} items without an up-to-date result", file=sys.stderr)
    return 0


def _merge(args):
    from instructor.merge_results import MISSING_NAME, merge, report

    collected, csv_path = merge(load(args.manifest, root=args.root), args.results, args.out, args.reference)
    print(report(collected))
    print(f"grades: {csv_path}" + (f"; missing items: {Path(args.out) / MISSING_NAME}" if collected.missing else ""))
    from instructor.class_summary import SUMMARY_NAME

    print((Path(args.out) / SUMMARY_NAME).read_text())
    return 1 if collected.missing else 0


def _slurm(args):
    from instructor.slurm_job import submit, write_scripts

    paths = write_scripts(args.manifest, args.results, args.jobdir, args.grades, parallel=args.parallel,
                          per_task=args.per_task, minutes=args.time, mem=args.mem, timeout=args.timeout,
                          partition=args.partition, apptainer=args.apptainer, reference=args.reference)
    print("\n".join(str(p) for p in paths.values()))
    if args.submit:
        array, merge_job = submit(args.jobdir)
        print(f"array job {array}, merge job {merge_job}")
    return 0


def _resubmit(args):
    from instructor.slurm_job import submit

    array, merge_job = submit(args.jobdir)
    print(f"array job {array}, merge job {merge_job}")
    return 0


def _kubernetes(args):
    from instructor.kubernetes_job import job_documents, write_manifest
    from instructor.merge_results import collect

    m = load(args.manifest)
    items = collect(m, args.results, args.reference).missing_indices()
    docs = job_documents(m.path, args.results, items, image=args.image, claim=args.claim, mount=args.mount,
                         class_folder=args.class_folder, parallel=args.parallel, per_task=args.per_task,
                         mem=args.mem, timeout=args.timeout)
    path = write_manifest(args.out, docs)
    print(f"{path}: {docs[0]['spec']['completions']} indexed task(s) over {len(items)} item(s), then the merge job")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m instructor.cluster", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("manifest", help="list a submissions folder: item i -> student id, path")
    p.add_argument("submissions")
    p.add_argument("--out", required=True)
    p.add_argument("--assignment", default=None, help="nbgrader layout: the assignment folder to grade")
    p.add_argument("--reference", default=None, help="reference solution every task and the merge use")
    p.set_defaults(run=_manifest)

    def common(p, out=True):
        p.add_argument("manifest")
        p.add_argument("results", help="the results folder (<id>.json per item)")
        p.add_argument("--reference", default=None, help="reference solution (default: the manifest's)")

    p = sub.add_parser("missing", help="the items without an up-to-date result")
    common(p)
    p.add_argument("--root", default=None, help="where the submissions folder is, if not where the manifest says")
    p.add_argument("--per-task", type=int, default=1)
    p.add_argument("--write", default=None, help="write the item list to this file and print the number of tasks")
    p.set_defaults(run=_missing)

    p = sub.add_parser("merge", help="grades.csv from the results folder; exit 1 when items are missing")
    common(p)
    p.add_argument("--out", required=True, help="grades folder")
    p.add_argument("--root", default=None, help="where the submissions folder is, if not where the manifest says")
    p.set_defaults(run=_merge)

    def sizes(p):
        p.add_argument("--parallel", type=int, default=50, help="tasks running at once")
        p.add_argument("--per-task", type=int, default=1, help="items graded by one task")
        p.add_argument("--mem", default="2G", help="memory per task")
        p.add_argument("--timeout", type=float, default=300.0, help="grading time-out per submission, seconds")

    p = sub.add_parser("slurm", help="write (and --submit) the Slurm array, merge and submit scripts")
    common(p)
    sizes(p)
    p.add_argument("--jobdir", required=True, help="where the scripts, item lists and logs go")
    p.add_argument("--grades", required=True, help="where the merge writes grades.csv")
    p.add_argument("--time", type=int, default=None, help="minutes per task (default from --timeout, --per-task)")
    p.add_argument("--partition", default=None)
    p.add_argument("--apptainer", default=None, help="run the tasks in this Apptainer image (cluster/gptlab.def)")
    p.add_argument("--submit", action="store_true", help="submit at once (DIR/submit.sh)")
    p.set_defaults(run=_slurm)

    p = sub.add_parser("resubmit", help="submit the items without an up-to-date result again, then the merge")
    p.add_argument("jobdir")
    p.set_defaults(run=_resubmit)

    p = sub.add_parser("kubernetes", help="write the Indexed Job manifest (grading, then merge)")
    common(p)
    sizes(p)
    p.add_argument("--image", required=True, help="image built from cluster/Dockerfile")
    p.add_argument("--claim", required=True, help="PersistentVolumeClaim holding the class folder")
    p.add_argument("--mount", default="/class", help="where the pods mount it")
    p.add_argument("--class-folder", default=None, help="the folder the claim holds (default: the manifest's)")
    p.add_argument("--out", required=True, help="the YAML file to write")
    p.set_defaults(run=_kubernetes)

    args = ap.parse_args(argv)
    try:
        return args.run(args)
    except (ManifestError, ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"instructor.cluster {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
