"""A class of mixed submissions graded two ways, in the same run: ``instructor.grade_class``
(its command line: parallel, sandboxed, warm) and the nbgrader path (``python -m instructor.autograde``: the same isolated
grading, in parallel, then ``nbgrader autograde`` writing the scores into the gradebook).

    python benchmarks/class_grading.py [--students 20] [--jobs 2]

The class cycles through five kinds of notebook: the reference, the untouched stubs, a Head scaled
by n_embd ** -0.5, a training loop without zero_grad, and a notebook with a syntax error in one cell.
Prints the wall time and the time per submission of each, the time of the class-level reports
(summary and CSV exports, similarity page) side by side with the grading time, the class summary,
and each kind's autograded total by both.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from instructor.course_init import init  # noqa: E402
from instructor import class_summary, exports, similarity  # noqa: E402
from instructor.grade_class import load_results  # noqa: E402

REFERENCE = ROOT / "solutions" / "gpt_lab.ipynb"
ASSIGNMENT = ROOT / "assignment" / "gpt_lab.ipynb"


def _edit(nb, grade_id: str, old: str, new: str):
    nb = copy.deepcopy(nb)
    (cell,) = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id]
    assert cell.source.count(old) == 1, f"{old!r} not found once in {grade_id}"
    cell.source = cell.source.replace(old, new)
    return nb


def kinds() -> dict:
    ref = nbformat.read(REFERENCE, as_version=4)
    for c in ref.cells:
        if c.cell_type == "code":
            c.outputs, c.execution_count = [], None
    return {
        "reference": ref,
        "stubs": nbformat.read(ASSIGNMENT, as_version=4),
        "head-scale": _edit(ref, "head_code", "* k.shape[-1] ** -0.5", "* C ** -0.5"),
        "no-zero-grad": _edit(ref, "train_code", "optimizer.zero_grad(set_to_none=True)\n", ""),
        "syntax-error": _edit(ref, "feedforward_code", "def forward(", "def forward(("),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--students", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--rounds", type=int, default=2,
                        help="each round grades the class both ways, the order alternating (a shared machine is noisy)")
    args = parser.parse_args()
    env = {**os.environ, "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        course = init(tmp / "course", reference=REFERENCE)
        subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", "gpt_lab"], cwd=course, env=env,
                       check=True, capture_output=True)
        notebooks = kinds()
        names = list(notebooks)
        students = {f"s{i:03d}-{names[i % len(names)]}": names[i % len(names)] for i in range(args.students)}
        paths = {}
        for student, kind in students.items():
            folder = course / "submitted" / student / "gpt_lab"
            folder.mkdir(parents=True)
            nbformat.write(notebooks[kind], folder / "gpt_lab.ipynb")
            paths[student] = folder / "gpt_lab.ipynb"

        def by_grade_class():  # its command line, as an instructor runs it (the nbgrader path is one too)
            proc = subprocess.run([sys.executable, "-m", "instructor.grade_class", str(course / "submitted"),
                                   "--assignment", "gpt_lab", "--out", str(tmp / "grades"), "--jobs", str(args.jobs),
                                   "--reference", str(REFERENCE), "--force"], cwd=ROOT, env=env,
                                  capture_output=True, text=True)
            assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
            return {s: {"json": str(tmp / "grades" / f"{s}.json")} for s in paths}

        def by_nbgrader():
            proc = subprocess.run([sys.executable, "-m", "instructor.autograde", "gpt_lab", "--jobs", str(args.jobs),
                                   "--force"], cwd=course, env=env, capture_output=True, text=True)
            assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
            return proc

        ratios = []
        for r in range(args.rounds):
            times = {}
            order = [("grade_class", by_grade_class), ("nbgrader path", by_nbgrader)]
            for name, run in (order if r % 2 == 0 else order[::-1]):
                t0 = time.perf_counter()
                out = run()
                times[name] = time.perf_counter() - t0
                if name == "grade_class":
                    results, ours = out, times[name]
            ratios.append(times["nbgrader path"] / times["grade_class"])
            print(f"round {r + 1}: " + ", ".join(f"{k} {v:.1f} s ({v / len(paths):.2f} s per submission)"
                                              for k, v in times.items()) + f"; ratio {ratios[-1]:.2f}", flush=True)
        ratios.sort()
        print(f"{len(paths)} submissions, {args.jobs} jobs: ratio nbgrader path / grade_class, median of "
              f"{len(ratios)} rounds: {ratios[len(ratios) // 2] if len(ratios) % 2 else sum(ratios[len(ratios) // 2 - 1:len(ratios) // 2 + 1]) / 2:.2f}")

        t0 = time.perf_counter()
        data = load_results(results)
        exports.export_all(data, tmp / "grades")
        summary = class_summary.format_summary(data)
        reports = time.perf_counter() - t0
        t0 = time.perf_counter()
        pairs = similarity.report(paths, tmp / "grades" / "similarity.html")
        sim = time.perf_counter() - t0
        print(f"class reports: summary + CSV exports {reports:.2f} s, similarity page {sim:.2f} s "
              f"({len(pairs)} pairs, {sum(p.score >= 0.5 for p in pairs)} listed); "
              f"ratio to grading: {reports / ours:.4f}, {sim / ours:.3f}")
        print(summary)

        from nbgrader.api import Gradebook

        with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
            for kind in names:
                student = next(s for s, k in students.items() if k == kind)
                nb_score = sum(g.score for g in gb.find_submission_notebook("gpt_lab", "gpt_lab", student).grades
                               if g.cell.cell_type == "code")
                data = json.loads(Path(results[student]["json"]).read_text())
                print(f"  {kind:13s} nbgrader {nb_score:.2f}   grade_class {data['score']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
