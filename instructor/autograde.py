"""``nbgrader autograde`` for a whole class, in parallel (runs in the instructor's process):

    cd COURSE && python -m instructor.autograde gpt_lab [--jobs N] [--force] [--student ID ...] [-- NBGRADER_ARGS...]

nbgrader autogrades one notebook after another. This command grades every submitted notebook with
the isolated grader, ``--jobs`` at a time (``instructor.grade_class.grade_many``), into the course's
results folder, while ``nbgrader autograde`` runs beside it: its ``GradeInSandbox`` preprocessor waits
for each result there instead of grading again. It is the same grading and the same results
folder as a plain ``nbgrader autograde``: only the order of the work differs.

A rerun regrades exactly what changed, in the sandbox and in nbgrader's gradebook: a student whose
submitted file changed (a resubmission, a late one), whose result was made by another grader or
reference (a rubric or grader change), or who has no autograded notebook yet. nbgrader alone would
skip a student it graded before ("Skipping existing assignment") and keep the old score, so those
students are passed to it with ``--force`` and everyone else is excluded. ``--student ID`` (or
``-- --student ID``, nbgrader's own option) regrades only that student, whatever changed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import nbformat

from instructor.nbgrader_plugins import GRADER_MARKER, PREGRADING_ENV, results_dir
from instructor.text import bounded, markdown, plain


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
    from autograder.engine.load import SubmissionError, locate_submission

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
        for grade in submission.grades:  # 0 is not a grade here: each waits for a human, the notebook flagged
            grade.auto_score, grade.manual_score, grade.extra_credit, grade.needs_manual_grade = 0, None, None, True
        submission.flagged = True
        gb.db.commit()
    nb = nbformat.read(course / "release" / assignment / f"{notebook_id}.ipynb", as_version=4)
    note = (f"**{GRADER_MARKER}.** This notebook could not be graded: it could not be read as a notebook "
            f"({markdown(bounded(reason, 500))}). Nothing of it was graded; ask your teacher.")
    nb.cells.insert(0, nbformat.v4.new_markdown_cell(note, id="gptlab-grader-report"))
    out = course / "autograded" / student / assignment
    out.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out / f"{notebook_id}.ipynb")


_STUDENT_OPTIONS = ("--student", "--CourseDirectory.student_id")


def split_students(nbgrader_args: list[str]) -> tuple[list[str], list[str]]:
    """nbgrader's own student options (``--student carol``, ``--student=carol``,
    ``--CourseDirectory.student_id=carol``) taken out of the arguments for nbgrader: (students, the rest).
    This command passes the students to nbgrader itself (see ``nbgrader_command``)."""
    students, rest, i = [], [], 0
    while i < len(nbgrader_args):
        arg = nbgrader_args[i]
        name, eq, value = arg.partition("=")
        if name in _STUDENT_OPTIONS and eq:
            students.append(value)
        elif arg in _STUDENT_OPTIONS and i + 1 < len(nbgrader_args):
            students.append(nbgrader_args[i + 1])
            i += 1
        else:
            rest.append(arg)
        i += 1
    return students, rest


def nbgrader_command(assignment: str, students: set[str], regrade: set[str], skip: set[str],
                     nbgrader_args: list[str]) -> list[str] | None:
    """``nbgrader autograde`` for exactly ``regrade`` among the submitted ``students`` (``skip``: kept off
    nbgrader whatever happens, the unreadable notebooks). None when there is nothing for nbgrader to do.
    ``--force`` makes nbgrader grade again a student it graded before (else it keeps the old score);
    everyone not to regrade is excluded, so nothing else is touched."""
    regrade = regrade - skip
    if not regrade:
        return None
    cmd = [sys.executable, "-m", "nbgrader", "autograde", assignment, *nbgrader_args, "--force"]
    exclude = (students - regrade) | skip
    if exclude:
        cmd.append("--CourseDirectory.student_id_exclude=" + ",".join(sorted(exclude)))
    return cmd


def to_regrade(course: Path, assignment: str, classes: dict[str, dict[str, Path]], force: bool,
               only: set[str]) -> set[str]:
    """The students whose grade must be made again: ``only`` when given; everyone with ``force``; else
    those whose sandbox result is not current for their submitted file, this grader and this reference
    (``grade_class.is_graded``), or who have no autograded notebook yet."""
    from instructor.grade_class import is_graded

    students = {s for paths in classes.values() for s in paths}
    if only:
        return students & only
    if force:
        return students
    stale = set()
    for notebook_id, paths in classes.items():
        out = results_dir(course, assignment, notebook_id)
        reference = course / "source" / assignment / f"{notebook_id}.ipynb"
        for student, path in paths.items():
            graded = (course / "autograded" / student / assignment / f"{notebook_id}.ipynb").is_file()
            if not graded or not is_graded(student, path, out, reference=reference):
                stale.add(student)
    return stale


def feedback_files(course: Path, assignment: str) -> list[str]:
    """Give every autograded submission the two files ``nbgrader release_feedback`` reads beside the
    feedback (``timestamp.txt``, ``submission_secret.txt``), where they are missing: a submission copied
    by hand into ``submitted/`` (which the docs allow) has neither, and release_feedback would stop on the
    first such student. They are written into ``autograded/`` (``generate_feedback`` copies them on), never
    into ``submitted/``: the time is the submitted notebook's modification time, and the exports' late
    penalty keeps reading nbgrader's own timestamps only. Returns the students given them."""
    import secrets
    from datetime import datetime, timezone

    given = []
    for folder in sorted((course / "autograded").glob(f"*/{assignment}")):
        student = folder.parent.name
        if not folder.is_dir() or folder.is_symlink():
            continue
        stamp, secret = folder / "timestamp.txt", folder / "submission_secret.txt"
        if stamp.exists() and secret.exists():
            continue
        if not stamp.exists():
            notebooks = [p for p in (course / "submitted" / student / assignment).glob("*.ipynb") if p.is_file()]
            when = max((p.stat().st_mtime for p in notebooks), default=folder.stat().st_mtime)
            stamp.write_text(datetime.fromtimestamp(when, timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f %Z"))
        if not secret.exists():
            secret.write_text(secrets.token_hex(64))
        given.append(student)
    return given


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    passthrough: list[str] = []
    if "--" in argv:  # split by hand: argparse refuses options after "--" behind a positional
        cut = argv.index("--")
        argv, passthrough = argv[:cut], argv[cut + 1:]
    ap = argparse.ArgumentParser(prog="python -m instructor.autograde", description=__doc__.split("\n\n")[0])
    ap.add_argument("assignment")
    ap.add_argument("--course", default=".", help="the nbgrader course folder (default: here)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="submissions graded at once")
    ap.add_argument("--timeout", type=float, default=600, help="seconds for grading one notebook")
    ap.add_argument("--force", action="store_true", help="grade every student again, even what is unchanged")
    ap.add_argument("--student", action="append", default=[], metavar="ID",
                    help="regrade only this student (repeatable), in the sandbox and in the gradebook")
    ap.add_argument("nbgrader_args", nargs="*", help="passed to `nbgrader autograde` (after --)")
    args = ap.parse_args(argv)
    named, nbgrader_args = split_students([*args.nbgrader_args, *passthrough])
    only = set(args.student) | set(named)
    from instructor.grade_class import SIMILARITY_NAME, Progress, grade_many
    from instructor.similarity import report as similarity_report

    course = Path(args.course).resolve()
    source = course / "source" / args.assignment
    classes = submitted_notebooks(course, args.assignment)
    everyone = {s for paths in classes.values() for s in paths}
    if only - everyone:
        ap.error(f"no submission under {course / 'submitted'} for: {', '.join(sorted(only - everyone))}")
    regrade = to_regrade(course, args.assignment, classes, args.force, only)
    whole = classes  # the similarity page compares the whole class, whoever is regraded
    if only:  # the sandbox grades these students only, again
        classes = {nb: kept for nb, paths in classes.items() if (kept := {s: p for s, p in paths.items() if s in only})}
    # links, special files and files that are not notebooks: nbgrader is kept off them (it would follow
    # a link, block on a FIFO, or fail and leave a blank-looking 0); recorded below with their reason
    broken = [(nb_id, s, why) for nb_id, paths in classes.items() for s, p in paths.items() if (why := unreadable(p))]
    cmd = nbgrader_command(args.assignment, everyone, regrade, {s for _, s, _ in broken}, nbgrader_args)
    print(f"{len(everyone)} students submitted; nbgrader regrades {len(regrade)}"
          + (f": {', '.join(sorted(regrade))}" if 0 < len(regrade) <= 10 else "")
          + ("" if regrade else " (nothing changed)"), flush=True)
    # nbgrader runs beside the class's grading: each notebook's GradeInSandbox waits for its result
    # (in the same order), so nbgrader's own work overlaps the grading instead of following it
    env = {**os.environ, PREGRADING_ENV: str(args.timeout + 120)}
    nbgrader = subprocess.Popen(cmd, cwd=course, env=env) if cmd else None
    rc = 0
    try:
        for notebook_id, paths in classes.items():
            out = results_dir(course, args.assignment, notebook_id)
            bar = Progress(f"grading {notebook_id}")
            done = grade_many(paths, out, jobs=args.jobs, reference=source / f"{notebook_id}.ipynb",
                              timeout=args.timeout, force=args.force or bool(only), start=bar.start,
                              progress=bar.update, reports=False)
            bar.close()
            bad = sum(r["status"] != "ok" for r in done.values())  # the verdict's status, never a message
            print(f"{notebook_id}: {len(done)} submissions graded in the sandbox, {bad} with problems", flush=True)
            pairs = similarity_report(whole[notebook_id], out / SIMILARITY_NAME)
            print(f"similarity: {sum(p.score >= 0.5 for p in pairs)} pair(s) worth a look in {out / SIMILARITY_NAME}",
                  flush=True)
        if nbgrader is not None:
            rc = nbgrader.wait()
    finally:
        if nbgrader is not None and nbgrader.poll() is None:
            nbgrader.kill()
    for notebook_id, student, why in broken:  # nbgrader was kept off these: record why
        record_unreadable(course, args.assignment, notebook_id, student, why)
        print(plain(f"{student}: {notebook_id}.ipynb is not a readable notebook ({bounded(why, 300)}): recorded as "
                    "not graded (flagged, needs a manual grade) with its reason"), flush=True)
    handmade = feedback_files(course, args.assignment)
    if handmade:
        print(f"{len(handmade)} submission(s) copied by hand: their autograded folders got the timestamp and secret "
              "that nbgrader release_feedback reads", flush=True)
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
