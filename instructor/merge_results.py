"""Merge a results folder into grades (runs in the instructor's process, or in the cluster's merge job).

    python -m instructor.cluster merge MANIFEST RESULTS_DIR --out GRADES_DIR

Reads ``RESULTS_DIR/<id>.json`` for every item of the manifest and writes, in GRADES_DIR, what
``grade_class`` writes: ``grades.csv`` (with its max row, and the LMS exports: ``instructor.exports``), the
class summary (``summary.txt``: every item not graded, with its reason), and one
``<id>.json`` per student (the grader's Gradescope results.json). An item counts only when its result carries
the key of the submission as it is now under the grader as it is now; otherwise it is **missing** (no file, a
torn or foreign file, or a stale one: graded for an older submission or grader). Items whose verdict is not
graded (``error``, ``timeout``, ``missing``: ``extra_data.gptlab`` of their results) are **failed**: they have
their row (blank, not 0, as with grade_class) and are named.
Missing items have no row; they are listed in ``GRADES_DIR/missing.csv`` (index, id, reason) and on stdout,
and the exit status is 1, so a merge job that runs after a partly failed array says so.

For the nbgrader gradebook, ``collect(...).gradescope`` is student id -> results.json, the same data
grade_class's per-student files hold: the gradebook import takes it from there.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path

from autograder.engine import report as results_format
from autograder.engine.report import write_json
from instructor import class_summary, exports
from instructor.text import plain
from instructor.grade_item import read_result, result_path
from instructor.grade_manifest import Item, Manifest, current_keys, load

MISSING_NAME = "missing.csv"


@dataclass
class Collected:
    manifest: Manifest
    results: dict[str, dict] = field(default_factory=dict)      # id -> result record (grade_item's file)
    missing: list[tuple[Item, str]] = field(default_factory=list)  # (item, why)

    @property
    def failed(self) -> list[Item]:
        return [it for it in self.manifest.items
                if it.id in self.results and self.results[it.id]["status"] not in results_format.GRADED]

    @property
    def gradescope(self) -> dict[str, dict]:
        """Student id -> the grader's results.json (Gradescope schema), for every item with a result."""
        return {s: r["results"] for s, r in self.results.items()}

    def missing_indices(self) -> list[int]:
        return [it.index for it, _ in self.missing]


def collect(manifest: Manifest | str | os.PathLike, results_dir: str | os.PathLike,
            reference: str | os.PathLike | None = None) -> Collected:
    """Every item's up-to-date result, and which items have none (and why)."""
    if not isinstance(manifest, Manifest):
        manifest = load(manifest)
    keys = current_keys(manifest, Path(reference) if reference else None)
    out = Collected(manifest)
    for it in manifest.items:
        path = result_path(Path(results_dir), it.id)
        data = read_result(path)
        if data is None:
            why = "no result" if not path.exists() else "unreadable result (torn or not written by grade_item)"
            out.missing.append((it, why))
        elif data.get("key") != keys[it.id] or data.get("id") != it.id:
            out.missing.append((it, "stale result (graded for another version of the submission or grader)"))
        else:
            out.results[it.id] = data
    return out


def write_grades(collected: Collected, out_dir: str | os.PathLike) -> Path:
    """grades.csv and <id>.json as grade_class writes them, and missing.csv; returns grades.csv's path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for student, data in collected.gradescope.items():
        write_json(out_dir / f"{student}.json", data)
    for it, _ in collected.missing:  # an earlier merge's file for an item that is missing now would mislead
        (out_dir / f"{it.id}.json").unlink(missing_ok=True)
    results = dict(collected.gradescope)
    for student, record in collected.results.items():
        # the row's status is the verdict (extra_data.gptlab, written by grade_one) when it agrees with the item's
        # record; a results file without one is not graded, never an ok with 0; a record that says otherwise
        # (a task stopped after writing) is the item's last word
        status = record.get("status") if record.get("status") in results_format.STATUSES else "error"
        meta = results_format.verdict_of(results[student])
        if meta is None:
            results[student] = class_summary.stand_in("error", "the item's results carry no verdict: grade it again",
                                                      code="malformed_results")
        elif meta["status"] != status:
            cause = record.get("cause") if record.get("cause") in results_format.CAUSES else ""
            problem = record.get("problem") or record.get("message") or meta.get("problem", "")
            results[student] = results_format.set_verdict(dict(results[student]), status,
                                                          cause or class_summary.default_cause(status), problem)
    for it, why in collected.missing:  # a row and a summary line that say why, never a blank 0
        results[it.id] = class_summary.missing_stand_in(f"no usable result from the cluster: {why}")
    csv_path = exports.export_all(results, out_dir)[0]
    class_summary.write_summary(results, out_dir)
    missing = out_dir / MISSING_NAME
    if collected.missing:
        tmp = out_dir / f".{MISSING_NAME}.tmp"
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["index", "id", "reason"])
            for it, why in collected.missing:
                w.writerow([it.index, it.id, why])
        os.replace(tmp, missing)
    else:
        missing.unlink(missing_ok=True)
    return csv_path


def report(collected: Collected, limit: int = 50) -> str:
    n = len(collected.manifest)
    lines = [f"{len(collected.results)} of {n} items graded, {len(collected.failed)} failed, "
             f"{len(collected.missing)} missing"]
    for it in collected.failed[:limit]:
        r = collected.results[it.id]
        first = [plain(line) for line in (r.get("message") or "").strip().splitlines()[:1]]
        lines.append(f"  failed  {it.index} {plain(it.id)}: {r['status']}" + (f": {first[0]}" if first else ""))
    for it, why in collected.missing[:limit]:
        lines.append(f"  missing {it.index} {plain(it.id)}: {why}")
    more = max(0, len(collected.failed) - limit) + max(0, len(collected.missing) - limit)
    if more:
        lines.append(f"  ... and {more} more (see {MISSING_NAME})")
    return "\n".join(lines)


def merge(manifest, results_dir, out_dir, reference=None) -> tuple[Collected, Path]:
    collected = collect(manifest, results_dir, reference)
    return collected, write_grades(collected, out_dir)
