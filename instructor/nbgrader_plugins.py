"""nbgrader preprocessors of the gpt-lab course (they run in the nbgrader process, the instructor's;
``course/nbgrader_config.py`` orders them in nbgrader's pipelines).

nbgrader's own way of grading, executing the student's notebook in a kernel and scoring each test
cell from what that kernel printed, lets the student's code decide its own grade (patch the check,
hide the outputs, read the reference, kill nbgrader, rewrite the gradebook). Here nothing of the
student's runs in nbgrader's process or kernel:

``RepairStructure`` (sanitize stage, first)
    Rebuilds the graded structure of the submission from the gradebook (the released assignment):
    every graded, solution and locked cell gets its released nbgrader metadata back; test cells get
    their released source; cells deleted, stripped of metadata, renamed, retyped, duplicated or
    re-flagged are found and restored; unknown grade ids are dropped. Each change is logged as a
    warning naming the ``grade_id`` and listed in a note at the top of the autograded notebook (so in
    the feedback). The notebook is graded from the released structure, never skipped.

``GradeInSandbox`` (autograde stage, in place of ``Execute``)
    Grades the submitted file with the isolated grader, exactly as ``pytest autograder --submission
    FILE --reference SOURCE`` does (through ``instructor.grade_class``: a grading process per
    submission, the student's code in its sandboxed worker, one time budget per notebook, results
    cached by submission and grader), and writes into each check cell its part's PASS/FAIL lines and
    score. nbgrader's ``SaveAutoGrades`` then reads those scores. The kernel is never started.

The reference is the course's own source notebook (``source/<assignment>/<notebook>.ipynb``): what
the instructor edits is what the hidden checks compare with.
"""

from __future__ import annotations

import json
import os
import re
import time
from fractions import Fraction
from pathlib import Path

import nbformat
from nbformat.notebooknode import NotebookNode, from_dict
from nbgrader import utils
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Float, Unicode

NOTE_MARKER = "gpt-lab autograder note"
GRADER_MARKER = "gpt-lab grader report"
PREGRADING_ENV = "GPTLAB_PREGRADING_WAIT_S"  # set by instructor.autograde: the class is being graded beside nbgrader
RESULTS_FOLDER = "autograder_results"  # under the course root: <assignment>/<notebook>/<student>.json
_STOPPED = re.compile(r"\b(Timeout|ProcessStopped|ProcessDied|OutputTooLarge|DiskFull|MemoryError)\b|stopped|killed")
def _routine():
    """The grader's routine notes (slow cells skipped, stubs not implemented yet), in the current language:
    the grader's own messages (``translate``: their texts are extracted where the grader builds them)."""
    from autograder.i18n import translate

    def pattern(text: str, **fixed: str) -> str:
        out = ""
        for piece in re.split(r"(\{[^{}]*\})", text):
            if piece.startswith("{") and piece.endswith("}"):
                name = re.split(r"[:!]", piece[1:-1])[0]
                out += (re.escape(fixed[name]) if name in fixed else r"\d+" if name == "number"
                        else r".+?" if name == "cell" else r"\S+")  # a cell is named by its content
            else:
                out += re.escape(piece)
        return out

    return re.compile("^(" + pattern(translate("cell {number}: tagged {tag}")) + "|"
                      + pattern(translate("{cell}: {kind}: {message}"), kind="NotImplementedError", message="")
                      + ")")
_PART = re.compile(r"""^check\(\s*["']([A-Za-z0-9_]+)["']""", re.MULTILINE)
_HIDDEN = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS[^\n]*\n.*?^[ \t]*### END HIDDEN TESTS[^\n]*(\n|\Z)",
                     re.MULTILINE | re.DOTALL)


def released_source(source: str) -> str:
    """A test cell's source as the students got it: hidden test regions removed."""
    return _HIDDEN.sub("", source)


def part_of(source: str) -> str | None:
    """The lab part a check cell grades: ``check("head", globals())`` -> ``head``."""
    match = _PART.search(source or "")
    return match.group(1) if match else None


def _norm(source: str) -> str:
    return "\n".join(line.rstrip() for line in str(source).strip().splitlines())


def _coursedir(preprocessor):
    from nbgrader.coursedir import CourseDirectory

    return CourseDirectory(parent=preprocessor.parent, config=preprocessor.config)


