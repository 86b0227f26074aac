"""Execute the notebooks with nbclient (cells tagged `slow` removed first, as the grader skips them).

(a) The reference notebook runs top to bottom without errors (check cells: once autograder/notebook.py exists).
(b) The student notebook runs top to bottom with allow_errors, and every error is a NotImplementedError raised
    by a stub: no NameError or other fallout from an earlier failed cell.
"""
import os
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "solutions" / "gpt_lab.ipynb"
RELEASE = ROOT / "assignment" / "gpt_lab.ipynb"
HAVE_CHECKER = (ROOT / "autograder" / "notebook.py").exists()


def is_check(cell):
    return cell.metadata.get("nbgrader", {}).get("grade_id", "").startswith("check_")


def execute(path: Path, drop_checks: bool = False) -> nbformat.NotebookNode:
    from nbclient import NotebookClient

    nb = nbformat.read(str(path), as_version=4)
    nb.cells = [c for c in nb.cells if "slow" not in c.metadata.get("tags", [])
                and not (drop_checks and is_check(c))]
    # the kernel's `python` is the one running the tests (the kernelspec says plain "python")
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    old = os.environ.copy()
    os.environ.update(env)
    try:
        NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    return nb


def errors(cell):
    return [o for o in cell.get("outputs", []) if o.output_type == "error"]


@pytest.fixture(scope="module")
def reference_run():
    return execute(SOURCE)


def test_reference_runs_without_errors(reference_run):
    bad = {c.id: f"{e.ename}: {e.evalue}" for c in reference_run.cells if c.cell_type == "code" and not is_check(c)
           for e in errors(c)}
    assert not bad, bad


@pytest.mark.skipif(not HAVE_CHECKER, reason="autograder/notebook.py (the check cells' checker) not written yet")
def test_reference_passes_every_check(reference_run):
    checks = [c for c in reference_run.cells if is_check(c)]
    from autograder import parts

    assert len(checks) == len(parts.PARTS) == 13  # one check cell per part of the registry
    bad = {c.id: f"{e.ename}: {e.evalue}" for c in checks for e in errors(c)}
    assert not bad, bad
    stderr = {c.id: o.text for c in checks for o in c.outputs if o.output_type == "stream" and o.name == "stderr"}
    assert not stderr, f"nbgrader scores a test cell with stderr output 0: {stderr}"


def test_student_notebook_fails_only_with_not_implemented():
    nb = execute(RELEASE, drop_checks=True)  # check cells' behaviour on stubs is the autograder's business
    failed = {}
    for c in nb.cells:
        for e in errors(c):
            failed[c.id] = e.ename
    others = {cid: ename for cid, ename in failed.items() if ename != "NotImplementedError"}
    assert not others, f"errors other than NotImplementedError (a cell depends on a failed one?): {others}"
    # each part's demo fails on its stub, and the cells before the first part run fine
    assert {"tokenizer-demo", "get-batch-demo", "attention-trick-demo", "head-demo", "gpt-demo", "estimate-loss-demo",
            "quiz-code"} <= set(failed)
    assert not {"setup", "load-text", "vocab", "encode-split", "trick", "config"} & set(failed)


def test_check_cell_names_the_students_cell_and_line(tmp_path):
    """In Jupyter, a check cell's message names the failing cell by what it defines (not "cell 33",
    which means nothing there), quotes the student's own line, and states the error once."""
    from tests.bank.mistakes import MISTAKES
    from tests.conftest import apply_edit, read_reference

    mistake = next(m for m in MISTAKES if m.id == "mk_head_mask_not_sliced")
    nb = apply_edit(read_reference(), mistake)
    last = next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == "check_head")
    nb.cells = nb.cells[: last + 1]  # the lab up to the head's check cell
    path = tmp_path / "gpt_lab.ipynb"
    nbformat.write(nb, path)
    text = "".join(o.get("text", "") for o in execute(path).cells[-1].outputs if o.output_type == "stream")
    assert "[FAIL] head: output shape" in text, text
    owner = text.split("[FAIL] head: output shape", 1)[1].split("[PASS]")[0].split("[FAIL]")[0]
    assert "in the cell defining `Head`" in owner and "in forward" in owner, owner
    assert "self.tril == 0" in owner or "wei @ v" in owner, f"the student's failing line is not shown: {owner}"
    assert "(cell " not in owner, f"a cell number means nothing in Jupyter: {owner}"
    error = owner.split("raised RuntimeError on x of shape")[1].split(": ", 1)[1].split(". Hint")[0]
    assert owner.count(error) == 1, f"the error is repeated: {owner}"
    assert text.count("slice it to the first T rows") == 1, f"the cause is repeated by other checks: {text}"
