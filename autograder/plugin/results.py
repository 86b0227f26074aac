"""The end of a run: the parts' scores from the recorded outcomes, results.json (``--grade-json``),
and the exit status (0 only when every point was earned). Whatever failed before, a report is
written: a failure here, or of pytest itself, becomes a zero report naming its cause."""

from __future__ import annotations

import traceback

from autograder import parts as registry
from autograder.checks.verdicts import cell_label
from autograder.engine import report
from autograder.i18n import tr
from autograder.plugin.grading import Grading, cause, grading_of


def scored_parts(grading: Grading):
    ran = [o for o in grading.outcomes if o.status != "pending"]
    pending = [o for o in grading.outcomes if o.status == "pending"]
    parts = report.score_parts(ran, grading.rubric, grading.bonus, registry.HIDDEN.is_dir())
    by_part = {p.part: p for p in parts}
    for o in pending:  # hidden checks that need the reference: they count, and run at grading time
        if o.part in by_part:
            by_part[o.part].pending += 1
    return parts


def notes(grading: Grading) -> list[str]:
    out = list(grading.notes)
    if grading.sub is not None:
        out += grading.sub.report.notes
        for what, why in grading.sub.deaths[:5]:
            out.append(tr("the submission's process died while running {what}: {why}").format(what=what, why=why))
    return out


def _cause_of_nothing(grading: Grading) -> str:
    return (grading.internal_error or grading.fatal or
            (tr("the submission could not be read: {cause}").format(cause=grading.submission_error)
             if grading.submission_error else "")
            or tr("no check ran (see the grader's notes)"))


def verdict(grading: Grading) -> tuple[str, str, str]:
    """(status, cause, problem) of the run, from the recorded state, never from a message's text
    (``engine/report.py`` lists the codes). The problem is for the instructor, in English."""
    if grading.internal_error:
        return "error", "grader_failed", grading.internal_error
    if grading.fatal:
        return "error", "grader_could_not_start", grading.fatal
    if grading.submission_error:
        if grading.submission_missing:
            return "missing", "no_submission", grading.submission_error
        return "error", "unreadable", f"could not be read: {grading.submission_error}"
    sub = grading.sub
    if sub is None or not sub.answered:
        return ("error", "worker_did_not_start",
                "not graded: the submission's process could not be started, nothing of it ran")
    hung = [c for c in (sub.report.cells if sub.loaded else []) if c.error_type == "Timeout"]
    if hung:
        first = hung[0]
        return ("hung", "cell_timeout", f"graded; {len(hung)} cell(s) ran past their time limit, the first cell "
                f"{first.number}: {first.message}")
    stopped = [key for key, (kind, _) in sub.hung.items() if kind == "Timeout"]
    if stopped:
        return ("hung", "check_timeout",
                f"graded; the submission's code ran past its time limit in {', '.join(stopped[:3])}")
    if sub.budget_spent():
        return "hung", "time_budget_spent", "graded; the submission's time budget was spent before every check ran"
    return "ok", "", ""


def write_report(grading: Grading, config) -> list:
    """Write results.json (if asked) from what was recorded; never raises. Returns the parts."""
    path = config.getoption("grade_json")
    parts = []
    try:
        if grading.sub is not None:  # first stop the submission and all it started, then write
            grading.sub.close()
        parts = scored_parts(grading)
        if path:
            lines = [tr("{cell}: {kind}: {message}").format(cell=cell_label(grading.sub, c.number), kind=c.error_type,
                                                             message=c.message)
                     for c in (grading.sub.report.cells if grading.sub and grading.sub.loaded else []) if not c.ok]
            extra = [tr("not graded: {cause}").format(cause=grading.fatal)] if grading.fatal else []
            extra += ([tr("could not be read: {cause}").format(cause=grading.submission_error)]
                      if grading.submission_error else [])
            status, code, problem = verdict(grading)
            data = report.gradescope_json(parts, "\n".join(extra + notes(grading) + lines[:20]),
                                          not_run=tr("not run: {cause}").format(cause=_cause_of_nothing(grading)),
                                          status=status, cause=code, problem=problem)
            report.write_json(path, data)
    except BaseException as exc:  # noqa: BLE001 - the last resort: a zero report naming the cause
        if path:
            try:
                report.write_json(path, report.zero_report(f"the grader failed while reporting: {cause(exc)}",
                                                           grading.rubric or None, grading.bonus, code="grader_failed"))
            except Exception:  # noqa: BLE001 - nothing more can be done here; the wrapper writes its own
                traceback.print_exc()
        parts = []
    return parts


def pytest_internalerror(excrepr, excinfo):
    """pytest itself failed (a hook raised): the report is still written, naming the cause."""
    grading = grading_of()
    if grading is None:
        return
    grading.internal_error = f"the grader failed: {cause(excinfo.value)}"
    write_report(grading, grading.config)


def pytest_sessionfinish(session, exitstatus):
    grading = grading_of(session.config)
    if grading is None:
        return
    parts = write_report(grading, session.config)
    if exitstatus in (0, 1):
        # keep pytest's own codes for usage errors and interrupts; 0 only when every point was earned,
        # or, where the hidden checks cannot run (a student's handout), every point that can be earned here
        session.exitstatus = 0 if all_earned(grading, parts) else 1


def all_earned(grading: Grading, parts: list) -> bool:
    """Every check that ran passed, in every part with points. With the reference present the hidden
    checks ran too (nothing is pending); without it (a handout) they are pending, and a student can
    know no more than that every visible check passed: the report names the pending points."""
    ran = [o for p in parts for o in p.outcomes]
    return (bool(ran) and not grading.fatal
            and all(p.passed == len(p.outcomes) for p in parts if p.points > 0))
