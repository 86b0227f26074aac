"""Scores from check outcomes: the rubric, the end-of-run table, and Gradescope's results.json."""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from autograder import parts as registry
from autograder.i18n import Num, tr

UNITS = 10_000  # results.json shows points with 4 decimals; every share is a whole number of 1/10,000

# -- the verdict: what happened to a submission, as data ------------------------------------------
# Every results file carries ``extra_data.gptlab = {"status", "cause", "problem"}`` (Gradescope keeps a
# top-level ``extra_data`` as it is). Every consumer (grade_class, the nbgrader plugins, the class summary,
# the exports, the cluster's merge, the Slurm task log) reads the status from there, never from message
# text, which is translated and written by the student's code as much as by the grader.
#   ok        graded
#   hung      graded, but some of the submission's code ran past its time limit (what did not run counts 0)
#   tampered  graded, a locked cell was edited (set by the class tools, which compare with the release)
#   error     NOT graded: the submission could not be read, or the grader could not run (its cause says which)
#   timeout   NOT graded: grading as a whole did not finish within the class's limit
#   missing   NOT graded: no submission
STATUSES = ("ok", "hung", "tampered", "error", "timeout", "missing")
GRADED = ("ok", "hung", "tampered")
NOT_GRADED = ("error", "timeout", "missing")
# the causes (a code, stable across languages): why a status is not plain ``ok``
CAUSES = {
    "": "graded",
    "cell_timeout": "a cell of the submission ran past its time limit",
    "check_timeout": "the submission's code ran past its time limit during a check",
    "time_budget_spent": "the submission's time budget was spent before every check ran",
    "locked_cells_changed": "a locked cell was edited, deleted or re-pointed",
    "unreadable": "the submission could not be read (not a notebook, not UTF-8, a link, too large, ...)",
    "no_submission": "no submission was found",
    "grader_could_not_start": "the grader could not start (for instance the process limit was reached)",
    "worker_did_not_start": "the submission's process could not be started: nothing of it ran",
    "grader_failed": "the grader failed while grading or reporting",
    "grader_exited": "the grading process ended without a report",
    "no_results": "the grading process wrote no readable results",
    "grading_timeout": "grading did not finish within the time limit",
    "malformed_results": "a results file without a verdict or not valid",
}
PROBLEM_CHARS = 300  # a verdict's problem is one line for a CSV cell and a terminal
# what one message may carry into results.json (a check's output, the run's notes): a message can echo the
# student's text (a quiz answer, an error message); these keep a report, and the feedback notebooks made
# from it, within a few hundred KB whatever the submission (70 checks x 4,000 + 20,000 characters)
TEST_OUTPUT_CHARS = 4_000
OUTPUT_CHARS = 20_000


# escape sequences (CSI, OSC, ...), C0/C1 controls but newline and tab, DEL, and the bidi overrides: what a
# terminal (or a reader of the text) would take as commands (instructor/text.py: the same for the class tools)
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[\]P^_X][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]?|"
                      r"\x9b[0-?]*[ -/]*[@-~]")
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text) -> str:
    """``text`` without escape sequences and control characters (newlines and tabs kept, CR a newline):
    what the submission's code wrote (an error message, a traceback) reaches terminals and files as text."""
    text = str(text).replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROLS.sub("", _ESCAPES.sub("", text))


def bounded(text, limit: int) -> str:
    """At most ``limit`` characters of ``text``, saying how many were cut."""
    text = str(text)
    return text if len(text) <= limit else text[:limit] + f" [... {len(text) - limit} characters cut]"


def verdict(status: str, cause: str = "", problem: str = "", **extra) -> dict:
    """The ``extra_data.gptlab`` of a results file (status and cause codes, and a one-line problem)."""
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}")
    if cause not in CAUSES:
        raise ValueError(f"unknown cause {cause!r}")
    line = " ".join(next((x for x in str(problem).splitlines() if x.strip()), "").split())  # its first line
    line = line if len(line) <= PROBLEM_CHARS else line[:PROBLEM_CHARS - 3] + "..."
    return {"status": status, "cause": cause, "problem": line, **extra}


