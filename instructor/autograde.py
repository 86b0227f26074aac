"""``nbgrader autograde`` for a whole class, in parallel (runs in the instructor's process):

    cd COURSE && python -m instructor.autograde gpt_lab [--jobs N] [--force] [-- NBGRADER_ARGS...]

nbgrader autogrades one notebook after another. This command first grades every submitted notebook
with the isolated grader, ``--jobs`` at a time (``instructor.grade_class.grade_many``), into the
course's results folder, then runs ``nbgrader autograde``, whose ``GradeInSandbox`` preprocessor
finds each result there instead of grading again. It is the same grading and the same results
folder as a plain ``nbgrader autograde``: only the order of the work differs. A rerun grades again
only what changed (the results are keyed by the submitted file and by the grader and reference).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from instructor.nbgrader_plugins import results_dir


def submitted_notebooks(course: Path, assignment: str) -> dict[str, dict[str, Path]]:
    """notebook id -> {student id -> submitted notebook} under ``submitted/<student>/<assignment>/``."""
    found: dict[str, dict[str, Path]] = {}
    for student_dir in sorted((course / "submitted").glob("*")):
        folder = student_dir / assignment
        if student_dir.name.startswith(".") or not folder.is_dir():
            continue
        for nb in sorted(folder.glob("*.ipynb")):
            found.setdefault(nb.stem, {})[student_dir.name] = nb
    return found


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m instructor.autograde", description=__doc__.split("\n\n")[0])
    ap.add_argument("assignment")
    ap.add_argument("--course", default=".", help="the nbgrader course folder (default: here)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="submissions graded at once")
    ap.add_argument("--timeout", type=float, default=600, help="seconds for grading one notebook")
    ap.add_argument("--force", action="store_true", help="grade again even what is unchanged")
    ap.add_argument("nbgrader_args", nargs="*", help="passed to `nbgrader autograde` (after --)")
    args = ap.parse_args(argv)
    from instructor.grade_class import grade_many

    course = Path(args.course).resolve()
    source = course / "source" / args.assignment
    for notebook_id, paths in submitted_notebooks(course, args.assignment).items():
        reference = source / f"{notebook_id}.ipynb"
        done = grade_many(paths, results_dir(course, args.assignment, notebook_id), jobs=args.jobs,
                          reference=reference, timeout=args.timeout, force=args.force)
        bad = {s: r for s, r in done.items() if r["status"] != "ok"}
        print(f"{notebook_id}: {len(done)} submissions graded in the sandbox, {len(bad)} with problems", flush=True)
    cmd = [sys.executable, "-m", "nbgrader", "autograde", args.assignment, *args.nbgrader_args]
    if args.force:
        cmd.append("--force")
    return subprocess.call(cmd, cwd=course)


if __name__ == "__main__":
    sys.exit(main())
