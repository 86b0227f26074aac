"""Read a submission (a notebook, a .py module, or a folder holding one) into the code to execute.

Only reads and parses, with bounds: nothing here runs the submission, and nothing here runs
code on its text whose cost it cannot bound. Notebook rules:
- cells tagged ``slow`` (training runs, experiments, downloads) are skipped;
- nbgrader test cells (the check cells) are skipped: the grader runs its own checks;
- IPython syntax (``%magic``, ``!shell``) is rewritten by IPython's own transformer into calls on a
  ``get_ipython()`` that ``run_cells`` replaces with a shell that does nothing. That transformer's
  cost is unbounded on hostile input (it re-tokenises the whole cell once per magic: 300 magics
  over 3,000 lines take 25 s), so for a submission it runs in the worker, under the cell's time
  limit (``Cell.ipython``; ``to_python`` is the transform); only trusted code is transformed here;
- cell magics other than ``%%time`` / ``%%capture`` skip their cell.

``locate_submission`` is the one place that decides which file is graded (``pytest autograder``,
``instructor.grade_class``, Gradescope, nbgrader): it refuses symbolic links and special files
(FIFOs, devices, sockets), so a submission can never point the grader at the reference or at a
file that never ends. ``read_bytes_safely`` reads the chosen file without following a link.
"""

from __future__ import annotations

import ast
import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from autograder.i18n import tr

SKIP_TAGS = {"slow", "skip-grading"}
MAX_BYTES = 100 * 1024 * 1024  # a real notebook with outputs is a few MB; 100 MB leaves room for image outputs
# JSON values a notebook may hold: the lab's notebook has ~3,000; a parsed value costs ~100 bytes in
# this process, so 2 million keeps the parse under ~200 MB whatever the submission.
MAX_JSON_VALUES = 2_000_000
_PERCENT_CELL = re.compile(r"^# %%.*$", re.MULTILINE)


class Note(str):
    """A note for the report, with its kind: tools filter notes by kind, never by their text (which is
    in the student's language: "cell 25: tagged slow" is "celda 25: tiene la etiqueta slow")."""

    kind = ""

    def __new__(cls, text: str, kind: str = ""):
        note = super().__new__(cls, text)
        note.kind = kind
        return note


SKIPPED_CELL = "skipped cell"  # the kind of a cell the grader did not run (tagged slow, a cell magic, not text)


class SubmissionError(Exception):
    """The submission cannot be read at all (missing, not a notebook, unreadable)."""


@dataclass
class Cell:
    number: int  # 1-based position in the notebook, markdown cells included (what a student counts)
    source: str
    ipython: bool = False  # source still holds IPython syntax: run ``to_python`` on it where it executes
    heading: str = ""  # the last markdown heading above the cell (a notebook's section), "" if none

    @property
    def label(self) -> str:
        """The cell as a student finds it in Jupyter: by what it defines, else its first line and
        section ("cell 53" alone means nothing there), with the number after."""
        from .run_cells import describe_cell

        return describe_cell(self.source, self.number, self.heading)


@dataclass
class Program:
    path: Path
    cells: list[Cell]
    skipped: list[str] = field(default_factory=list)  # human-readable notes on what was not run
    lang: str | None = None  # a notebook's language (metadata.gptlab.lang), for the grader's messages


def to_python(source: str) -> str:
    """IPython syntax to plain Python. Unbounded in time on hostile input: for a submission, call
    it only in the worker (under the cell's time limit)."""
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


def python_source(cell: Cell) -> str:
    """The cell as plain Python, transformed in this process: for trusted code only."""
    return to_python(cell.source) if cell.ipython else cell.source


def _dict(value) -> dict:
    """A metadata field as a dict: a list, a string or null in its place reads as empty."""
    return value if isinstance(value, dict) else {}


def _is_test_cell(cell: dict) -> bool:
    meta = _dict(_dict(cell.get("metadata")).get("nbgrader"))
    return bool(meta.get("grade")) and not meta.get("solution")


def _tags(cell: dict) -> set[str]:
    tags = _dict(cell.get("metadata")).get("tags")
    return {t for t in tags if isinstance(t, str)} if isinstance(tags, list) else set()


def _code_of(number: int, source: str, skipped: list[str]) -> Cell | None:
    stripped = source.lstrip()
    if stripped.startswith("%%"):
        first, _, rest = stripped.partition("\n")
        magic = (first.split() or ["%%"])[0][:40]
        if magic in ("%%time", "%%capture"):
            source = rest
        else:
            skipped.append(Note(tr("cell {number}: cell magic {magic} is not run by the grader")
                                .format(number=number, magic=magic), SKIPPED_CELL))
            return None
    return Cell(number, source, ipython=True)