def set_verdict(data: dict, status: str, cause: str = "", problem: str = "", **extra) -> dict:
    """``data`` with its verdict (``extra_data.gptlab``) set, the other extra data kept."""
    extra_data = data.get("extra_data") if isinstance(data.get("extra_data"), dict) else {}
    data["extra_data"] = {**extra_data, "gptlab": verdict(status, cause, problem, **extra)}
    return data


def verdict_of(data) -> dict | None:
    """The verdict a results file carries, or None when it has none (or a malformed one): the reader
    decides what that means (never guessing from the messages)."""
    if not isinstance(data, dict) or not isinstance(data.get("extra_data"), dict):
        return None
    meta = data["extra_data"].get("gptlab")
    if not isinstance(meta, dict) or meta.get("status") not in STATUSES:
        return None
    cause = meta.get("cause") if meta.get("cause") in CAUSES else ""
    return {**meta, "cause": cause, "problem": str(meta.get("problem") or "")}


def load_rubric(path: Path | None = None) -> tuple[dict[str, Fraction], set[str]]:
    """({part: points}, {bonus parts}) from the registry (``autograder/parts.toml``, or ``path``)."""
    return registry.rubric(path)


@dataclass
class Outcome:
    part: str
    name: str  # the check's property, e.g. "causal mask"
    nodeid: str
    hidden: bool
    status: str  # passed / failed / pending (a hidden check that runs at grading time)
    message: str = ""
    weight: int = 1  # the check's weight in its part (the registry's [parts.<id>.weights])


@dataclass
class PartScore:
    part: str
    points: Fraction
    bonus: bool
    outcomes: list[Outcome] = field(default_factory=list)
    pending: int = 0  # hidden checks not present here
    pending_weight: int = 1  # the weight of each of them (the registry's hidden weight)

    @property
    def total(self) -> int:
        return len(self.outcomes) + self.pending

    @property
    def passed(self) -> int:
        return sum(o.status == "passed" for o in self.outcomes)

    def weights(self) -> list[int]:
        return [o.weight for o in self.outcomes] + [self.pending_weight] * self.pending

    def shares(self) -> list[Fraction]:
        """Each check's points (the checks that ran, in order, then the pending ones): the part's
        points in units of 1/10,000 shared in proportion to the checks' weights as closely as whole
        units allow (each its floor), the remainder one unit each to the first checks. So every
        share is exact at the 4 decimals results.json shows and the shares add up to the part's
        points exactly (0.25 over 3 equal checks: 0.0834 + 0.0833 + 0.0833)."""
        if not self.total:
            return []
        units = round(self.points * UNITS)  # rubric points have at most 4 decimals
        weights = self.weights()
        whole = sum(weights)
        base = [units * w // whole for w in weights]
        extra = units - sum(base)  # < len(weights): one unit each to the first checks
        return [Fraction(b + (i < extra), UNITS) for i, b in enumerate(base)]

    @property
    def score(self) -> Fraction:
        return sum((share for share, o in zip(self.shares(), self.outcomes) if o.status == "passed"), Fraction(0))

    def pending_points(self) -> Fraction:
        return sum(self.shares()[len(self.outcomes):], Fraction(0))

    def check_points(self) -> Fraction:
        """The points of a check of weight 1."""
        return self.points / sum(self.weights()) if self.total else Fraction(0)

    @property
    def first_failure(self) -> str:
        for o in self.outcomes:
            if o.status == "failed":
                return f"{o.name}: {o.message.splitlines()[0] if o.message else ''}"
        return ""


def score_parts(outcomes: list[Outcome], rubric: dict[str, Fraction], bonus: set[str], hidden_present: bool):
    manifest = registry.hidden_counts()
    parts = {p: PartScore(p, rubric.get(p, Fraction(0)), p in bonus) for p in registry.ids() if p in rubric}
    for o in outcomes:
        if o.part in parts:
            parts[o.part].outcomes.append(o)
    if not hidden_present:
        for part, count in manifest.items():
            if part in parts:
                parts[part].pending += int(count)
                parts[part].pending_weight = registry.check_weight(part, "", hidden=True)
    return list(parts.values())


def fmt(x: Fraction) -> str:
    return f"{Num(x):.2f}"  # 0,10 in a Spanish report (i18n.Num)


def table(parts: list[PartScore]) -> str:
    rows = [(tr("part"), tr("score"), tr("max"), tr("checks"), tr("first failing check"))]
    for p in parts:
        checks = f"{p.passed}/{len(p.outcomes)}" + (tr(" (+{count} hidden)").format(count=p.pending) if p.pending else "")
        first = p.first_failure
        rows.append((p.part + (tr(" (bonus)") if p.bonus else ""), fmt(p.score), fmt(p.points), checks,
                     first if len(first) <= 90 else first[:87] + "..."))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:4], widths)) + "  " + r[4] for r in rows]
    score = sum((p.score for p in parts if not p.bonus), Fraction(0))
    maximum = sum((p.points for p in parts if not p.bonus), Fraction(0))
    bonus = [p for p in parts if p.bonus]
    lines.insert(1, "-" * len(lines[0]))
    lines.append("-" * len(lines[0]))
    extra = ""
    if bonus:
        extra = tr("  + bonus {score} / {points}").format(score=fmt(sum((p.score for p in bonus), Fraction(0))),
                                                         points=fmt(sum((p.points for p in bonus), Fraction(0))))
    lines.append(tr("total {score} / {points}").format(score=fmt(score), points=fmt(maximum)) + extra)
    return "\n".join(lines)


