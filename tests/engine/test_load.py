"""engine/load.py: the locator and the reader on every kind of input they may be handed."""

from __future__ import annotations

import json
import os

import pytest

from autograder.engine import load
from autograder.engine.load import Refused, SubmissionError


def cell(source, cell_type="code", **metadata):
    return {"cell_type": cell_type, "metadata": metadata, "source": source, "outputs": [], "execution_count": None}


def notebook(*cells, **extra) -> str:
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": list(cells), **extra})


def write(path, text: str | bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def sources(program) -> list[str]:
    return [c.source.strip() for c in program.cells]


# ---- notebooks ------------------------------------------------------------------------------


def test_notebook_v4_code_cells_in_order_with_notebook_numbers(tmp_path):
    nb = write(tmp_path / "a.ipynb", notebook(cell("# Title", "markdown"), cell(["x = 1\n", "y = 2"]), cell("z = 3")))
    program = load.read_submission(nb)
    assert sources(program) == ["x = 1\ny = 2", "z = 3"]
    assert [c.number for c in program.cells] == [2, 3]  # markdown cells count, as a student counts
    assert program.path == nb


def test_nbformat_3_worksheets_are_read(tmp_path):
    v3 = {"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": [{"cells": [
        {"cell_type": "markdown", "source": "hi", "metadata": {}},
        {"cell_type": "code", "input": ["a = 1\n", "b = a + 1"], "metadata": {}, "outputs": []},
        {"cell_type": "code", "input": "c = 3", "metadata": {"tags": ["slow"]}, "outputs": []},
    ]}]}
    program = load.read_submission(write(tmp_path / "old.ipynb", json.dumps(v3)))
    assert sources(program) == ["a = 1\nb = a + 1"]
    assert any("slow" in note for note in program.skipped)


def test_cells_tagged_slow_or_skip_grading_are_skipped_with_a_note(tmp_path):
    nb = write(tmp_path / "a.ipynb", notebook(cell("keep = 1"), cell("train()", tags=["slow"]),
                                              cell("plot()", tags=["x", "skip-grading"]), cell("keep2 = 2", tags=["other"])))
    program = load.read_submission(nb)
    assert sources(program) == ["keep = 1", "keep2 = 2"]
    assert program.skipped == ["cell 2: tagged slow", "cell 3: tagged skip-grading"]


def test_nbgrader_check_cells_skipped_solution_cells_kept(tmp_path):
    check = cell("check('head', globals())", nbgrader={"grade": True, "solution": False, "grade_id": "check_head", "points": 1})
    answer = cell("class Head: pass", nbgrader={"grade": False, "solution": True, "grade_id": "head"})
    graded_answer = cell("class Both: pass", nbgrader={"grade": True, "solution": True, "grade_id": "both"})
    program = load.read_submission(write(tmp_path / "a.ipynb", notebook(answer, check, graded_answer)))
    assert sources(program) == ["class Head: pass", "class Both: pass"]


def test_list_or_string_metadata_reads_as_empty(tmp_path):
    cells = [cell("a = 1"), cell("b = 2"), cell("c = 3")]
    cells[0]["metadata"] = ["slow"]
    cells[1]["metadata"] = {"tags": "slow", "nbgrader": ["grade"]}
    cells[2]["metadata"] = None
    program = load.read_submission(write(tmp_path / "a.ipynb", notebook(*cells)))
    assert sources(program) == ["a = 1", "b = 2", "c = 3"]


def test_ipython_magics_marked_for_the_worker_and_cell_magics(tmp_path):
    nb = write(tmp_path / "a.ipynb", notebook(cell("%matplotlib inline\nx = 1"), cell("%%time\ny = 2"),
                                              cell("%%bash\nrm -rf /"), cell("!pip install torch\nz = 3")))
    program = load.read_submission(nb)
    assert sources(program) == ["%matplotlib inline\nx = 1", "y = 2", "!pip install torch\nz = 3"]
    assert all(c.ipython for c in program.cells)  # rewritten where it runs, under the cell's limit
    assert program.skipped == ["cell 3: cell magic %%bash is not run by the grader"]
    python = load.to_python("%matplotlib inline\nx = 1\n!ls\n")
    compile(python, "<cell>", "exec")
    assert "x = 1" in python and "%matplotlib" not in python and "!ls" not in python


def test_invalid_json_and_json_that_is_no_notebook(tmp_path):
    with pytest.raises(SubmissionError, match="not valid JSON"):
        load.read_submission(write(tmp_path / "bad.ipynb", '{"cells": [}'))
    with pytest.raises(SubmissionError, match="no list of cells"):
        load.read_submission(write(tmp_path / "list.ipynb", "[1, 2, 3]"))
    with pytest.raises(SubmissionError, match="no list of cells"):
        load.read_submission(write(tmp_path / "dict.ipynb", '{"cells": "x = 1"}'))


def test_json_value_count_and_nesting_are_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(load, "MAX_JSON_VALUES", 50)
    many = notebook(*[cell(f"x{i} = {i}") for i in range(60)])
    with pytest.raises(SubmissionError, match="JSON values"):
        load.read_submission(write(tmp_path / "many.ipynb", many))
    monkeypatch.setattr(load, "MAX_JSON_VALUES", 10_000_000)
    deep = '{"cells": ' + "[" * 100_000 + "]" * 100_000 + "}"
    with pytest.raises(SubmissionError, match="nested too deeply"):
        load.read_submission(write(tmp_path / "deep.ipynb", deep))


def test_file_over_the_size_bound_is_refused(tmp_path):
    path = write(tmp_path / "big.ipynb", notebook(cell("x = 1" + " " * 5000)))
    assert load.read_bytes_safely(path, limit=10_000) == path.read_bytes()
    with pytest.raises(SubmissionError, match="limit"):
        load.read_bytes_safely(path, limit=1000)


def test_binary_and_non_utf8_files_are_refused(tmp_path):
    with pytest.raises(SubmissionError, match="binary"):
        load.read_submission(write(tmp_path / "a.ipynb", b"PK\x03\x04\x00\x00"))
    with pytest.raises(SubmissionError, match="UTF-8"):
        load.read_submission(write(tmp_path / "b.ipynb", b'{"cells": ["\xff"]}'))


# ---- modules --------------------------------------------------------------------------------


def test_module_with_bom_crlf_and_percent_cells_keeps_line_numbers(tmp_path):
    text = "\ufeffimport torch\r\n# %% second\r\nx = 1\r\ny = 2\r\n"
    program = load.read_submission(write(tmp_path / "sub.py", text.encode("utf-8")))
    assert len(program.cells) == 2
    assert "\ufeff" not in program.cells[0].source and "\r" not in program.cells[1].source
    assert program.cells[0].source == "import torch\n"
    # the second cell's lines keep their numbers in the file (line 3 is "x = 1")
    assert program.cells[1].source.splitlines()[2] == "x = 1"
    assert not any(c.ipython for c in program.cells)


def test_module_with_pep263_coding_line(tmp_path):
    text = "# -*- coding: latin-1 -*-\nname = 'café'\n"
    program = load.read_submission(write(tmp_path / "sub.py", text.encode("latin-1")))
    namespace = {}
    exec(program.cells[0].source, namespace)
    assert namespace["name"] == "café"


def test_module_with_an_unknown_coding_or_bad_bytes_is_refused(tmp_path):
    with pytest.raises(SubmissionError, match="decoded"):
        load.read_submission(write(tmp_path / "a.py", b"# coding: no-such-codec\nx = 1\n"))
    with pytest.raises(SubmissionError, match="decoded"):
        load.read_submission(write(tmp_path / "b.py", b"x = '\xff\xfe'\n"))


def test_other_suffix_needs_to_look_like_a_notebook(tmp_path):
    assert sources(load.read_submission(write(tmp_path / "a.json", notebook(cell("x = 1"))))) == ["x = 1"]
    with pytest.raises(SubmissionError, match="expected a .ipynb"):
        load.read_submission(write(tmp_path / "a.txt", "x = 1\n"))


# ---- the locator ----------------------------------------------------------------------------


def test_folder_with_one_notebook_anywhere(tmp_path):
    nb = write(tmp_path / "sub" / "deep" / "mine.ipynb", notebook())
    write(tmp_path / "helper.py", "x = 1\n")
    assert load.choose_submission(tmp_path) == (nb, "")


def test_folder_with_several_notebooks_refused_or_shallowest(tmp_path):
    write(tmp_path / "b.ipynb", notebook())
    write(tmp_path / "a" / "a.ipynb", notebook())
    write(tmp_path / "c.ipynb", notebook())
    with pytest.raises(SubmissionError, match="3 notebooks"):
        load.choose_submission(tmp_path)
    chosen, note = load.choose_submission(tmp_path, several="shallowest")
    assert chosen == tmp_path / "b.ipynb" and "graded b.ipynb" in note


def test_gpt_lab_among_several_is_chosen(tmp_path):
    write(tmp_path / "a.ipynb", notebook())
    named = write(tmp_path / "work" / "gpt_lab.ipynb", notebook())
    for several in ("refuse", "shallowest"):
        chosen, note = load.choose_submission(tmp_path, several=several)
        assert chosen == named and "work/gpt_lab.ipynb" in note
    assert load.locate_submission(tmp_path) == named


def test_folder_with_only_a_module(tmp_path):
    module = write(tmp_path / "gpt_lab.py", "x = 1\n")
    write(tmp_path / "pkg" / "other.py", "y = 2\n")  # below the top level: not a candidate
    assert load.choose_submission(tmp_path) == (module, "")
    write(tmp_path / "second.py", "z = 3\n")
    with pytest.raises(SubmissionError, match="no notebook"):
        load.choose_submission(tmp_path)


def test_empty_folder_and_hidden_or_checkpoint_copies(tmp_path):
    with pytest.raises(SubmissionError, match="no notebook"):
        load.choose_submission(tmp_path)
    write(tmp_path / ".ipynb_checkpoints" / "gpt_lab-checkpoint.ipynb", notebook())
    write(tmp_path / ".hidden.ipynb", notebook())
    with pytest.raises(SubmissionError, match="no notebook"):
        load.choose_submission(tmp_path)
    real = write(tmp_path / "gpt_lab.ipynb", notebook())
    assert load.choose_submission(tmp_path) == (real, "")


def test_missing_path(tmp_path):
    with pytest.raises(SubmissionError, match="does not exist"):
        load.choose_submission(tmp_path / "nothing.ipynb")


def test_symlink_refused_never_followed(tmp_path):
    target = write(tmp_path / "reference" / "gpt_lab.ipynb", notebook(cell("secret = 1")))
    link = tmp_path / "sub.ipynb"
    link.symlink_to(target)
    with pytest.raises(Refused, match="symbolic link"):
        load.choose_submission(link)
    with pytest.raises(Refused, match="symbolic link"):
        load.read_submission(link)
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "gpt_lab.ipynb").symlink_to(target)
    with pytest.raises(Refused, match="symbolic link"):
        load.choose_submission(folder)
    with pytest.raises(SubmissionError):  # the reader itself does not follow a link either
        load.read_bytes_safely(link)
    assert sources(load.read_submission(link, trusted=True)) == ["secret = 1"]  # the instructor's own files