def parse_json_bounded(path: Path, text: str):
    """``json.loads`` with bounds on what the parse can cost: the number of values (counted on the
    text before parsing) and the nesting depth (the C parser raises RecursionError)."""
    values = text.count(",") + text.count("[") + text.count("{")  # an upper bound on the values
    if values > MAX_JSON_VALUES:
        raise SubmissionError(f"{path.name} holds over {MAX_JSON_VALUES:,} JSON values: not a notebook the grader reads")
    try:
        return json.loads(text)
    except RecursionError:
        raise SubmissionError(f"{path.name} is nested too deeply to be a notebook") from None
    except ValueError as exc:
        raise SubmissionError(f"{path.name} is not a notebook: it is not valid JSON ({str(exc)[:200]})") from None


def _v3_cells(raw: dict) -> list:
    """The code cells of an nbformat 3 notebook, read by hand (its worksheets' cells, ``input`` as the
    source), so that a malformed v3 file is not handed to nbformat's converter and validator."""
    cells = []
    for sheet in raw.get("worksheets") or []:
        for cell in _dict(sheet).get("cells") or [] if isinstance(_dict(sheet).get("cells"), list) else []:
            cell = _dict(cell)
            cells.append({"cell_type": cell.get("cell_type"), "source": cell.get("input", ""),
                          "metadata": cell.get("metadata")})
    return cells


def read_notebook_cells(path: Path, text: str) -> Program:
    raw = parse_json_bounded(path, text)
    if not isinstance(raw, dict) or not isinstance(raw.get("cells", raw.get("worksheets")), list):
        raise SubmissionError(f"{path.name} is JSON but not a Jupyter notebook (it has no list of cells)")
    raw_cells = raw["cells"] if isinstance(raw.get("cells"), list) else _v3_cells(raw)
    cells, skipped = [], []
    heading = ""
    for number, cell in enumerate(raw_cells, start=1):
        if isinstance(cell, dict) and cell.get("cell_type") == "markdown":
            heading = _heading(cell.get("source", "")) or heading
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(s for s in source if isinstance(s, str))
        if not isinstance(source, str):
            skipped.append(Note(tr("cell {number}: its source is not text").format(number=number), SKIPPED_CELL))
            continue
        tags = _tags(cell)
        if tags & SKIP_TAGS:
            skipped.append(Note(tr("cell {number}: tagged {tag}").format(number=number, tag=sorted(tags & SKIP_TAGS)[0]),
                                SKIPPED_CELL))
            continue
        if _is_test_cell(cell):
            continue
        code = _code_of(number, source, skipped)
        if code is not None:
            code.heading = heading
            cells.append(code)
    meta = raw.get("metadata")
    lab = meta.get("gptlab") if isinstance(meta, dict) else None
    lang = lab.get("lang") if isinstance(lab, dict) else None
    return Program(path, cells, skipped, lang=lang if isinstance(lang, str) else None)


def _heading(source) -> str:
    """The last markdown heading of a markdown cell's source ("## 5. Self-attention" -> "5. Self-attention")."""
    if isinstance(source, list):
        source = "".join(s for s in source if isinstance(s, str))
    if not isinstance(source, str):
        return ""
    found = [ln.lstrip("#").strip() for ln in source.splitlines() if ln.startswith("#") and ln.lstrip("#").strip()]
    return found[-1][:80] if found else ""


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
        source = python_source(cell)
        try:
            tree = ast.parse(source)
        except SyntaxError:
            cells.append(Cell(cell.number, source))
            continue
        kept = [node for node in tree.body if _is_definition(node)]
        if kept:
            cells.append(Cell(cell.number, ast.unparse(ast.Module(body=kept, type_ignores=[]))))
    return Program(program.path, cells, program.skipped, lang=program.lang)


class Refused(SubmissionError):
    """The submission holds a symbolic link or a special file where the grader looks for it."""


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device file"
    return "not a regular file"


def candidates(folder: Path) -> tuple[list[Path], list[tuple[Path, str]]]:
    """The .ipynb and .py files under ``folder`` that are regular files with one name (links never
    followed, hidden and checkpoint folders left out), and the refused ones: links, hard links and
    special files with those names anywhere in it."""
    files, refused = [], []
    for top, dirs, names in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in ("__pycache__", "__MACOSX"))
        for name in [*sorted(names), *[d for d in dirs if os.path.islink(os.path.join(top, d))]]:
            if name.startswith(".") or not name.endswith((".ipynb", ".py")):
                continue  # only what could be graded matters; a linked folder is never entered
            p = Path(top) / name
            try:
                mode = os.lstat(p).st_mode
            except OSError:
                continue
            if stat.S_ISREG(mode) and os.lstat(p).st_nlink == 1:
                files.append(p)
            elif stat.S_ISREG(mode):
                refused.append((p, "a hard link to another file"))
            else:
                refused.append((p, _kind(mode)))
    return files, refused