def _num(x: Fraction) -> float | int:
    """A multiple of 1/10,000 as the shortest JSON number that reads back as exactly it."""
    value = round(float(x), 4)
    return int(value) if value == int(value) else value


def gradescope_json(parts: list[PartScore], extra_output: str = "", not_run: str = "",
                    status: str = "ok", cause: str = "", problem: str = "") -> dict:
    """results.json. A part none of whose checks ran (and none pending) still has a line: 0 of its
    points, with ``not_run`` (the cause) as its message, so every point of the rubric is accounted for."""
    tests = []
    for p in parts:
        shares = p.shares()
        for share, o in zip(shares, p.outcomes):
            tests.append({
                "name": f"{p.part}: {o.name}",
                "score": _num(share if o.status == "passed" else Fraction(0)),
                "max_score": _num(share),
                "status": "passed" if o.status == "passed" else "failed",
                "output": bounded(printable(o.message), TEST_OUTPUT_CHARS),
                "tags": [p.part],
                "visibility": "after_published" if o.hidden else "visible",
            })
        if not p.total and p.points:
            tests.append({
                "name": f"{p.part}: " + tr("not run"), "score": 0, "max_score": _num(p.points), "status": "failed",
                "output": bounded(not_run or tr("no check of this part ran"), TEST_OUTPUT_CHARS), "tags": [p.part],
                "visibility": "visible",
            })
    score = sum((p.score for p in parts), Fraction(0))
    return set_verdict({
        "score": _num(score),
        "output": bounded(printable(extra_output), OUTPUT_CHARS),
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
    }, status, cause, problem)


def zero_report(cause: str, rubric: dict[str, Fraction] | None = None, bonus: set[str] | None = None,
                code: str = "grader_failed", status: str = "error") -> dict:
    """The results.json of a run that could not grade at all: every part 0 of its points, each with
    ``cause`` as its message. The one place that writes such a report (pytest autograder's
    configuration or collection failing, the Gradescope wrapper when the grader itself fails)."""
    try:
        if rubric is None:  # the registry reads without torch: a zero report never waits for it
            rubric, bonus = registry.rubric()
    except Exception:  # noqa: BLE001 - the registry itself may be what failed
        rubric, bonus = {}, set()
    parts = [PartScore(p, rubric[p], p in (bonus or set())) for p in rubric]
    return gradescope_json(parts, f"Not graded: {cause}", not_run=f"not run: {cause}",
                           status=status, cause=code, problem=cause)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write a file whole or not at all: a forged or torn file already at ``path`` is replaced, never
    merged or half-written, also on a shared file system (fsync before the rename). Readable by the
    course staff's group (mkstemp's 0600 would hide it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | os.PathLike, data, indent: int = 2, sort_keys: bool = False, end: str = "") -> None:
    """The one writer of results files (results.json, a class's <student>.json, a cluster item's result,
    a manifest): ``write_text_atomic`` of the JSON text."""
    write_text_atomic(path, json.dumps(data, indent=indent, sort_keys=sort_keys) + end)
