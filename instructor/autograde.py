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

import nbformat

from instructor.nbgrader_plugins import GRADER_MARKER, results_dir


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


def unreadable(path: Path) -> str:
    """Why nbgrader must not or cannot read this notebook ('' if it can): a link or special file
    (refused by the grader's one locator; nbgrader would follow it, or block on a FIFO), or a file
    that is not a notebook (nbgrader then grades nothing and writes nothing for it, and the submission
    would look like a blank one)."""
    from autograder.loader import SubmissionError, locate_submission

    try:
        locate_submission(path)
    except SubmissionError as exc:
        return str(exc)
    try:
        nbformat.read(path, as_version=4)
    except Exception as exc:  # noqa: BLE001 - whatever nbformat raises, nbgrader raises too
        return f"{type(exc).__name__}: {str(exc)[:300]}"
    return ""


def record_unreadable(course: Path, assignment: str, notebook_id: str, student: str, reason: str) -> None:
    """Give an unreadable notebook a graded 0 with its reason: every grade cell 0 and not waiting for a
    human, and an autograded notebook (the released one with a note) for the feedback."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        try:
            gb.find_submission(assignment, student)
        except MissingEntry:
            gb.update_or_create_student(student)
            gb.add_submission(assignment, student)
        submission = gb.find_submission_notebook(notebook_id, assignment, student)
        for grade in submission.grades:
            grade.auto_score, grade.manual_score, grade.extra_credit, grade.needs_manual_grade = 0, None, None, False
        gb.db.commit()
    nb = nbformat.read(course / "release" / assignment / f"{notebook_id}.ipynb", as_version=4)
    note = (f"**{GRADER_MARKER}.** This notebook could not be graded: it could not be read as a notebook "
            f"({reason}). Every autograded and written part counts 0; ask your teacher.")
    nb.cells.insert(0, nbformat.v4.new_markdown_cell(note, id="gptlab-grader-report"))
    out = course / "autograded" / student / assignment
    out.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out / f"{notebook_id}.ipynb")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m instructor.autograde", description=__doc__.split("\n\n")[0])
    ap.add_argument("assignment")
    ap.add_argument("--course", default=".", help="the nbgrader course folder (default: here)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="submissions graded at once")
    ap.add_argument("--timeout", type=float, default=600, help="seconds for grading one notebook")
    ap.add_argument("--force", action="store_true", help="grade again even what is unchanged")
    ap.add_argument("nbgrader_args", nargs="*", help="passed to `nbgrader autograde` (after --)")
    args = ap.parse_args(argv)
    from instructor.grade_class import SIMILARITY_NAME, Progress, grade_many
    from instructor.similarity import report as similarity_report

    course = Path(args.course).resolve()
    source = course / "source" / args.assignment
    broken: list[tuple[str, str, str]] = []
    for notebook_id, paths in submitted_notebooks(course, args.assignment).items():
        reference = source / f"{notebook_id}.ipynb"
        bar = Progress(f"grading {notebook_id}")
        done = grade_many(paths, results_dir(course, args.assignment, notebook_id), jobs=args.jobs,
                          reference=reference, timeout=args.timeout, force=args.force, start=bar.start,
                          progress=bar.update)
        bar.close()
        pairs = similarity_report(paths, results_dir(course, args.assignment, notebook_id) / SIMILARITY_NAME)
        print(f"similarity: {sum(p.score >= 0.5 for p in pairs)} pair(s) worth a look in "
              f"{results_dir(course, args.assignment, notebook_id) / SIMILARITY_NAME}", flush=True)
        bad = {s: r for s, r in done.items() if r["status"] != "ok"}
        print(f"{notebook_id}: {len(done)} submissions graded in the sandbox, {len(bad)} with problems", flush=True)
        broken += [(notebook_id, s, why) for s in bad if (why := unreadable(paths[s]))]
    cmd = [sys.executable, "-m", "nbgrader", "autograde", args.assignment, *args.nbgrader_args]
    if broken:  # nbgrader would fail on them (or hang on a FIFO): recorded below instead
        cmd.append("--CourseDirectory.student_id_exclude=" + ",".join(sorted({s for _, s, _ in broken})))
    if args.force:
        cmd.append("--force")
    rc = subprocess.call(cmd, cwd=course)
    for notebook_id, student, why in broken:  # nbgrader was kept off these: record why
        record_unreadable(course, args.assignment, notebook_id, student, why)
        print(f"{student}: {notebook_id}.ipynb is not a readable notebook ({why}): recorded as 0 with its reason",
              flush=True)
    # the class summary and exports of every notebook's results folder (all students, this run's and earlier)
    from instructor import class_summary, exports

    for notebook_id in submitted_notebooks(course, args.assignment):
        folder = results_dir(course, args.assignment, notebook_id)
        results = class_summary.load_folder(folder)
        exports.export_all(results, folder)
        class_summary.write_summary(results, folder)
        print(f"{notebook_id} ({folder}):\n{class_summary.format_summary(results)}", flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
