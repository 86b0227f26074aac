"""Scores from check outcomes: the rubric, the end-of-run table, and Gradescope's results.json."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from autograder import parts as registry
from autograder.i18n import Num, tr

UNITS = 10_000  # results.json shows points with 4 decimals; every share is a whole number of 1/10,000


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


@dataclass
class PartScore:
    part: str
    points: Fraction
    bonus: bool
    outcomes: list[Outcome] = field(default_factory=list)
    pending: int = 0  # hidden checks not present here

    @property
    def total(self) -> int:
        return len(self.outcomes) + self.pending

    @property
    def passed(self) -> int:
        return sum(o.status == "passed" for o in self.outcomes)

    def shares(self) -> list[Fraction]:
        """Each check's points (the checks that ran, in order, then the pending ones): the part's
        points in units of 1/10,000 shared as equally as whole units allow, the remainder one unit
        each to the first checks. So every share is exact at the 4 decimals results.json shows and
        the shares add up to the part's points exactly (0.25 over 3 checks: 0.0834 + 0.0833 + 0.0833)."""
        if not self.total:
            return []
        units = round(self.points * UNITS)  # rubric points have at most 4 decimals
        base, extra = divmod(units, self.total)
        return [Fraction(base + (i < extra), UNITS) for i in range(self.total)]

    @property
    def score(self) -> Fraction:
        return sum((share for share, o in zip(self.shares(), self.outcomes) if o.status == "passed"), Fraction(0))

    def pending_points(self) -> Fraction:
        return sum(self.shares()[len(self.outcomes):], Fraction(0))

    def check_points(self) -> Fraction:
        return self.points / self.total if self.total else Fraction(0)

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


def gradescope_json(parts: list[PartScore], extra_output: str = "", not_run: str = "") -> dict:
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
                "output": o.message,
                "tags": [p.part],
                "visibility": "after_published" if o.hidden else "visible",
            })
        if not p.total and p.points:
            tests.append({
                "name": f"{p.part}: " + tr("not run"), "score": 0, "max_score": _num(p.points), "status": "failed",
                "output": not_run or tr("no check of this part ran"), "tags": [p.part], "visibility": "visible",
            })
    score = sum((p.score for p in parts), Fraction(0))
    return {
        "score": _num(score),
        "output": extra_output,
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
    }


def zero_report(cause: str, rubric: dict[str, Fraction] | None = None, bonus: set[str] | None = None) -> dict:
    """The results.json of a run that could not grade at all: every part 0 of its points, each with
    ``cause`` as its message. The one place that writes such a report (pytest autograder's
    configuration or collection failing, the Gradescope wrapper when the grader itself fails)."""
    try:
        if rubric is None:  # the registry reads without torch: a zero report never waits for it
            rubric, bonus = registry.rubric()
    except Exception:  # noqa: BLE001 - the registry itself may be what failed
        rubric, bonus = {}, set()
    parts = [PartScore(p, rubric[p], p in (bonus or set())) for p in rubric]
    return gradescope_json(parts, f"Not graded: {cause}", not_run=f"not run: {cause}")


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