def test_linked_folder_is_refused_not_entered(tmp_path):
    write(tmp_path / "elsewhere" / "gpt_lab.ipynb", notebook())
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "notebooks.ipynb").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(Refused):
        load.choose_submission(sub)


def test_fifo_refused_without_blocking(tmp_path):
    fifo = tmp_path / "gpt_lab.ipynb"
    os.mkfifo(fifo)
    with pytest.raises(Refused, match="FIFO"):
        load.choose_submission(fifo)
    with pytest.raises(Refused, match="FIFO"):
        load.choose_submission(tmp_path)
    with pytest.raises(Refused, match="FIFO"):
        load.read_bytes_safely(fifo)  # O_NONBLOCK: returns at once


def test_hard_link_refused(tmp_path):
    original = write(tmp_path / "reference.ipynb", notebook())
    os.link(original, tmp_path / "sub.ipynb")
    with pytest.raises(Refused, match="hard link"):
        load.choose_submission(tmp_path / "sub.ipynb")
    folder = tmp_path / "folder"
    folder.mkdir()
    os.link(original, folder / "gpt_lab.ipynb")
    with pytest.raises(Refused, match="hard link"):
        load.choose_submission(folder)


def test_definitions_only_keeps_definitions(tmp_path):
    program = load.read_submission(write(tmp_path / "a.py", "import torch\nx = 3\ny = torch.ones(2)\n"
                                         "def f():\n    return 1\nprint('demo')\nclass C:\n    pass\n"))
    kept = load.definitions_only(program).cells[0].source
    assert "import torch" in kept and "x = 3" in kept and "def f" in kept and "class C" in kept
    assert "print" not in kept and "torch.ones" not in kept
