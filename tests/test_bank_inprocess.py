"""Every bank's verdicts, graded in this process (tests/bank/inprocess.py): the fast tier's proof of
what the end-to-end bank tests (tests/test_mutants.py, ... marked ``e2e_bank``) prove.

For every case of every bank of tests/bank/banks.py: the rule of its kind holds (a mutant loses points
in its part only, an alternative keeps them all, a mistake gives its hint from one visible check), and
every check's status and the score equal the snapshot's (tests/bank/grades.json): no verdict changed.
The reference and the untouched assignment are graded too. A program is graded once per content.
"""

from __future__ import annotations

import pytest

from tests import grade_snapshot
from tests.bank import banks, inprocess
from tests.conftest import ASSIGNMENT, REFERENCE, ASSIGNMENT_ID, REF_ID, EditError, read_reference, write_edit

CASES = banks.all_cases()


@pytest.fixture(scope="module")
def inprocess_bank(tmp_path_factory):
    """Every case of every bank (and the reference and the assignment) graded in one batch
    (``inprocess.grade_many``: each content once, two processes). {id: result}; edit errors kept."""
    folder = tmp_path_factory.mktemp("inprocess_bank")
    notebook = read_reference()
    paths, errors = {REF_ID: REFERENCE, ASSIGNMENT_ID: ASSIGNMENT}, {}
    for _, edit in CASES:
        try:
            paths[edit.id] = write_edit(edit, folder, notebook)
        except EditError as exc:
            errors[edit.id] = str(exc)
    graded = inprocess.grade_many(list(paths.values()))
    return {"results": {i: inprocess.result(graded[p], p) for i, p in paths.items()}, "edit_errors": errors}


@pytest.fixture(scope="module")
def reference_grade(inprocess_bank):
    return inprocess_bank["results"][REF_ID]


@pytest.mark.parametrize("bank,edit", CASES, ids=[f"{b.name}-{e.id}" for b, e in CASES])
def test_bank_case_inprocess(bank, edit, inprocess_bank, reference_grade):
    assert edit.id not in inprocess_bank["edit_errors"], inprocess_bank["edit_errors"][edit.id]
    r = inprocess_bank["results"][edit.id]
    problems = banks.problems(bank, edit, r, reference_grade)
    assert not problems, "\n".join(problems)
    diffs = grade_snapshot.compare("batch", edit.id, r["data"])
    assert not diffs, f"{len(diffs)} verdicts differ from the snapshot:\n" + "\n".join(diffs[:20])


def test_reference_inprocess(reference_grade):
    assert not banks.reference_problems(reference_grade)
    assert not grade_snapshot.compare("batch", REF_ID, reference_grade["data"])


def test_assignment_inprocess(inprocess_bank, reference_grade):
    r = inprocess_bank["results"][ASSIGNMENT_ID]
    assert not banks.assignment_problems(r, reference_grade)
    assert not grade_snapshot.compare("batch", ASSIGNMENT_ID, r["data"])


def test_every_case_has_a_snapshot():
    """Every verdict is compared: a case missing from tests/bank/grades.json would pass unchecked."""
    known = grade_snapshot._load()["cases"]
    missing = [e.id for _, e in CASES if f"batch/{e.id}" not in known]
    assert len(missing) <= 0.2 * len(CASES), f"{len(missing)} cases are not in the snapshot (record them): {missing}"


def test_rules_see_a_wrong_grade(reference_grade):
    """The rules are not vacuous: the reference's own grade, presented as a mutant's, an alternative's
    that lost a point, or a mistake's, is judged wrong."""
    mutant = banks.bank("mutants").cases()[0]
    assert banks.problems(banks.bank("mutants"), mutant, reference_grade, reference_grade)
    mistake = banks.bank("mistakes").cases()[0]
    assert banks.problems(banks.bank("mistakes"), mistake, reference_grade, reference_grade)
    alternative = banks.bank("alternatives").cases()[0]
    poorer = dict(reference_grade, parts=dict(reference_grade["parts"], head=0.0))
    assert banks.problems(banks.bank("alternatives"), alternative, poorer, reference_grade)
    assert banks.assignment_problems(reference_grade, reference_grade)
