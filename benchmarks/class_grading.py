"""A class of mixed submissions graded two ways, in the same run: ``instructor.grade_class``
(parallel, sandboxed) and ``nbgrader autograde`` (one notebook at a time, in the course template).

    python benchmarks/class_grading.py [--students 50] [--jobs 2]

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
from instructor.grade_class import grade_many, load_results  # noqa: E402

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
    parser.add_argument("--students", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
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

        t0 = time.perf_counter()
        results = grade_many(paths, tmp / "grades", jobs=args.jobs, reference=REFERENCE, force=True)
        ours = time.perf_counter() - t0
        print(f"grade_class ({args.jobs} jobs): {ours:.1f} s for {len(paths)} submissions, "
              f"{ours / len(paths):.2f} s per submission")
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

        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", "gpt_lab"], cwd=course, env=env,
                              capture_output=True, text=True)
        theirs = time.perf_counter() - t0
        print(f"nbgrader autograde: {theirs:.1f} s for {len(paths)} submissions, "
              f"{theirs / len(paths):.2f} s per submission (exit {proc.returncode})")
        print(f"ratio nbgrader / grade_class: {theirs / ours:.1f}")

        from nbgrader.api import Gradebook

        with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
            for kind in names:
                student = next(s for s, k in students.items() if k == kind)
                nb_score = sum(g.auto_score or 0 for g in gb.find_submission_notebook("gpt_lab", "gpt_lab", student).grades
                               if g.cell.cell_type == "code")
                data = json.loads(Path(results[student]["json"]).read_text())
                print(f"  {kind:13s} nbgrader {nb_score:.2f}   grade_class {data['score']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