def locate_submission(path: str | os.PathLike) -> Path:
    """The one file to grade at ``path`` (a .ipynb, a .py, or a folder holding one notebook), or
    ``SubmissionError`` saying why none. Shared by every way of grading; a symbolic link or a
    special file (FIFO, device, socket) anywhere it looks is refused, never followed."""
    return choose_submission(path)[0]


def choose_submission(path: str | os.PathLike, several: str = "refuse") -> tuple[Path, str]:
    """``locate_submission`` with a note: (the file to grade, "" or why it was chosen).

    ``several``: what to do with a folder holding several notebooks, none named gpt_lab.ipynb (or
    several so named): ``"refuse"`` (a ``SubmissionError``: the student can resubmit), or
    ``"shallowest"`` (grade the shallowest one and say so: Gradescope, where no resubmission is at
    hand while the autograder runs)."""
    path = Path(path)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        raise SubmissionError(f"no submission at {path}: the path does not exist") from None
    except OSError as exc:
        raise SubmissionError(f"the submission at {path} cannot be read ({exc.strerror})") from None
    if stat.S_ISDIR(mode):
        files, refused = candidates(path)
        if refused:
            where, kind = refused[0]
            raise Refused(f"the submission holds {kind} ({where.relative_to(path)}): links and special files "
                          "are refused; submit the notebook itself")
        notebooks = sorted((p for p in files if p.suffix == ".ipynb"), key=lambda p: (len(p.parts), str(p)))
        if len(notebooks) == 1:
            return notebooks[0], ""
        named = [p for p in notebooks if p.name == "gpt_lab.ipynb"]
        if not notebooks:
            modules = [p for p in files if p.suffix == ".py" and p.parent == path]
            if len(modules) == 1:
                return modules[0], ""
            raise SubmissionError(f"the folder {path.name or path} holds no notebook: submit gpt_lab.ipynb")
        if len(named) == 1 or (several == "shallowest"):
            chosen = named[0] if named else notebooks[0]
            return chosen, f"several notebooks submitted; graded {chosen.relative_to(path)}"
        raise SubmissionError(
            f"the folder {path} holds {len(notebooks)} notebooks and none is named gpt_lab.ipynb: "
            "submit one notebook"
        )
    if not stat.S_ISREG(mode):
        raise Refused(f"the submission {path.name} is {_kind(mode)}: links and special files are refused; "
                      "submit the notebook itself")
    if os.lstat(path).st_nlink > 1:  # a hard link may be another name of the reference itself
        raise Refused(f"the submission {path.name} is a hard link to another file: links are refused; "
                      "submit a copy of the notebook")
    return path, ""




def read_bytes_safely(path: Path, limit: int = MAX_BYTES) -> bytes:
    """The file's bytes, opened without following a link and without blocking on a FIFO, checked
    to be a regular file on the open descriptor, at most ``limit`` bytes."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise SubmissionError(f"{path.name} cannot be opened ({exc.strerror}): links and special files are refused") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise Refused(f"{path.name} is {_kind(info.st_mode)}: links and special files are refused")
        if info.st_size > limit:
            raise SubmissionError(f"{path.name} is {info.st_size / 2**20:.0f} MiB, over the {limit // 2**20} MiB limit")
        chunks, got = [], 0
        while got <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - got))
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        if got > limit:
            raise SubmissionError(f"{path.name} is over the {limit // 2**20} MiB limit")
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_submission(path: str | Path, trusted: bool = False) -> Program:
    """The program at ``path``. ``trusted`` (the reference, the instructor's own files): links are
    followed as usual; otherwise the shared locator's rules apply."""
    path = Path(os.path.realpath(path)) if trusted else locate_submission(Path(path))
    data = read_bytes_safely(path)
    if b"\x00" in data[:8192]:
        raise SubmissionError(f"{path.name} is a binary file, not a notebook or a Python module")
    if path.suffix == ".py":  # decoded as Python decodes source (BOM, coding line, line ends)
        return read_module_cells(path, data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SubmissionError(f"{path.name} is not UTF-8 text, so not a notebook or a Python module") from None
    del data  # the bytes: up to MAX_BYTES that the parse below need not keep company
    if path.suffix == ".ipynb" or text.lstrip().startswith("{"):
        return read_notebook_cells(path, text)
    raise SubmissionError(f"{path.name}: expected a .ipynb notebook or a .py module")
