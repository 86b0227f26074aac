"""nbgrader preprocessors for the gpt-lab course (``course/nbgrader_config.py`` wires them in).

``SkipSlowCells`` (autograde stage, before ``Execute``)
    Removes the cells tagged ``slow`` (training runs, experiments) so that they never run while
    autograding. A cell that carries nbgrader metadata (a solution, test or locked cell) is never
    removed, whatever its tags: tagging a check cell ``slow`` cannot make it disappear.

``RestoreTestCells`` (sanitize stage, before ``OverwriteCells``)
    nbgrader gives 0 points, without a word, to a test cell that a student deleted or whose cell
    metadata was stripped (copying cells into a fresh notebook, some editors, ``nbstripout`` with
    its metadata options). This preprocessor compares the submission with the gradebook's copy of
    the assignment and, for every graded cell:

    * present but edited: reported (``OverwriteCells`` then restores its source from the gradebook);
    * present without its nbgrader metadata (found by its nbformat cell id, or by its released
      source): the metadata is put back;
    * missing: the gradebook's cell is inserted again after the nearest earlier graded cell that
      is still there (the end of the notebook if none), so its check runs.

    Every case is logged as a warning naming the ``grade_id`` and listed in a markdown note
    inserted at the top of the autograded notebook (and so in the feedback). It never zeroes a
    cell itself.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from nbformat.notebooknode import NotebookNode, from_dict
from nbgrader import utils
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Unicode

NOTE_MARKER = "gpt-lab autograder note"
_HIDDEN = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS[^\n]*\n.*?^[ \t]*### END HIDDEN TESTS[^\n]*(\n|\Z)",
                     re.MULTILINE | re.DOTALL)


def released_source(source: str) -> str:
    """A test cell's source as the students got it: hidden test regions removed."""
    return _HIDDEN.sub("", source)


def _norm(source: str) -> str:
    return "\n".join(line.rstrip() for line in source.strip().splitlines())


class SkipSlowCells(NbGraderPreprocessor):
    """Remove cells tagged ``slow`` (``tag``) before the notebook is executed."""

    tag = Unicode("slow", help="cells with this tag are removed before autograding runs the notebook").tag(config=True)

    def preprocess(self, nb, resources):
        kept, dropped = [], 0
        for cell in nb.cells:
            graded = utils.is_grade(cell) or utils.is_solution(cell) or utils.is_locked(cell)
            if self.tag in cell.metadata.get("tags", []) and not graded:
                dropped += 1
                continue
            kept.append(cell)
        nb.cells = kept
        if dropped:
            self.log.info("removed %d cell(s) tagged %r: they do not run while autograding", dropped, self.tag)
        return nb, resources


class RestoreTestCells(NbGraderPreprocessor):
    """Find graded cells that a submission deleted, edited or stripped of metadata; restore and report them."""

    def preprocess(self, nb, resources):
        from nbgrader.api import Gradebook

        info = resources["nbgrader"]
        notebook_id, assignment_id = info["notebook"], info["assignment"]
        student = info.get("student", "?")
        with Gradebook(info["db_url"]) as gb:
            source_nb = gb.find_notebook(notebook_id, assignment_id)
            sources = {c.name: (c.cell_type, c.locked, c.source, c.checksum) for c in source_nb.source_cells}
            graded = {c.name: float(c.max_score) for c in source_nb.grade_cells}
            solutions = {c.name for c in source_nb.solution_cells}
        order, cell_ids = self._source_order(resources, notebook_id, assignment_id)
        order = [g for g in order if g in sources] + sorted(g for g in sources if g not in order)

        present = {}
        for index, cell in enumerate(nb.cells):
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if grade_id and (utils.is_grade(cell) or utils.is_solution(cell) or utils.is_locked(cell)):
                present[grade_id] = cell
        notes = []
        for grade_id in order:
            if grade_id not in graded:
                continue
            cell_type, locked, source, checksum = sources[grade_id]
            test = grade_id not in solutions
            what = "test cell" if test else "graded answer cell"
            if grade_id in present:
                cell = present[grade_id]
                if test and _norm(cell.source) not in (_norm(source), _norm(released_source(source))):
                    notes.append(f"{what} `{grade_id}` was edited; it is graded with the assignment's version")
                continue
            found = self._stripped(nb, grade_id, cell_ids.get(grade_id), source, test)
            if found is not None:
                found.metadata["nbgrader"] = self._metadata(grade_id, cell_type, locked, checksum, graded[grade_id],
                                                            not test)
                if test:
                    found.source = source
                present[grade_id] = found
                notes.append(f"{what} `{grade_id}` had lost its nbgrader metadata; the metadata was restored")
                continue
            taken = {c.get("id") for c in nb.cells}
            new_id = cell_ids.get(grade_id)
            if not new_id or new_id in taken:
                new_id = f"restored-{grade_id}"[:64]
            cell = self._new_cell(grade_id, cell_type, locked, source, checksum, graded[grade_id], not test, new_id)
            anchor = self._anchor(order, grade_id, present)
            nb.cells.insert(nb.cells.index(anchor) + 1 if anchor is not None else len(nb.cells), cell)
            present[grade_id] = cell
            notes.append(f"{what} `{grade_id}` was missing from the submission; it was added back"
                         + (" (graded as an unanswered question)" if not test else ""))
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

    def _source_order(self, resources, notebook_id: str, assignment_id: str):
        """grade_ids in the source notebook's order, and their nbformat cell ids (empty if unreadable)."""
        try:
            from nbgrader.coursedir import CourseDirectory

            coursedir = CourseDirectory(parent=self.parent, config=self.config)
            path = Path(coursedir.format_path(coursedir.source_directory, ".", assignment_id)) / f"{notebook_id}.ipynb"
            nb = json.loads(path.read_text(encoding="utf-8"))
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
    def _stripped(nb, grade_id, cell_id, source, test):
        """The submission's cell that is ``grade_id`` without its metadata, or None."""
        candidates = [c for c in nb.cells if not c.metadata.get("nbgrader", {}).get("grade_id")]
        if cell_id:
            for c in candidates:
                if c.get("id") == cell_id:
                    return c
        if test:
            wanted = (_norm(source), _norm(released_source(source)))
            for c in candidates:
                if c.cell_type == "code" and _norm(c.source) in wanted:
                    return c
        return None

    @staticmethod
    def _metadata(grade_id, cell_type, locked, checksum, points, solution):
        return {"grade": True, "grade_id": grade_id, "locked": bool(locked), "solution": bool(solution),
                "points": points, "checksum": checksum, "cell_type": cell_type, "schema_version": 3}

    def _new_cell(self, grade_id, cell_type, locked, source, checksum, points, solution, cell_id):
        cell = {"cell_type": cell_type, "id": cell_id, "source": source,
                "metadata": {"nbgrader": self._metadata(grade_id, cell_type, locked, checksum, points, solution)}}
        if not solution:
            cell["metadata"].update(deletable=False, editable=False)
        if cell_type == "code":
            cell.update(outputs=[], execution_count=None)
        return from_dict(cell)

    @staticmethod
    def _anchor(order, grade_id, present):
        """The submission's cell after which a missing ``grade_id`` goes: the nearest earlier graded,
        solution or locked cell of the source that the submission has."""
        for earlier in reversed(order[:order.index(grade_id)]):
            if earlier in present:
                return present[earlier]
        return None


__all__ = ["SkipSlowCells", "RestoreTestCells", "released_source", "NOTE_MARKER", "NotebookNode"]