def source_notebook_path(preprocessor, assignment_id: str, notebook_id: str) -> Path:
    coursedir = _coursedir(preprocessor)
    return Path(coursedir.format_path(coursedir.source_directory, ".", assignment_id)) / f"{notebook_id}.ipynb"


# -- the released structure -------------------------------------------------------------------------


class RepairStructure(NbGraderPreprocessor):
    """Give every graded, solution and locked cell its released metadata (and test cells their
    released source); restore what was deleted or stripped; report every change."""

    def preprocess(self, nb, resources):
        from nbgrader.api import Gradebook

        info = resources["nbgrader"]
        notebook_id, assignment_id = info["notebook"], info["assignment"]
        student = info.get("student", "?")
        with Gradebook(info["db_url"]) as gb:
            source_nb = gb.find_notebook(notebook_id, assignment_id)
            points = {c.name: float(c.max_score) for c in source_nb.grade_cells}
            solutions = {c.name for c in source_nb.solution_cells}
            trusted = {c.name: {"cell_type": c.cell_type, "locked": bool(c.locked), "source": c.source,
                                "checksum": c.checksum} for c in source_nb.source_cells}
        order, cell_ids = self._source_order(assignment_id, notebook_id)
        order = [g for g in order if g in trusted] + sorted(g for g in trusted if g not in order)
        notes: list[str] = []

        for cell in nb.cells:  # metadata that is not a mapping: nothing of it can be trusted
            if not isinstance(cell.get("metadata"), dict):
                cell["metadata"] = from_dict({})
            elif "nbgrader" in cell.metadata and not isinstance(cell.metadata["nbgrader"], dict):
                del cell.metadata["nbgrader"]

        # each released grade id is held by one cell: the one with its cell id, else its source, else the first
        claims: dict[str, list] = {}
        for cell in nb.cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if grade_id is None:
                continue
            if not isinstance(grade_id, str) or grade_id not in trusted:
                del cell.metadata["nbgrader"]
                notes.append(f"a cell carried an unknown grade id `{str(grade_id)[:40]}`; it is graded as an "
                             "ordinary cell")
                continue
            claims.setdefault(grade_id, []).append(cell)
        present = {}
        for grade_id, cells in claims.items():
            keep = self._best(cells, cell_ids.get(grade_id), trusted[grade_id]["source"])
            present[grade_id] = keep
            for other in cells:
                if other is not keep:
                    del other.metadata["nbgrader"]
                    notes.append(f"grade id `{grade_id}` was copied onto another cell; that copy is graded as an "
                                 "ordinary cell")

        for grade_id in order:
            meta = self._metadata(grade_id, trusted[grade_id], points, solutions)
            test = meta["grade"] and not meta["solution"]
            what = "test cell" if test else ("graded answer cell" if meta["grade"] else "locked cell")
            cell, stripped = present.get(grade_id), False
            if cell is None:
                cell = self._stripped(nb, cell_ids.get(grade_id), trusted[grade_id]["source"], test or meta["locked"])
                stripped = cell is not None
                if stripped:
                    notes.append(f"{what} `{grade_id}` had lost its nbgrader metadata; the metadata was restored")
            if cell is None:
                if not meta["grade"]:
                    continue  # a locked, ungraded cell: nbgrader's OverwriteCells keeps the rest
                cell = self._new_cell(nb, grade_id, meta, trusted[grade_id]["source"], cell_ids.get(grade_id))
                anchor = self._anchor(order, grade_id, present)
                nb.cells.insert(nb.cells.index(anchor) + 1 if anchor is not None else len(nb.cells), cell)
                notes.append(f"{what} `{grade_id}` was missing from the submission; it was added back"
                             + (" (graded as an unanswered question)" if meta["solution"] else ""))
            else:
                changed = [] if stripped else self._changed_fields(cell, meta)
                if changed:
                    notes.append(f"{what} `{grade_id}`: its nbgrader metadata was changed ({', '.join(changed)}); "
                                 "the released metadata was put back")
                if cell.cell_type != meta["cell_type"]:
                    self._retype(cell, meta["cell_type"])
                cell.metadata["nbgrader"] = from_dict(meta)
                if test and _norm(cell.source) not in (_norm(trusted[grade_id]["source"]),
                                                       _norm(released_source(trusted[grade_id]["source"]))):
                    notes.append(f"{what} `{grade_id}` was edited; it is graded with the assignment's version")
            if test or meta["locked"]:
                cell.source = trusted[grade_id]["source"]
                cell.metadata["editable"], cell.metadata["deletable"] = False, False
            present[grade_id] = cell

        for note in notes:
            self.log.warning("%s/%s (student %s): %s", assignment_id, notebook_id, student, note)
        if notes:
            text = (f"**{NOTE_MARKER}.** This submission changed cells that the grading relies on. "
                    "They were restored before grading; please check that the grades below are what you expect.\n\n"
                    + "\n".join(f"* {n}" for n in notes))
            nb.cells.insert(0, from_dict({"cell_type": "markdown", "metadata": {"tags": ["autograder-note"]},
                                          "source": text, "id": "gptlab-autograder-note"}))
        resources.setdefault("gptlab", {})["restored"] = notes
        return nb, resources

    # -- helpers ---------------------------------------------------------------------------------

    def _source_order(self, assignment_id: str, notebook_id: str):
        """grade_ids in the source notebook's order, and their nbformat cell ids (empty if unreadable)."""
        try:
            nb = json.loads(source_notebook_path(self, assignment_id, notebook_id).read_text(encoding="utf-8"))
        except Exception as exc:  # noqa: BLE001 - the gradebook alone still works
            self.log.warning("source notebook not readable (%s): restored cells go after the previous one found", exc)
            return [], {}
        order, ids = [], {}
        for cell in nb.get("cells", []):
            grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            if grade_id:
                order.append(grade_id)
                if cell.get("id"):
                    ids[grade_id] = cell["id"]
        return order, ids

    @staticmethod
    def _metadata(grade_id, trusted, points, solutions) -> dict:
        meta = {"grade": grade_id in points, "grade_id": grade_id, "locked": trusted["locked"],
                "solution": grade_id in solutions, "checksum": trusted["checksum"],
                "cell_type": trusted["cell_type"], "schema_version": 3}
        if grade_id in points:
            meta["points"] = points[grade_id]
        if meta["solution"]:
            meta["locked"] = False
        return meta

    @staticmethod
    def _changed_fields(cell, meta) -> list[str]:
        got = cell.metadata.get("nbgrader", {})
        changed = [k for k in ("grade", "solution", "locked", "points")
                   if k in meta and (k not in got or got[k] != meta[k])]
        if cell.cell_type != meta["cell_type"]:
            changed.append("cell type")
        if not meta["solution"] and "checksum" in got and got["checksum"] != meta["checksum"]:
            changed.append("checksum")  # a solution cell's checksum is nbgrader's own business
        return changed

    @staticmethod
    def _best(cells, cell_id, source):
        for cell in cells:
            if cell_id and cell.get("id") == cell_id:
                return cell
        for cell in cells:
            if _norm(cell.source) in (_norm(source), _norm(released_source(source))):
                return cell
        return cells[0]

    @staticmethod
    def _stripped(nb, cell_id, source, by_source):
        """The submission's cell that lost its nbgrader metadata: by cell id, else (test and locked
        cells) by its released source."""
        candidates = [c for c in nb.cells if "nbgrader" not in c.metadata]
        if cell_id:
            for c in candidates:
                if c.get("id") == cell_id:
                    return c
        if by_source:
            wanted = (_norm(source), _norm(released_source(source)))
            for c in candidates:
                if _norm(c.source) in wanted:
                    return c
        return None

    @staticmethod
    def _retype(cell, cell_type):
        cell.cell_type = cell_type
        if cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        else:
            cell.pop("outputs", None)
            cell.pop("execution_count", None)

    @staticmethod
    def _new_cell(nb, grade_id, meta, source, cell_id):
        taken = {c.get("id") for c in nb.cells}
        if not cell_id or cell_id in taken:
            cell_id = f"restored-{grade_id}"[:64]
        cell = {"cell_type": meta["cell_type"], "id": cell_id, "source": source, "metadata": {"nbgrader": meta}}
        if not meta["solution"]:
            cell["metadata"].update(deletable=False, editable=False)
        if meta["cell_type"] == "code":
            cell.update(outputs=[], execution_count=None)
        return from_dict(cell)

    @staticmethod
    def _anchor(order, grade_id, present):
        """The cell after which a missing ``grade_id`` goes: the nearest earlier released cell present."""
        for earlier in reversed(order[:order.index(grade_id)]):
            if earlier in present:
                return present[earlier]
        return None


