"""engine/run_cells.py: cells executed one by one, each failure recorded, the load never stopped."""

from __future__ import annotations

import sys

import pytest

from autograder.engine import run_cells


def test_cells_share_one_namespace_and_a_failure_does_not_stop_the_next():
    ns = run_cells.new_namespace()
    first = run_cells.run_cell(ns, 1, "x = 2\n")
    second = run_cells.run_cell(ns, 2, "def f():\n    return 1 / 0\n\ny = f()\n")
    third = run_cells.run_cell(ns, 3, "z = x + 1\n")
    assert (first.ok, second.ok, third.ok) == (True, False, True)
    assert ns["z"] == 3 and "y" not in ns
    assert second.error_type == "ZeroDivisionError" and second.message == "division by zero"
    assert second.as_dict()["number"] == 2


def test_traceback_names_only_the_students_cells_and_lines():
    ns = run_cells.new_namespace()
    outcome = run_cells.run_cell(ns, 7, "a = 1\nraise ValueError('bad   value\\n here')\n")
    assert outcome.message == "bad value here"  # whitespace folded
    assert "(cell 7), line 2" in outcome.traceback and "raise ValueError" in outcome.traceback
    assert "run_cells.py" not in outcome.traceback and __file__ not in outcome.traceback
    assert "bad value here" not in outcome.traceback  # the error is stated once, by the message, not again here


def test_cells_are_named_by_what_they_define_or_their_first_telling_line():
    """"cell 53" means nothing in Jupyter: a cell is named by what it defines, else by its first line
    that tells it apart (not a seed or an import) and its section."""
    assert run_cells.describe_cell("import torch\nclass Head:\n    pass\n", 33) == "the cell defining `Head` (cell 33)"
    assert (run_cells.describe_cell("torch.manual_seed(1337)\nhead = Head(32, 16, 8)\n", 34, "Part `head`")
            == "the cell starting `head = Head(32, 16, 8)` in section \"Part `head`\" (cell 34)")
    ns = run_cells.new_namespace()
    outcome = run_cells.run_cell(ns, 4, "def f(x):\n    return x.nope\n\nf(1)\n", label="the cell defining `f` (cell 4)")
    assert "in the cell defining `f` (cell 4), line 2, in f:" in outcome.traceback, outcome.traceback
    assert "return x.nope" in outcome.traceback


def test_syntax_error_system_exit_and_keyboard_interrupt_are_the_cells_outcome():
    ns = run_cells.new_namespace()
    assert run_cells.run_cell(ns, 1, "def (:\n").error_type == "SyntaxError"
    assert run_cells.run_cell(ns, 2, "raise SystemExit(3)").error_type == "SystemExit"
    assert run_cells.run_cell(ns, 3, "raise KeyboardInterrupt").error_type == "KeyboardInterrupt"


def test_grader_timeout_is_never_swallowed():
    class GraderTimeout(BaseException):
        pass

    ns = run_cells.new_namespace()
    ns["GraderTimeout"] = GraderTimeout
    with pytest.raises(GraderTimeout):
        run_cells.run_cell(ns, 1, "raise GraderTimeout()")


def test_hostile_str_and_long_messages():
    ns = run_cells.new_namespace()
    outcome = run_cells.run_cell(ns, 1, "class E(Exception):\n    def __str__(self):\n        raise RuntimeError\nraise E()\n")
    assert outcome.error_type == "E" and outcome.message == "<unprintable>"
    long = run_cells.run_cell(ns, 2, "raise ValueError('x' * 1000)")
    assert len(long.message) == 300 and long.message.endswith("...")


def test_module_and_notebook_names_and_future_flags():
    ns = run_cells.new_namespace()
    assert ns["__name__"] == "__main__"
    assert run_cells.run_cell(ns, 1, "ran_main = __name__ == '__main__'").ok and ns["ran_main"]
    mod_ns = run_cells.new_namespace()
    run_cells.run_cell(mod_ns, 1, "guard = __name__", is_module=True)
    assert mod_ns["guard"] == "submission"
    # this test module has no __future__ annotations, and the grader's flags never leak into a cell
    run_cells.run_cell(ns, 2, "def f(x: int) -> int: return x\nann = f.__annotations__")
    assert ns["ann"] == {"x": int, "return": int}


def test_notebook_helpers_do_nothing():
    ns = run_cells.new_namespace()
    outcome = run_cells.run_cell(ns, 1, "get_ipython().run_line_magic('matplotlib', 'inline')\ndisplay(1)\nok = 1")
    assert outcome.ok and ns["ok"] == 1


def test_register_names_the_module_in_sys_modules(monkeypatch):
    monkeypatch.delitem(sys.modules, "submission", raising=False)
    module = run_cells.new_module()
    monkeypatch.setitem(sys.modules, "__main__", sys.modules["__main__"])  # restored afterwards
    run_cells.register(module, is_module=True)
    assert sys.modules["submission"] is module and module.__name__ == "submission"
    run_cells.run_cell(module.__dict__, 1, "from dataclasses import dataclass\n@dataclass\nclass P:\n    x: int = 1\np = P()")
    assert module.p.x == 1
