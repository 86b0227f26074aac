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
from nbconvert.exporters import NotebookExporter
from nbgrader import utils
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Float, Unicode

from autograder.engine.report import NOT_GRADED
from instructor.text import bounded, markdown, plain

NOTE_MARKER = "gpt-lab autograder note"
GRADER_MARKER = "gpt-lab grader report"
PREGRADING_ENV = "GPTLAB_PREGRADING_WAIT_S"  # set by instructor.autograde: the class is being graded beside nbgrader
NOTE_LINE_CHARS = 500  # one line of the grader's note in the autograded notebook (the feedback)
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


# -- reading what was submitted ---------------------------------------------------------------------


class ReadAnyNotebook(NotebookExporter):
    """nbgrader's exporter (``c.Autograde.exporter_class``) for a notebook that cannot be read (truncated, not
    JSON, not a notebook, a link or special file): nbgrader would stop on it with a traceback and write
    nothing for that student. This reads the released notebook in its place instead (or an empty one, whose
    graded cells ``RepairStructure`` restores from the gradebook); ``GradeInSandbox`` grades the submitted
    file itself, so the student's row says "not graded" with the reason, the check cells say it, the
    gradebook flags it (``FlagForReview``), and the feedback explains it."""

    def from_filename(self, filename, resources=None, **kw):
        from instructor.autograde import unreadable

        why = unreadable(Path(filename)) or structure_problem(Path(filename))
        if not why:
            return super().from_filename(filename, resources=resources, **kw)
        resources = resources if resources is not None else {}
        info = resources.get("nbgrader") or {}
        self.log.warning("%s (student %s) cannot be read by nbgrader (%s): the release is read in its place, the "
                         "submitted file is graded, the notebook flagged", plain(Path(filename).name),
                         plain(str(info.get("student", "?"))), plain(bounded(why, 300)))
        nb = nbformat.v4.new_notebook()
        try:
            coursedir = _coursedir(self)
            release = (Path(coursedir.format_path(coursedir.release_directory, ".", info["assignment"]))
                       / f"{info['notebook']}.ipynb")
            nb = nbformat.read(release, as_version=4)
        except Exception:  # noqa: BLE001 - no release here: RepairStructure rebuilds the graded cells
            pass
        resources.setdefault("gptlab", {})["unreadable"] = why
        # carried to the autograde stage (which reads this stage's output): GradeInSandbox notes it, flags it
        nb.metadata[SUBSTITUTED] = bounded(why, NOTE_LINE_CHARS)
        if not isinstance(resources.get("metadata"), dict):
            resources["metadata"] = {}
        resources["metadata"].update(name=Path(filename).stem, path=str(Path(filename).parent))
        return self.from_notebook_node(nb, resources, **kw)


SUBSTITUTED = "gptlab_unreadable"  # notebook metadata: nbgrader could not read the submission (why)
_CELL_TYPES = ("code", "markdown", "raw")


