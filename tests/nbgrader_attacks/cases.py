"""Hostile notebooks for the nbgrader path, as data.

Each case is a student notebook built from the released assignment: its solution cells left as
the stubs (``base="stub"``) or filled with the reference's code (``base="reference"``), plus
``cells`` of attack code inserted after the setup cell (or at the end), and an optional
``tamper`` function applied to the notebook. ``expected`` is the total the honest work earns:
a stub with an attack cell earns what the untouched stubs earn (the given MultiHeadAttention's
points), the reference with one earns full marks.

The attacks are the ones that worked when check cells ran in nbgrader's kernel (the issue's three,
the class-level ones) and more of the same classes: forge the check or its value, read the
reference or the hidden checks, break nbgrader or the gradebook, poison the checkout for the
students graded later, tamper with nbgrader metadata, exhaust time, output, processes or disk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from autograder.engine.report import load_rubric

_RUBRIC = load_rubric()[0]
FULL = float(sum(_RUBRIC.values()))  # every autograded point of the lab, the bonus included
MAXIMUM = float(sum(v for p, v in _RUBRIC.items() if p not in load_rubric()[1]))  # the maximum: no bonus
# the untouched stubs earn only the part that the student notebook gives complete (MultiHeadAttention)
STUB = float(_RUBRIC["multihead"])

# Paths an attack tries, relative to the kernel's working directory in nbgrader (the assignment
# folder of autograded/<student>/) and to the checkout that the grader imports.
_FIND = '''
import os, pathlib
def _candidates():
    here = pathlib.Path.cwd()
    roots = [here, *here.parents]
    try:
        import autograder
        roots += list(pathlib.Path(autograder.__file__).resolve().parents)
    except Exception:
        pass
    for r in roots:
        yield r / "solutions" / "gpt_lab.ipynb"
        yield r / "source" / "gpt_lab" / "gpt_lab.ipynb"
        yield r / "gradebook.db"
        yield r / "autograder" / "checks" / "hidden" / "test_quiz_hidden.py"
        yield r / "autograder" / "conftest.py"
        yield r / "autograder" / "notebook.py"
'''


@dataclass
class Case:
    id: str
    base: str  # "stub" or "reference"
    cells: list[str] = field(default_factory=list)
    expected: float = STUB
    at_end: bool = False
    tamper: Callable | None = None
    reported: tuple[str, ...] = ()  # grade ids the log and the note must name
    why: str = ""
    raw: str | None = None  # the file's text as handed in, when it is not a notebook at all
    make: Callable | None = None  # make(path): puts something other than a file at the submission's path


def _checks(nb):
    return [c for c in nb.cells if (c.metadata.get("nbgrader") or {}).get("grade")
            and not c.metadata["nbgrader"].get("solution")]


def _by_id(nb, grade_id):
    (cell,) = [c for c in nb.cells if isinstance(c.metadata.get("nbgrader"), dict)
               and c.metadata["nbgrader"].get("grade_id") == grade_id]
    return cell


def tamper_checksums_and_points(nb):
    for c in _checks(nb):
        c.metadata["nbgrader"]["checksum"] = "0" * 32
        c.metadata["nbgrader"]["points"] = 100.0


def tamper_flags(nb):
    _by_id(nb, "check_head").metadata["nbgrader"]["grade"] = False  # not a grade cell any more
    _by_id(nb, "check_gpt").metadata["nbgrader"]["grade_id"] = "my_gpt_check"  # renamed
    tok = _by_id(nb, "check_tokenizer")
    tok.cell_type = "markdown"  # a markdown cell scores nothing
    tok.pop("outputs", None)
    tok.pop("execution_count", None)
    _by_id(nb, "check_quiz").metadata["nbgrader"]["solution"] = True  # a manual answer: never autograded
    _by_id(nb, "check_train").metadata["nbgrader"]["locked"] = False
    _by_id(nb, "check_generate").source = "6.5"  # edited source: its value would be the score


def tamper_metadata_junk(nb):
    dup = nb.cells[-1]
    dup.metadata["nbgrader"] = dict(_by_id(nb, "check_multihead").metadata["nbgrader"])  # a copied grade id
    _by_id(nb, "check_feedforward").metadata = {}  # stripped, cell id kept
    _by_id(nb, "check_head").metadata["nbgrader"] = ["not", "a", "mapping"]


CASES: list[Case] = [
    Case("patch_check", "stub", ['''
import autograder.notebook as _nb
_nb.check = lambda *args, **kwargs: _nb.Score(99.0)
import builtins
builtins.check = _nb.check
'''], why="replaces the check the check cells call"),
    Case("hide_outputs", "stub", ['get_ipython().ast_node_interactivity = "none"'],
         why="a test cell that shows no value used to earn full marks"),
    Case("raise_with_reference", "stub", [_FIND + '''
_found = []
for _p in _candidates():
    try:
        _found.append(_p.read_text()[:2000])
    except Exception:
        pass
print("\\n".join(_found))

class Head:
    def __init__(self, *args, **kwargs):
        raise RuntimeError("LEAK " + " ".join(_found)[:390])
'''], why="reads the reference / hidden checks and puts them in outputs and in a check's error message"),
    Case("load_reference_with_grader", "stub", [_FIND + '''
from autograder.engine import load as loader
for _p in _candidates():
    if _p.name == "gpt_lab.ipynb":
        try:
            _prog = loader.definitions_only(loader.read_submission(_p))
            for _cell in _prog.cells:
                exec(compile(_cell.source, "ref", "exec"), globals())
        except Exception as exc:
            print("no reference:", exc)
'''], why="calls the grader's own loader on the reference to define every class"),
    Case("kill_parent", "stub", ['''
import os, signal
for _target in (os.getppid(), 0, -1):
    try:
        os.kill(_target, signal.SIGKILL)
    except Exception:
        pass
'''], why="kills the kernel's parent (nbgrader itself), its group, everything it can"),
    Case("rewrite_gradebook", "stub", [_FIND + '''
import os, time
if os.fork() == 0:  # a background process that outlives the cell
    os.setsid()
    for _ in range(40):
        for _p in _candidates():
            if _p.name == "gradebook.db":
                try:
                    _p.write_bytes(b"garbage")
                except Exception:
                    pass
        time.sleep(0.25)
    os._exit(0)
'''], why="rewrites gradebook.db from a background process"),
    Case("poison_checkout", "stub", [_FIND + '''
for _p in _candidates():
    if _p.name in ("conftest.py", "notebook.py"):
        try:
            with open(_p, "a") as f:
                f.write("\\nraise SystemExit(0)\\n")
        except Exception:
            pass
'''], why="edits the checkout's autograder/: every student graded after it would be affected"),
    Case("tamper_checksums_points", "stub", tamper=tamper_checksums_and_points,
         reported=("check_head", "check_gpt", "check_quiz"), why="checksums and points of every check cell"),
    Case("tamper_flags_reference", "reference", expected=FULL, tamper=tamper_flags,
         reported=("check_head", "check_gpt", "check_tokenizer", "check_quiz", "check_train", "check_generate"),
         why="grade/solution/locked flags, grade id, cell type and source changed on the reference"),
    Case("tamper_junk_reference", "reference", expected=FULL, tamper=tamper_metadata_junk,
         reported=("check_head", "check_multihead", "check_feedforward"),
         why="nbgrader metadata that is not a mapping, a copied grade id, stripped metadata"),
    Case("flood_output", "stub", ['''
import sys
for _ in range(400):
    sys.stdout.write("x" * 1_000_000)
'''], why="prints 400 MB"),
    Case("ignore_signals_loop", "stub", ['''
import signal
for _s in (signal.SIGINT, signal.SIGALRM, signal.SIGTERM):
    signal.signal(_s, signal.SIG_IGN)
while True:
    pass
'''], why="ignores SIGINT (nbgrader's interrupt) and the grader's alarm, then loops"),
    Case("hang_every_cell", "stub", ["while True:\n    pass"] * 5,
         why="k hanging cells: one budget per notebook, not k x the cell limit"),
    Case("fork_bomb", "stub", ['''
import os
for _ in range(200):
    try:
        if os.fork() == 0:
            import time
            time.sleep(60)
            os._exit(0)
    except OSError:
        break
'''], why="starts hundreds of processes"),
    Case("fill_disk", "stub", ['''
import os
_chunk = b"0" * (1 << 20)
for _i in range(12):
    try:
        with open(f"fill-{_i}.bin", "wb") as f:
            for _ in range(48):
                f.write(_chunk)
    except OSError:
        break
'''], why="writes hundreds of MB into its working folder"),
    Case("write_outside", "stub", [_FIND + '''
for _p in ["/tmp/gptlab-nbgrader-pwned", *[str(p.parent / "PWNED") for p in _candidates()]]:
    try:
        with open(_p, "w") as f:
            f.write("pwned")
    except Exception:
        pass
'''], why="writes outside its scratch space: /tmp, the course, the checkout"),
    Case("detect_grading", "stub", ['''
import os
if os.environ.get("NBGRADER_EXECUTION") or os.environ.get("PYTEST_CURRENT_TEST"):
    import autograder.checks.verdicts as _c
    _c.fail = lambda *a, **k: None
    _c.expect = lambda *a, **k: None
    _c.explain = lambda exc: ""
'''], why="detects the grading run and disables the assertion helpers"),
    Case("fake_results", "stub", ['''
print("[PASS] head: structure\\nhead: 9/9 checks passed: 1.00 of 1.00 points")
6.5
'''], at_end=True, why="prints PASS lines and ends a cell with a score-looking value"),
    Case("exit_reference", "reference", ["import os\nos._exit(0)"], expected=FULL,
         why="the reference with a cell that ends its process: only that cell is lost"),
    Case("hang_reference", "reference", ["import time\nwhile True:\n    time.sleep(1)"], expected=FULL, at_end=True,
         why="the reference with a hanging cell at the end: graded within the budget, full marks"),
]

CASES += [
    Case("not_json", "stub", expected=0.0, raw='{"cells": [{"cell_type": "code", "source": "import os"',
         why="a truncated file: nbgrader cannot read it; it must still get a graded 0 with its reason"),
    Case("not_a_notebook", "stub", expected=0.0, raw="def Head():\n    pass\n",
         why="a Python file handed in under the notebook's name"),
]

def _link_to_reference(path):
    from pathlib import Path

    path.symlink_to(Path(__file__).resolve().parents[2] / "solutions" / "gpt_lab.ipynb")


def _fifo(path):
    import os

    os.mkfifo(path)


CASES += [
    Case("symlink_to_reference", "stub", expected=0.0, make=_link_to_reference,
         why="a symbolic link to the reference: nbgrader would follow it and put the reference in the feedback"),
    Case("fifo", "stub", expected=0.0, make=_fifo, why="a FIFO under the notebook's name: a reader blocks on it"),
]

# Honest notebooks graded among the attacks (before and after them, in nbgrader's order): their
# grades must be exactly what they are alone.
CONTROLS = {"aa_reference": ("reference", FULL), "aa_stub": ("stub", STUB),
            "zz_reference": ("reference", FULL), "zz_stub": ("stub", STUB)}
