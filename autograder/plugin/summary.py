"""The grade table printed at the end of ``pytest autograder``, with the grader's notes."""

from __future__ import annotations

from autograder.checks.verdicts import cell_label
from autograder.engine import report
from autograder.engine.load import SKIPPED_CELL
from autograder.i18n import Num, tr
from autograder.plugin.grading import Grading, cause, grading_of
from autograder.plugin.results import all_earned, notes, scored_parts


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    grading = grading_of(config)
    if grading is None:
        return
    try:
        _summary(terminalreporter, grading)
    except Exception as exc:  # noqa: BLE001
        terminalreporter.write_line(f"the grade table could not be written: {cause(exc)} (results.json is)")


def shown_notes(all_notes: list) -> list:
    """The notes the summary prints: all but the routine ones (a cell the grader skipped), chosen by
    their kind, never by their text, which is in the student's language."""
    return [note for note in all_notes if getattr(note, "kind", "") != SKIPPED_CELL]


def _summary(out, grading: Grading) -> None:
    def say(line: str) -> None:  # the submission's file name and messages: text on the terminal
        out.write_line(report.printable(line))

    parts = scored_parts(grading)
    out.section(tr("gpt-lab grade"))
    say(tr("submission: {path}").format(path=grading.path))
    if grading.fatal:
        say(tr("not graded: {cause}").format(cause=grading.fatal))
    if grading.submission_error:
        say(tr("could not be read: {cause}").format(cause=grading.submission_error))
    if grading.sub is not None and grading.sub.loaded:
        bad = [c for c in grading.sub.report.cells if not c.ok and c.error_type != "NotImplementedError"]
        for c in bad[:5]:
            say(tr("note: {cell} failed while loading: {kind}: {message}")
                           .format(cell=cell_label(grading.sub, c.number), kind=c.error_type, message=c.message))
        if len(bad) > 5:
            say(tr("note: {count} more cells failed while loading").format(count=len(bad) - 5))
    for note in shown_notes(notes(grading)):
        say(tr("note: {note}").format(note=note))
    say("")
    say(report.table(parts))
    pending = sum(p.pending for p in parts)
    if pending:
        points = sum((p.pending_points() for p in parts), 0)
        if all_earned(grading, parts):  # all a student can know before grading time: say it plainly
            say(tr("every visible check passed: {score:.2f} points earned here; {count} hidden checks "
                              "worth {points:.2f} points run at grading time")
                           .format(score=Num(sum((p.score for p in parts if not p.bonus), 0)), count=pending,
                                   points=Num(points)))
        else:
            say(tr("{count} hidden checks worth {points:.2f} points run at grading time "
                              "(the scores above count them as not yet earned)").format(count=pending,
                                                                                       points=Num(points)))
