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


def student_traceback(exc: BaseException, limit_lines: int = 12) -> str:
    """The traceback trimmed to the frames of the submission's own cells (never the grader's)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith(CELL_FILE_PREFIX)]
    lines = []
    for f in frames[-4:]:
        where = f.filename[len(CELL_FILE_PREFIX) : -1]
        lines.append(f"  {where}, line {f.lineno}, in {f.name}")
        if f.line:
            lines.append(f"    {f.line.strip()}")
    lines.append(f"{type(exc).__name__}: {short_message(exc)}")
    return "\n".join(lines[-limit_lines:])


def short_message(exc: BaseException, limit: int = 300) -> str:
    try:
        text = str(exc)
    except BaseException:  # a hostile __str__
        text = "<unprintable>"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def run_cell(namespace: dict, number: int, source: str, is_module: bool = False) -> CellOutcome:
    filename = cell_filename(number)
    # register the source so tracebacks can quote the student's lines
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    if is_module:
        namespace["__name__"] = MODULE_NAME
    try:
        # dont_inherit: the submission is compiled with its own __future__ flags, never the
        # grader's (``from __future__ import annotations`` here must not turn its annotations
        # into strings)
        code = compile(source, filename, "exec", dont_inherit=True)
        exec(code, namespace)
    except BaseException as exc:  # noqa: BLE001 - SystemExit and KeyboardInterrupt are the student's too
        if type(exc).__name__ == "GraderTimeout":
            raise
        return CellOutcome(number, False, type(exc).__name__, short_message(exc), student_traceback(exc))
    return CellOutcome(number, True)