# -- the grade --------------------------------------------------------------------------------------


def part_results(data: dict) -> dict[str, dict]:
    """Per part of a results.json: score and maximum (sums of its tests) and its check lines."""
    parts: dict[str, dict] = {}
    for test in data.get("tests") or []:
        tags = test.get("tags") or [""]
        entry = parts.setdefault(str(tags[0]), {"score": Fraction(0), "max": Fraction(0), "lines": []})
        entry["score"] += Fraction(str(test.get("score") or 0))
        entry["max"] += Fraction(str(test.get("max_score") or 0))
        passed = test.get("status") == "passed"
        name = str(test.get("name", ""))
        line = f"  [{'PASS' if passed else 'FAIL'}] {name}"
        if not passed and test.get("output"):
            line += "\n" + "\n".join("         " + ln for ln in str(test["output"]).splitlines())
        entry["lines"].append(line)
    return parts


def cell_score(points: float, part: dict | None) -> Fraction:
    """The check cell's score: the part's score from the grader, on the cell's scale (the same
    number when the cell's points are the part's points), never above the cell's points."""
    if not part or part["max"] <= 0:
        return Fraction(0)
    cell_max = Fraction(str(points))
    score = part["score"] if cell_max == part["max"] else cell_max * part["score"] / part["max"]
    return min(max(score, Fraction(0)), cell_max)


