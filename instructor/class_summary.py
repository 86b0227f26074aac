"""The class summary: which submissions could not be graded, or were graded but need a look, and
why, in one line each. Runs in the grading process (or anywhere): plain functions over results
JSON data, never over student code.

Input is what every grading path leaves behind: one Gradescope-style results JSON per student, as a
folder (``<student>.json``, the layout of ``grade_class``'s output) or a dict {student: data}.
Every results file carries its verdict as data, ``extra_data.gptlab`` (status, cause code, one-line
problem: ``autograder.engine.report``); the status is read from there and nowhere else (never from
the messages, which are translated and partly the student's). A file without a verdict is ``error``.

Statuses, the same in the summary and in every CSV's ``status`` column:

* ``ok``: graded; its score is its score (0 points included: a blank notebook is graded, 0).
* ``hung``: graded, but some of its code ran past its time limit (what did not run counts 0): a human
  may want to look.
* ``tampered``: graded, and a locked cell was edited / deleted / re-pointed: the score stands
  (the grader runs its own checks), a human should look.
* ``error``: could not be graded (not a notebook, not valid JSON, the grader could not start or failed):
  0 is not a grade.
* ``timeout``: grading did not finish within the limit: 0 is not a grade.
* ``missing``: no submission was found for this student.
"""

from __future__ import annotations

import json
from pathlib import Path

from autograder.engine import report
from instructor.text import plain

STATUSES = report.STATUSES
NOT_GRADED = report.NOT_GRADED
NEEDS_A_LOOK = ("hung", "tampered")  # graded, but a human should look
SUMMARY_NAME = "summary.txt"
_NOT_A_STUDENT = {"results", "summary"}  # results folders may hold other JSON files


def one_line(text: str, limit: int = 200) -> str:
    """The first non-empty line of text, control characters removed, cut to ``limit`` characters."""
    line = next((s.strip() for s in plain(str(text)).splitlines() if s.strip()), "")
    return line if len(line) <= limit else line[: limit - 3] + "..."


def classify(data: dict) -> tuple[str, str]:
    """(status, problem) of one results JSON, from its verdict (``extra_data.gptlab``); problem is ''
    for a plain ``ok``. Without a verdict the file is not a result this grader wrote: ``error``."""
    meta = report.verdict_of(data)
    if meta is None:
        return "error", "the results file carries no verdict (extra_data.gptlab): grade it again"
    return meta["status"], one_line(meta.get("problem", ""))


def cause(data: dict) -> str:
    """The verdict's cause code ('' when none)."""
    meta = report.verdict_of(data)
    return meta["cause"] if meta else "malformed_results"


def load_folder(folder: str | Path) -> dict[str, dict]:
    """{student: results JSON} from a folder of ``<student>.json`` files. A file that is not valid
    JSON is kept as a stand-in saying so (it must not vanish from the class)."""
    found = {}
    for path in sorted(Path(folder).glob("*.json")):
        if path.name.startswith(".") or path.stem in _NOT_A_STUDENT:
            continue
        try:
            found[path.stem] = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            found[path.stem] = stand_in("error", f"results file {path.name} unreadable: {exc}")
    return found


def add_missing(results: dict[str, dict], roster) -> dict[str, dict]:
    """results plus a ``missing`` stand-in for each roster student without one."""
    out = dict(results)
    for student in roster or ():
        if student not in out:
            out[student] = missing_stand_in("no submission found for this student")
    return out


def stand_in(status: str, problem: str, output: str | None = None, code: str = "") -> dict:
    """The record of a submission that has no grade (``missing``, ``error``, ``timeout``): no tests, so
    every score cell of the exports stays empty (never a blank-looking 0), and the reason. The one place
    such a record is made (grade_class, the class summary, the cluster's merge)."""
    data = {"score": 0, "tests": [], "output": problem if output is None else output}
    return report.set_verdict(data, status, code or default_cause(status), problem)


_DEFAULT_CAUSE = {"ok": "", "hung": "cell_timeout", "tampered": "locked_cells_changed", "error": "no_results",
                  "timeout": "grading_timeout", "missing": "no_submission"}


def default_cause(status: str) -> str:
    """The cause code of a status when nothing more precise is known."""
    return _DEFAULT_CAUSE.get(status, "malformed_results")


def missing_stand_in(reason: str) -> dict:
    return stand_in("missing", reason, code="no_submission")


def problems(results: dict[str, dict]) -> list[tuple[str, str, str]]:
    """[(student, status, problem)] for every submission that is not a plain ``ok``, worst first
    (not graded before tampered), then by student."""
    order = {s: i for i, s in enumerate(("error", "timeout", "missing", "hung", "tampered"))}
    rows = []
    for student, data in results.items():
        status, problem = classify(data)
        if status != "ok":
            rows.append((student, status, problem))
    return sorted(rows, key=lambda r: (order[r[1]], r[0]))


def counts(results: dict[str, dict]) -> dict[str, int]:
    tally = {s: 0 for s in STATUSES}
    for data in results.values():
        tally[classify(data)[0]] += 1
    return tally


def format_summary(results: dict[str, dict]) -> str:
    """The text shown at the end of a class run (and written to summary.txt)."""
    tally = counts(results)
    graded = sum(tally[s] for s in report.GRADED)
    lines = [f"class summary: {len(results)} students, {graded} graded, "
             f"{sum(tally[s] for s in NOT_GRADED)} NOT graded "
             f"({', '.join(f'{tally[s]} {s}' for s in NOT_GRADED)}), {tally['tampered']} tampered, "
             f"{tally['hung']} hung"]
    rows = problems(results)
    if rows:
        width = max(len(r[0]) for r in rows)
        for student, status, problem in rows:
            verdict = "graded, needs a look" if status in NEEDS_A_LOOK else "NOT graded (0 is not a grade)"
            lines.append(f"  {plain(student).ljust(width)}  {status:8s}  {verdict}: {problem}")
    else:
        lines.append("  every submission was graded; nothing to look at")
    return "\n".join(lines)


def write_summary(results: dict[str, dict], out_dir: str | Path) -> Path:
    path = Path(out_dir) / SUMMARY_NAME
    path.write_text(format_summary(results) + "\n")
    return path


def main(argv=None) -> int:
    """``python -m instructor.class_summary RESULTS_DIR [--roster FILE]``: print (and write) the
    summary of a folder of results JSON (grade_class's output, a cluster run's merged folder);
    exit status 1 when a submission could not be graded."""
    import argparse

    from instructor.grade_class import read_roster_ids

    ap = argparse.ArgumentParser(prog="python -m instructor.class_summary", description=main.__doc__.split("\n")[0])
    ap.add_argument("results", help="a folder of <student>.json results")
    ap.add_argument("--roster", default=None, help="the class list: a student without results is listed missing")
    args = ap.parse_args(argv)
    results = add_missing(load_folder(args.results), read_roster_ids(args.roster) if args.roster else ())
    print(format_summary(results))
    write_summary(results, args.results)
    return 1 if any(status in NOT_GRADED for _, status, _ in problems(results)) else 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
