"""Shared test helpers: the reference notebook, edits of it (tests/bank), and one batched grading
run of every edit the session's tests need (``bank_grades``)."""

from __future__ import annotations

import copy
import math
import shutil
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parent.parent
REFERENCE = REPO / "solutions" / "gpt_lab.ipynb"
ASSIGNMENT = REPO / "assignment" / "gpt_lab.ipynb"

# ids in the bank batch that are not edits (upper case: edit ids are lower case)
REF_ID, REF_AGAIN_ID, ASSIGNMENT_ID = "REFERENCE", "REFERENCE_AGAIN", "ASSIGNMENT"
BANK_JOBS = 2


class EditError(Exception):
    pass


def read_reference() -> nbformat.NotebookNode:
    return nbformat.read(REFERENCE, as_version=4)


def code_cell(nb, grade_id: str):
    cells = [c for c in nb.cells if c.cell_type == "code"
             and (c.metadata.get("nbgrader") or {}).get("grade_id") == grade_id]
    if len(cells) != 1:
        raise EditError(f"expected one code cell with grade_id {grade_id!r}, found {len(cells)}")
    return cells[0]


def apply_edit(nb, edit) -> nbformat.NotebookNode:
    """A copy of nb with ``edit.old`` replaced by ``edit.new`` in the cell ``edit.cell_grade_id``;
    ``old`` must occur there exactly once."""
    nb = copy.deepcopy(nb)
    cell = code_cell(nb, edit.cell_grade_id)
    count = cell.source.count(edit.old)
    if count != 1:
        raise EditError(f"edit {edit.id}: {edit.old!r} occurs {count} times in cell {edit.cell_grade_id}, expected once")
    cell.source = cell.source.replace(edit.old, edit.new)
    for c in nb.cells:  # a mutant's notebook carries no stale outputs
        if c.cell_type == "code":
            c.outputs, c.execution_count = [], None
    return nb


def write_edit(edit, folder: Path, reference=None) -> Path:
    if hasattr(edit, "write"):  # a tests.bank.Rewrite writes its own submission (a notebook or a .py)
        return edit.write(folder, reference if reference is not None else read_reference())
    nb = apply_edit(reference if reference is not None else read_reference(), edit)
    folder = Path(folder) / edit.id
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "gpt_lab.ipynb"
    nbformat.write(nb, path)
    return path


def same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=0, abs_tol=1e-6)


def failures(result: dict, part: str | None = None, limit: int = 3) -> str:
    """The grader's messages for the failed checks (of one part), for assertion messages."""
    import json

    try:
        data = json.loads(Path(result["json"]).read_text())
    except (OSError, ValueError, KeyError):
        return result.get("message", "")
    lines = [f"{t['name']}: {str(t.get('output', '')).splitlines()[0] if t.get('output') else ''}"
             for t in data.get("tests", [])
             if t.get("status") != "passed" and (part is None or (t.get("tags") or [""])[0] == part)]
    more = f" (+{len(lines) - limit} more)" if len(lines) > limit else ""
    return "; ".join(lines[:limit]) + more or result.get("message", "")


# tests that judge every case of every bank whatever else the session selected
ALL_CASES_TESTS = ("test_inprocess_and_end_to_end_agree_on_every_case",)


def _collected_edits(session) -> list:
    """The edits of tests/bank/banks.py that this session's end-to-end bank tests judge: the cases its
    parametrised tests name, or every case when a test of ``ALL_CASES_TESTS`` runs."""
    from tests.bank import Edit, Rewrite, banks

    items = [item for item in session.items if "bank_grades" in getattr(item, "fixturenames", ())]
    if any(item.originalname in ALL_CASES_TESTS for item in items):
        wanted = None
    else:
        wanted = {v.id for item in items for v in getattr(getattr(item, "callspec", None), "params", {}).values()
                  if isinstance(v, (Edit, Rewrite))}
    out, seen = [], set()
    for _, edit in banks.all_cases():
        if edit.id not in seen and (wanted is None or edit.id in wanted):
            seen.add(edit.id)
            out.append(edit)
    return out


@pytest.fixture(scope="session")
def bank_grades(request, tmp_path_factory):
    """Grade, in ONE grade_many batch (jobs=2): the reference (twice, as two students), the
    untouched assignment, and every case of every bank (tests/bank/banks.py), each content once
    (37 mistakes are byte-identical to mutants: their results are the mutants').
    Returns {"results": student -> result, "edit_errors": edit id -> message, "out": out dir}."""
    import hashlib

    from instructor.grade_class import grade_many

    edits = _collected_edits(request.session)
    root = tmp_path_factory.mktemp("bank")
    subs = root / "submissions"
    paths: dict[str, Path] = {}
    for sid in (REF_ID, REF_AGAIN_ID):  # the same file under the same name, in two folders
        (subs / sid).mkdir(parents=True)
        paths[sid] = Path(shutil.copy(REFERENCE, subs / sid / "gpt_lab.ipynb"))
    (subs / ASSIGNMENT_ID).mkdir()
    paths[ASSIGNMENT_ID] = Path(shutil.copy(ASSIGNMENT, subs / ASSIGNMENT_ID / "gpt_lab.ipynb"))
    reference = nbformat.read(paths[REF_ID], as_version=4)
    edit_errors, first, same_as = {}, {}, {}
    for edit in edits:
        try:
            path = write_edit(edit, subs, reference)
        except EditError as exc:
            edit_errors[edit.id] = str(exc)
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest() + path.suffix
        if digest in first:
            same_as[edit.id] = first[digest]  # byte-identical to a program already in the batch
        else:
            first[digest] = edit.id
            paths[edit.id] = path
    # graded against the same snapshot of the reference that the edits were made from
    results = grade_many(paths, root / "out", jobs=BANK_JOBS, timeout=300, reference=paths[REF_ID])
    for edit_id, twin in same_as.items():
        results[edit_id] = results[twin]
    return {"results": results, "edit_errors": edit_errors, "out": root / "out", "same_as": same_as}


def pytest_sessionfinish(session):
    """GPTLAB_GRADES_SNAPSHOT=record: write the grades this session obtained (tests/grade_snapshot.py)."""
    from tests import grade_snapshot

    grade_snapshot.write_recorded()
