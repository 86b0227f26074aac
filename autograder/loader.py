"""Read a submission (a notebook, a .py module, or a folder holding one) into the code to execute.

Only reads and parses: nothing here runs the submission. Notebook rules:
- cells tagged ``slow`` (training runs, experiments, downloads) are skipped;
- nbgrader test cells (the check cells) are skipped: the grader runs its own checks;
- IPython syntax (``%magic``, ``!shell``) is rewritten by IPython's own transformer into calls on a
  ``get_ipython()`` that the executor replaces with a shell that does nothing;
- cell magics other than ``%%time`` / ``%%capture`` skip their cell.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

SKIP_TAGS = {"slow", "skip-grading"}
MAX_BYTES = 200 * 1024 * 1024
_PERCENT_CELL = re.compile(r"^# %%.*$", re.MULTILINE)


class SubmissionError(Exception):
    """The submission cannot be read at all (missing, not a notebook, unreadable)."""


@dataclass
class Cell:
    number: int  # 1-based position in the notebook, markdown cells included (what a student counts)
    source: str

    @property
    def label(self) -> str:
        return f"cell {self.number}"


@dataclass
class Program:
    path: Path
    cells: list[Cell]
    skipped: list[str] = field(default_factory=list)  # human-readable notes on what was not run


def _transform(source: str) -> str:
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:  # IPython comes with ipykernel; a bare grading image may lack it
        lines = []
        for line in source.splitlines():
            stripped = line.lstrip()
            if stripped.startswith(("%", "!")):
                line = line[: len(line) - len(stripped)] + "pass  # IPython line removed by the grader"
            lines.append(line)
        return "\n".join(lines) + "\n"
    return TransformerManager().transform_cell(source)


def _is_test_cell(cell: dict) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader", {}) or {}
    return bool(meta.get("grade")) and not meta.get("solution")


def _code_of(number: int, source: str, skipped: list[str]) -> Cell | None:
    stripped = source.lstrip()
    if stripped.startswith("%%"):
        first, _, rest = stripped.partition("\n")
        if first.split()[0] in ("%%time", "%%capture"):
            source = rest
        else:
            skipped.append(f"cell {number}: cell magic {first.split()[0]} is not run by the grader")
            return None
    return Cell(number, _transform(source))


def read_notebook_cells(path: Path, text: str) -> Program:
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise SubmissionError(f"{path.name} is not a notebook: it is not valid JSON ({exc})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("cells", raw.get("worksheets")), list):
        raise SubmissionError(f"{path.name} is JSON but not a Jupyter notebook (it has no list of cells)")
    if "worksheets" in raw:  # nbformat 3
        import nbformat

        raw = nbformat.convert(nbformat.from_dict(raw), 4)
    cells, skipped = [], []
    for number, cell in enumerate(raw["cells"], start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(s for s in source if isinstance(s, str))
        if not isinstance(source, str):
            skipped.append(f"cell {number}: its source is not text")
            continue
        tags = set((cell.get("metadata") or {}).get("tags") or [])
        if tags & SKIP_TAGS:
            skipped.append(f"cell {number}: tagged {sorted(tags & SKIP_TAGS)[0]}")
            continue
        if _is_test_cell(cell):
            continue
        code = _code_of(number, source, skipped)
        if code is not None:
            cells.append(code)
    return Program(path, cells, skipped)


def decode_module_source(path: Path, data: bytes | str) -> str:
    """A .py file's text as Python decodes a source file: a UTF-8 BOM, a PEP 263 coding line
    (``# -*- coding: latin-1 -*-``), and CRLF or CR line ends (``importlib.util.decode_source``
    is what the import system itself uses: detect_encoding, then universal newlines)."""
    import importlib.util

    if isinstance(data, str):
        data = data.encode("utf-8")
    try:
        text = importlib.util.decode_source(data)
    except (SyntaxError, LookupError, UnicodeDecodeError) as exc:
        # what Python itself would refuse: an unknown coding, bytes not in the declared coding
        raise SubmissionError(f"{path.name} cannot be decoded as Python source: {exc}") from None
    return text.removeprefix("\ufeff")


def read_module_cells(path: Path, text: bytes | str) -> Program:
    """A .py module; ``# %%`` markers (jupytext's percent format) split it into cells."""
    text = decode_module_source(path, text)
    starts = [m.start() for m in _PERCENT_CELL.finditer(text)]
    if not starts or starts[0] != 0:
        starts = [0, *starts]
    pieces = [text[a:b] for a, b in zip(starts, [*starts[1:], len(text)])]
    cells = []
    for number, piece in enumerate(pieces, start=1):
        # keep line numbers: pad with blank lines so tracebacks name the module's own lines
        offset = text[: starts[number - 1]].count("\n")
        cells.append(Cell(number, "\n" * offset + piece))
    return Program(path, cells)


_DEFINITIONS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef)


def _is_definition(node: ast.stmt) -> bool:
    if isinstance(node, _DEFINITIONS):
        return True
    if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
        try:
            ast.literal_eval(node.value)
            return True
        except ValueError:
            return False
    return False


def definitions_only(program: Program) -> Program:
    """Keep only imports, functions, classes and literal assignments of each cell.

    For the trusted reference: the grader needs its definitions, not its demos, and skipping
    them saves seconds on every grading run. Never used on a submission, whose classes may
    rely on anything its cells computed."""
    cells = []
    for cell in program.cells:
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            cells.append(cell)
            continue
        kept = [node for node in tree.body if _is_definition(node)]
        if kept:
            cells.append(Cell(cell.number, ast.unparse(ast.Module(body=kept, type_ignores=[]))))
    return Program(program.path, cells, program.skipped)


def find_submission(path: Path) -> Path:
    if not path.exists():
        raise SubmissionError(f"no submission at {path}: the path does not exist")
    if path.is_dir():
        notebooks = sorted(p for p in path.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
        if len(notebooks) == 1:
            return notebooks[0]
        named = [p for p in notebooks if p.name == "gpt_lab.ipynb"]
        if len(named) == 1:
            return named[0]
        if not notebooks:
            modules = sorted(path.glob("*.py"))
            if len(modules) == 1:
                return modules[0]
            raise SubmissionError(f"the folder {path} holds no notebook (.ipynb)")
        raise SubmissionError(
            f"the folder {path} holds {len(notebooks)} notebooks and none is named gpt_lab.ipynb: "
            "submit one notebook"
        )
    return path


def read_submission(path: str | Path) -> Program:
    path = find_submission(Path(path))
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise SubmissionError(f"{path.name} is {size / 2**20:.0f} MiB, over the {MAX_BYTES // 2**20} MiB limit")
    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        raise SubmissionError(f"{path.name} is a binary file, not a notebook or a Python module")
    if path.suffix == ".py":  # decoded as Python decodes source (BOM, coding line, line ends)
        return read_module_cells(path, data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SubmissionError(f"{path.name} is not UTF-8 text, so not a notebook or a Python module") from None
    if path.suffix == ".py":
        return read_module_cells(path, text)
    if path.suffix == ".ipynb" or text.lstrip().startswith("{"):
        return read_notebook_cells(path, text)
    raise SubmissionError(f"{path.name}: expected a .ipynb notebook or a .py module")