def structure_problem(path: Path) -> str:
    """Why nbgrader's own steps would fail on this notebook's structure although it is valid JSON ('' if they
    would not): cells that are not a list of cells with a type, a text source and a metadata mapping."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except Exception as exc:  # noqa: BLE001 - unreadable() says more; nothing to add here
        return f"{type(exc).__name__}"
    if not isinstance(raw, dict) or not isinstance(raw.get("metadata", {}), dict):
        return "the notebook or its metadata is not a mapping"
    cells = raw.get("cells")
    if not isinstance(cells, list):
        return "its cells are not a list"
    for i, cell in enumerate(cells):
        ok = (isinstance(cell, dict) and cell.get("cell_type") in _CELL_TYPES
              and isinstance(cell.get("source", ""), (str, list)) and isinstance(cell.get("metadata", {}), dict))
        if not ok:
            return f"cell {i + 1} is not a notebook cell"
    return ""


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
        from instructor import tampering

        lang = tampering.notebook_lang(nb)  # a cell as an earlier release of this edition had it is no change

        def earlier(grade_id, cell, *fields):
            return tampering.as_released_before(grade_id, cell, lang, fields)

        for cell in nb.cells:  # metadata that is not a mapping: nothing of it can be trusted
            if not isinstance(cell.get("metadata"), dict):
                cell["metadata"] = from_dict({})
            elif "nbgrader" in cell.metadata and not isinstance(cell.metadata["nbgrader"], dict):
                del cell.metadata["nbgrader"]

        # each released grade id is held by one cell: the one with its cell id, else its source, else the first
        notes += self.strip_unnamed(nb.cells)
        claims: dict[str, list] = {}
        for cell in nb.cells:
            if "nbgrader" not in cell.metadata:
                continue
            grade_id = cell.metadata["nbgrader"].get("grade_id")
            if not isinstance(grade_id, str) or grade_id not in trusted:
                del cell.metadata["nbgrader"]
                notes.append(f"a cell carried an unknown grade id ({markdown(bounded(str(grade_id), 40))}); it is "
                             "graded as an ordinary cell")
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
                if not earlier(grade_id, None):  # else: a cell added since the student's release
                    notes.append(f"{what} `{grade_id}` was missing from the submission; it was added back"
                                 + (" (graded as an unanswered question)" if meta["solution"] else ""))
            else:
                changed = [] if stripped else self._changed_fields(cell, meta)
                if changed and not earlier(grade_id, cell, "points", "grade", "locked", "solution", "checksum"):
                    notes.append(f"{what} `{grade_id}`: its nbgrader metadata was changed ({', '.join(changed)}); "
                                 "the released metadata was put back")
                if cell.cell_type != meta["cell_type"]:
                    self._retype(cell, meta["cell_type"])
                cell.metadata["nbgrader"] = from_dict(meta)
                if test and _norm(cell.source) not in (_norm(trusted[grade_id]["source"]),
                                                       _norm(released_source(trusted[grade_id]["source"]))) \
                        and not earlier(grade_id, cell, "source"):
                    notes.append(f"{what} `{grade_id}` was edited; it is graded with the assignment's version")
            if test or meta["locked"]:
                cell.source = trusted[grade_id]["source"]
                cell.metadata["editable"], cell.metadata["deletable"] = False, False
            present[grade_id] = cell

        for note in notes:
            self.log.warning("%s/%s (student %s): %s", assignment_id, notebook_id, plain(student), plain(note))
        if notes:
            text = (f"**{NOTE_MARKER}.** This submission changed cells that the grading relies on. "
                    "They were restored before grading; please check that the grades below are what you expect.\n\n"
                    + "\n".join(f"* {n}" for n in notes))  # the notes' only student text is escaped where made
            nb.cells.insert(0, from_dict({"cell_type": "markdown", "metadata": {"tags": ["autograder-note"]},
                                          "source": text, "id": "gptlab-autograder-note"}))
        resources.setdefault("gptlab", {})["restored"] = notes
        return nb, resources

    # -- helpers ---------------------------------------------------------------------------------

    @staticmethod
    def strip_unnamed(cells) -> list[str]:
        """Make ordinary the cells whose nbgrader metadata has no grade id (nbgrader would refuse the whole
        notebook, and skip the student; nothing of such a cell is the release's); a note for each that claimed
        to be graded, a solution, locked or a task. The metadata is already a mapping (checked before)."""
        notes = []
        for cell in cells:
            meta = cell.metadata.get("nbgrader")
            if meta is None or meta.get("grade_id") not in (None, ""):
                continue
            flags = [k for k in ("grade", "solution", "locked", "task") if meta.get(k)]
            del cell.metadata["nbgrader"]
            if flags:
                notes.append(f"a cell carried nbgrader metadata ({', '.join(flags)}) without a grade id; it is "
                             "graded as an ordinary cell")
        return notes

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
        substituted = str(nb.metadata.pop(SUBSTITUTED, "") or "")  # ReadAnyNotebook read the release instead
        parts = part_results(data)
        # the verdict is data (results.json's extra_data.gptlab, through grade_many): not graded -> every
        # check cell says why and scores 0, and FlagForReview flags it in the gradebook
        status = result.get("status")
        problem = (result.get("problem") or result.get("message") or status) if status in NOT_GRADED else ""
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
        if substituted:
            notes = (tr("nbgrader could not read this notebook ({why}): the notebook below is the assignment as "
                        "released; the grades are those of the submitted file").format(why=substituted)
                     + ("\n" + notes if notes else ""))
        if problem or notes:
            text = grader_note(problem, notes)
            at = 1 if nb.cells and NOTE_MARKER in str(nb.cells[0].get("source", "")) else 0
            nb.cells.insert(at, from_dict({"cell_type": "markdown", "metadata": {"tags": ["autograder-note"]},
                                           "source": text, "id": "gptlab-grader-report"}))
        # the verdict's problem (hung, tampered, not graded), else what the sandbox had to stop (a fork bomb, a
        # flood, a death) is named in the log as well: the log's detail only, the status is the verdict's
        stopped = [line for line in notes.splitlines() if _STOPPED.search(line)]
        cause = (problem.splitlines()[0] if problem else (result.get("problem") or "") if status != "ok" else "") \
            or "; ".join(stopped[:3])
        level = self.log.warning if cause else self.log.info
        level("%s/%s (student %s): graded in the sandbox: %s, %s points%s", assignment_id, notebook_id, plain(student),
              status, result.get("total"), plain(f" ({bounded(cause, NOTE_LINE_CHARS)})") if cause else "")
        resources.setdefault("gptlab", {})["grade"] = {"status": status, "cause": result.get("cause", ""),
                                                       "problem": result.get("problem", "") or substituted,
                                                       "cells": graded, "flag": bool(substituted)}
        return nb, resources


def grader_note(problem: str, notes: str) -> str:
    """The markdown of the grader's note at the top of the autograded notebook (so of the feedback): why it
    was not graded, and the grader's notes. They quote the student's code and its error messages: escaped
    text (no HTML, no markdown of the student's), each line bounded, at most 20 lines."""
    from autograder.i18n import tr

    text = f"**{GRADER_MARKER}.** " + (markdown(tr("This notebook could not be graded: {problem}")
                                                .format(problem=bounded(problem, NOTE_LINE_CHARS)))
                                       + "\n\n" if problem else "")
    return text + "\n".join(f"* {markdown(bounded(line, NOTE_LINE_CHARS))}"
                             for line in str(notes).splitlines()[:20] if line.strip())


class FlagForReview(NbGraderPreprocessor):
    """After ``SaveAutoGrades``: a notebook that was not graded (unreadable, the grader could not run, the
    time limit), hung or tampered with is flagged in the gradebook, and its check cells need a manual grade,
    so that formgrader lists it and its 0 never reads as a grade. Reads ``GradeInSandbox``'s verdict."""

    def preprocess(self, nb, resources):
        from nbgrader.api import Gradebook

        verdict = resources.get("gptlab", {}).get("grade") or {}
        status = verdict.get("status")
        if status is None or (status == "ok" and not verdict.get("flag")):
            return nb, resources
        info = resources["nbgrader"]
        flag(info["db_url"], info["assignment"], info["notebook"], info["student"],
             [cell.metadata["nbgrader"]["grade_id"] for cell in nb.cells
              if utils.is_grade(cell) and not utils.is_solution(cell)],
             manual=status in NOT_GRADED, gradebook=Gradebook)
        self.log.warning("%s/%s (student %s): flagged for review: %s (%s)", info["assignment"], info["notebook"],
                         plain(info["student"]), status, plain(verdict.get("problem") or verdict.get("cause") or ""))
        return nb, resources


def flag(db_url, assignment_id, notebook_id, student, grade_ids, manual: bool, gradebook=None) -> None:
    """Flag a submitted notebook; ``manual``: its check cells' grades also need a manual grade (not graded)."""
    if gradebook is None:
        from nbgrader.api import Gradebook as gradebook
    with gradebook(db_url) as gb:
        submission = gb.find_submission_notebook(notebook_id, assignment_id, student)
        submission.flagged = True
        if manual:
            for grade_id in grade_ids:
                gb.find_grade(grade_id, notebook_id, assignment_id, student).needs_manual_grade = True
        gb.db.commit()


def _set_extra_credit(db_url, notebook_id, assignment_id, student, extra) -> None:
    from nbgrader.api import Gradebook

    with Gradebook(db_url) as gb:
        for grade_id, value in extra.items():
            gb.find_grade(grade_id, notebook_id, assignment_id, student).extra_credit = float(value)
        gb.db.commit()


def results_dir(course_root, assignment_id: str, notebook_id: str) -> Path:
    return Path(course_root) / RESULTS_FOLDER / assignment_id / notebook_id


__all__ = ["RepairStructure", "GradeInSandbox", "FlagForReview", "ReadAnyNotebook", "flag", "grader_note",
           "structure_problem", "released_source", "part_of", "part_results", "cell_score",
           "results_dir", "NOTE_MARKER", "GRADER_MARKER", "NotebookNode"]