class GradeInSandbox(NbGraderPreprocessor):
    """Grade the submitted file with the isolated grader; write each part's lines and score into its check cell."""

    timeout = Float(600.0, help="seconds for grading one notebook, all of it (a hung submission is stopped "
                                "there and gets 0 for what did not run)").tag(config=True)
    reference = Unicode("", help="the reference solution the hidden checks compare with "
                                 "(default: the course's source notebook)").tag(config=True)
    lang = Unicode("", help="language of the grader's messages in the check cells, en or es (default: each "
                            "notebook's own, metadata.gptlab.lang)").tag(config=True)
    results_directory = Unicode("", help="where each student's results JSON is cached (default: "
                                         f"<course>/{RESULTS_FOLDER}/<assignment>/<notebook>)").tag(config=True)

    def _paths(self, assignment_id, notebook_id, student):
        coursedir = _coursedir(self)
        submitted = (Path(coursedir.format_path(coursedir.submitted_directory, student, assignment_id))
                     / f"{notebook_id}.ipynb")
        reference = Path(self.reference) if self.reference else source_notebook_path(self, assignment_id, notebook_id)
        results = (Path(self.results_directory) if self.results_directory
                   else results_dir(coursedir.root, assignment_id, notebook_id))
        return submitted, reference, results

    def _wait_for_pregrading(self, student, submitted, out_dir, reference) -> None:
        """Under ``instructor.autograde`` the class is graded in parallel while nbgrader runs: wait for
        this student's result rather than grade it a second time (then, if it never comes, grade it here)."""
        from instructor.grade_class import is_graded

        wait = float(os.environ.get(PREGRADING_ENV) or 0)
        deadline = time.monotonic() + wait
        while wait and time.monotonic() < deadline and not is_graded(student, submitted, out_dir, reference):
            time.sleep(0.2)

    def _extra_credit(self, info, extra) -> None:
        _set_extra_credit(info["db_url"], info["notebook"], info["assignment"], info["student"], extra)

    def preprocess(self, nb, resources):
        """In the language of ``c.GradeInSandbox.lang``, else the notebook's own (metadata.gptlab.lang)."""
        from autograder import i18n
        from instructor.i18n import notebook_language

        with i18n.using(self.lang or notebook_language(nb)):
            return self._preprocess(nb, resources)

    def _preprocess(self, nb, resources):
        from autograder.engine.report import load_rubric
        from autograder.i18n import Num, tr
        from instructor.grade_class import grade_many

        info = resources["nbgrader"]
        assignment_id, notebook_id, student = info["assignment"], info["notebook"], info["student"]
        submitted, reference, out_dir = self._paths(assignment_id, notebook_id, student)
        self._wait_for_pregrading(student, submitted, out_dir, reference)
        result = grade_many({student: submitted}, out_dir, jobs=1, reference=reference, timeout=self.timeout,
                            reports=False, lang=self.lang or None)[student]
        try:
            data = json.loads((out_dir / f"{student}.json").read_text())
        except (OSError, ValueError) as exc:
            data = {"tests": [], "output": f"no results ({exc})"}
        parts = part_results(data)
        problem = result.get("message") if result.get("status") != "ok" else ""
        bonus_parts = load_rubric()[1]
        extra: dict[str, Fraction] = {}  # grade id -> extra credit (a bonus part's cell is worth 0 points)
        graded = 0
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            cell.outputs, cell.execution_count = [], None
            if not (utils.is_grade(cell) and not utils.is_solution(cell)):
                continue
            graded += 1
            part = part_of(cell.source)
            points = float(cell.metadata["nbgrader"].get("points", 0))
            if part is None:
                text, score = (tr("this test cell names no gpt-lab part (`check(\"<part>\", globals())`): "
                                  "0 points") + "\n"), Fraction(0)
            elif problem:
                text, score = tr("{part}: not graded: {problem}").format(part=part, problem=problem) + "\n", Fraction(0)
            else:
                entry = parts.get(part)
                lines = entry["lines"] if entry else ["  " + tr("the grader ran no check of part {part}")
                                                      .format(part=repr(part))]
                if part in bonus_parts and points == 0:
                    # one maximum everywhere: a bonus part adds to the score (nbgrader's extra credit),
                    # never to the maximum
                    score = Fraction(0)
                    extra[cell.metadata["nbgrader"]["grade_id"]] = entry["score"] if entry else Fraction(0)
                    text = "\n".join(lines) + "\n" + tr("{part} (bonus): {score:.4g} points of extra credit").format(
                        part=part, score=Num(extra[cell.metadata["nbgrader"]["grade_id"]])) + "\n"
                else:
                    score = cell_score(points, entry)
                    text = "\n".join(lines) + "\n" + tr("{part}: {score:.4g} of {points:.4g} points").format(
                        part=part, score=Num(score), points=Num(points)) + "\n"
            cell.outputs = [
                nbformat.v4.new_output("stream", name="stdout", text=text),
                nbformat.v4.new_output("execute_result", data={"text/plain": f"{float(score):.4f}"},
                                       execution_count=1),
            ]
            cell.execution_count = 1
        if extra:
            self._extra_credit(info, extra)
        # the grader's notes, less the routine ones (slow cells skipped, stubs not implemented yet)
        routine = _routine()
        notes = "\n".join(line for line in str(data.get("output") or "").splitlines()
                          if line.strip() and not routine.search(line))
        if problem or notes:
            text = f"**{GRADER_MARKER}.** " + (tr("This notebook could not be graded: {problem}").format(problem=problem)
                                               + "\n\n" if problem else "")
            text += "\n".join(f"* {line}" for line in notes.splitlines()[:20] if line.strip())
            at = 1 if nb.cells and NOTE_MARKER in str(nb.cells[0].get("source", "")) else 0
            nb.cells.insert(at, from_dict({"cell_type": "markdown", "metadata": {"tags": ["autograder-note"]},
                                           "source": text, "id": "gptlab-grader-report"}))
        # what the sandbox had to stop (a hang, a fork bomb, a flood, a death) is named in the log as well
        stopped = [line for line in notes.splitlines() if _STOPPED.search(line)]
        cause = problem.splitlines()[0] if problem else "; ".join(stopped[:3])
        level = self.log.warning if cause else self.log.info
        level("%s/%s (student %s): graded in the sandbox: %s, %s points%s", assignment_id, notebook_id, student,
              result.get("status"), result.get("total"), f" ({cause})" if cause else "")
        resources.setdefault("gptlab", {})["grade"] = {"status": result.get("status"), "cells": graded}
        return nb, resources


def _set_extra_credit(db_url, notebook_id, assignment_id, student, extra) -> None:
    from nbgrader.api import Gradebook

    with Gradebook(db_url) as gb:
        for grade_id, value in extra.items():
            gb.find_grade(grade_id, notebook_id, assignment_id, student).extra_credit = float(value)
        gb.db.commit()


def results_dir(course_root, assignment_id: str, notebook_id: str) -> Path:
    return Path(course_root) / RESULTS_FOLDER / assignment_id / notebook_id


__all__ = ["RepairStructure", "GradeInSandbox", "released_source", "part_of", "part_results", "cell_score",
           "results_dir", "NOTE_MARKER", "GRADER_MARKER", "NotebookNode"]
