"""Execute a program's cells one by one in a fresh namespace, recording each cell's failure.

Used by the worker (for a student's submission) and by the grading process (for the trusted
reference). A failing cell never stops the load: later cells still run, as in a notebook.
"""

from __future__ import annotations

import builtins
import linecache
import sys
import traceback
import types
from dataclasses import dataclass

from autograder.i18n import tr

CELL_FILE_PREFIX = "<submission "


class _NullShell:
    """What ``get_ipython()`` returns while grading: magics and shell lines do nothing."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


NOTEBOOK_MODULE = "__main__"  # a notebook's code runs as __main__, as in a Jupyter kernel
MODULE_NAME = "submission"  # a .py submission runs as an imported module: its main guard stays off


def new_module(name: str = NOTEBOOK_MODULE) -> types.ModuleType:
    """A real module object whose ``__dict__`` is the submission's namespace (as IPython and
    import give code a module): ``dataclasses``, ``typing.get_type_hints``, ``pickle`` and
    ``inspect`` look a class's module up in ``sys.modules`` by ``cls.__module__``."""
    module = types.ModuleType(name)
    module.__dict__.update({
        "__builtins__": builtins,
        "get_ipython": lambda: _NullShell(),
        "display": lambda *args, **kwargs: None,
    })
    return module


def new_namespace() -> dict:
    return new_module().__dict__


def register(module: types.ModuleType, is_module: bool) -> None:
    """Name the submission's module as Python would (``submission`` for a .py, ``__main__`` for a
    notebook, as in a kernel) and register it in ``sys.modules``, so that code looking up its own
    module by ``cls.__module__`` finds it. Only in the worker (the submission's own process),
    never in the grading process."""
    name = MODULE_NAME if is_module else NOTEBOOK_MODULE
    module.__name__ = name
    sys.modules[name] = module


@dataclass
class CellOutcome:
    number: int
    ok: bool
    error_type: str = ""
    message: str = ""
    traceback: str = ""

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def cell_filename(number: int) -> str:
    return f"{CELL_FILE_PREFIX}cell {number}>"


def describe_cell(source: str, number: int | None = None, heading: str = "") -> str:
    """A cell named by its content, as a student finds it in Jupyter: "the cell defining `Head`",
    else "the cell starting `x = ...`" (its first line of code) and the section it is in; the
    grader's cell number (which counts markdown cells too) follows in parentheses where there is one."""
    import ast

    names = []
    try:
        tree = ast.parse(source)
        names = [n.name for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))]
    except (SyntaxError, ValueError):  # IPython syntax, or code that does not parse
        pass
    if names:
        what = tr("the cell defining {names}").format(
            names=", ".join(f"`{n}`" for n in names[:3]) + (" ..." if len(names) > 3 else ""))
    else:
        lines = [ln.strip() for ln in source.splitlines() if ln.strip() and not ln.strip().startswith("#")]
        # the first line that tells the cell apart (a seed or an import starts many cells)
        telling = [ln for ln in lines if not ln.startswith(("torch.manual_seed(", "import ", "from "))]
        first = (telling or lines or [""])[0]
        what = (tr("the cell starting `{line}`").format(line=first if len(first) <= 50 else first[:47] + "...")
                if first else tr("an empty cell"))
        if heading:
            what += tr(" in section \"{heading}\"").format(heading=heading)
    return what + (tr(" (cell {number})").format(number=number) if number is not None else "")


def _is_student_file(filename: str) -> bool:
    """A frame of the submission's own code: a cell run by the grader, or a cell of the Jupyter
    kernel that runs the notebook's check cells (ipykernel's /tmp/ipykernel_<pid>/<hash>.py, or
    IPython's <ipython-input-...>)."""
    return (filename.startswith(CELL_FILE_PREFIX) or filename.startswith("<ipython-input-")
            or "/ipykernel_" in filename.replace("\\", "/"))


_LABELS: dict[str, str] = {}  # cell file name -> its label, where the caller knows more than the source


def _where(filename: str) -> str:
    if filename in _LABELS:
        return _LABELS[filename]
    lines = linecache.getlines(filename)
    number = None
    if filename.startswith(CELL_FILE_PREFIX):
        tail = filename[len(CELL_FILE_PREFIX) : -1].removeprefix("cell ")
        number = int(tail) if tail.isdigit() else None
    return describe_cell("".join(lines), number) if lines else tr("a cell")


def student_traceback(exc: BaseException, limit_lines: int = 12) -> str:
    """Where the submission's own code failed: the last frames of its own cells (never the
    grader's), each as its cell (named by content), line and function, with the student's line.
    The error itself (type and message) is not repeated here: every message states it once."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if _is_student_file(f.filename)]
    lines = []
    for f in frames[-4:]:
        where = "" if f.name == "<module>" else tr(", in {function}").format(function=f.name)
        lines.append("  " + tr("in {cell}, line {line}{function}:").format(cell=_where(f.filename), line=f.lineno,
                                                                          function=where))
        if f.line:
            lines.append(f"    {f.line.strip()}")
    return "\n".join(lines[-limit_lines:])


def short_message(exc: BaseException, limit: int = 300) -> str:
    try:
        text = str(exc)
    except BaseException:  # noqa: BLE001 - a hostile __str__
        text = "<unprintable>"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def run_cell(namespace: dict, number: int, source: str, is_module: bool = False, label: str = "") -> CellOutcome:
    filename = cell_filename(number)
    if label:  # how tracebacks name this cell (its section, which its source does not hold)
        _LABELS[filename] = label[:200]
    # register the source so tracebacks can quote the student's lines
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    if is_module:
        namespace["__name__"] = MODULE_NAME
    try:
        # dont_inherit: the submission is compiled with its own __future__ flags, never the
        # grader's (``from __future__ import annotations`` here must not turn its annotations
        # into strings)
        code = compile(source, filename, "exec", dont_inherit=True)
        exec(code, namespace)  # noqa: S102 - running the cell is the point
    except BaseException as exc:  # noqa: BLE001 - SystemExit and KeyboardInterrupt are the student's too
        if type(exc).__name__ == "GraderTimeout":
            raise
        return CellOutcome(number, False, type(exc).__name__, short_message(exc), student_traceback(exc))
    return CellOutcome(number, True)
