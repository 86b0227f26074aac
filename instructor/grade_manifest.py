"""The manifest of a class: which submission is item i (runs in the instructor's process and in every task).

A manifest is what makes a grading task stateless: task i reads item i, grades it, writes one file. It is
built once from a submissions folder (``python -m instructor.cluster manifest SUBMITTED_DIR``) with the same
discovery as ``grade_class`` (nbgrader's ``submitted/<student>/<assignment>/`` or a flat folder), so a class
gets the same student ids on every executor.

JSON (written by this module)::

    {"format": "gpt-lab manifest", "version": 1, "root": "/abs/submitted", "reference": "/abs/ref.ipynb" | null,
     "items": [{"id": "alice", "path": "alice/gpt_lab"}, ...]}

``path`` is relative to ``root`` (``--root`` of the task overrides it: a container mounts the folder
elsewhere). A CSV with a header ``id,path`` is read too (relative paths are relative to the CSV's folder), for
staff who list submissions with their own tools. Items are sorted by id: index i names the same item
whoever builds the manifest from the same folder.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from autograder.engine.report import write_json
from instructor.grade_class import discover, grader_version, submission_hash

FORMAT, VERSION = "gpt-lab manifest", 1
# an id becomes a file name in the results folder: no separators, no leading dot (dot files are the
# folder's own bookkeeping), nothing a shell or Slurm's log pattern would read specially
_ID = re.compile(r"^[A-Za-z0-9_@+=,-][A-Za-z0-9_.@+=,-]{0,199}$")


class ManifestError(ValueError):
    pass


@dataclass(frozen=True)
class Item:
    index: int
    id: str
    path: Path  # absolute


@dataclass(frozen=True)
class Manifest:
    path: Path
    root: Path
    reference: Path | None
    items: tuple[Item, ...]

    def __len__(self) -> int:
        return len(self.items)

    def item(self, index: int) -> Item:
        if not 0 <= index < len(self.items):
            raise ManifestError(f"item {index} is out of range: the manifest {self.path} has {len(self.items)} items "
                                f"(0 to {len(self.items) - 1})")
        return self.items[index]


def check_id(student: str) -> str:
    if not _ID.match(student) or student in (".", ".."):
        raise ManifestError(f"student id {student!r} cannot name a results file (letters, digits, . _ - @ + = , "
                            "only, not starting with a dot)")
    return student


def safe_id(name: str) -> str:
    """A student id that can name a results file: ``name`` itself when it can, else its safe characters and
    a short hash of it (``my lab (final)`` -> ``my_lab_final-<8 hex>``): a submission's file name, whatever it
    is, never refuses a class; the manifest keeps the original as the item's ``name``."""
    name = str(name)
    if _ID.match(name) and name not in (".", ".."):
        return name
    cleaned = re.sub(r"[^A-Za-z0-9_.@+=,-]+", "_", name).strip("._")[:150] or "submission"
    return f"{cleaned}-{hashlib.sha256(name.encode('utf-8', 'surrogateescape')).hexdigest()[:8]}"


def build(submissions_dir: str | os.PathLike, out: str | os.PathLike, assignment: str | None = None,
          reference: str | os.PathLike | None = None) -> Manifest:
    """Write the manifest of every submission in submissions_dir to ``out``; return it."""
    root = Path(submissions_dir).resolve()
    found = discover(root, assignment)
    if not found:
        raise ManifestError(f"no submissions in {root}")
    items = []
    for student in sorted(found):
        # the path as found (a link is graded as a link: the grader's locator refuses it, for that student)
        item = {"id": safe_id(student), "path": os.path.relpath(found[student], root)}
        if item["id"] != student:
            item["name"] = student
        items.append(item)
    items.sort(key=lambda e: e["id"])
    data = {"format": FORMAT, "version": VERSION, "root": str(root),
            "reference": str(Path(reference).resolve()) if reference else None, "items": items}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out, data, indent=1, end="\n")
    return load(out)


def load(path: str | os.PathLike, root: str | os.PathLike | None = None) -> Manifest:
    """Read a JSON or CSV manifest; ``root`` replaces the folder the item paths are relative to."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ManifestError(f"cannot read the manifest {path}: {exc}") from None
    reference = None
    if path.suffix.lower() == ".csv":
        rows = list(csv.DictReader(text.splitlines()))
        if not rows or not {"id", "path"} <= set(rows[0]):
            raise ManifestError(f"{path}: a CSV manifest needs a header with the columns id and path")
        base = Path(root) if root else path.resolve().parent
        entries = [(r["id"], r["path"]) for r in rows]
    else:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ManifestError(f"{path} is not a JSON manifest: {exc}") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("version") != VERSION:
            raise ManifestError(f"{path} is not a {FORMAT} (version {VERSION})")
        base = Path(root) if root else Path(data["root"])
        entries = [(e["id"], e["path"]) for e in data["items"]]
        reference = Path(data["reference"]) if data.get("reference") else None
    seen: set[str] = set()
    items = []
    for i, (student, rel) in enumerate(entries):
        student = check_id(safe_id(student))  # a hand-made CSV's odd id is mapped, as build maps a file name
        if student in seen:
            raise ManifestError(f"{path}: the id {student!r} is listed twice")
        seen.add(student)
        items.append(Item(i, student, Path(os.path.abspath(base / rel))))  # not resolved: a link stays a link
    return Manifest(path.resolve(), base.resolve(), reference, tuple(items))


def item_key(submission: str, grader: str) -> str:
    """What a result is valid for: this submission's content under this grader (code, rubric, reference)."""
    return hashlib.sha256(f"{submission}\0{grader}".encode()).hexdigest()


def current_keys(manifest: Manifest, reference: Path | None = None) -> dict[str, str]:
    """id -> the key a result must carry to be up to date (submissions hashed as they are now)."""
    grader = grader_version(reference if reference is not None else manifest.reference)
    return {it.id: item_key(submission_hash(it.path), grader) for it in manifest.items}


def format_spec(indices) -> str:
    """Item numbers as ranges, as Slurm writes arrays: [0, 1, 2, 5, 7, 8] -> "0-2,5,7-8" ("" for none)."""
    out, run = [], []
    for i in sorted(set(int(i) for i in indices)):
        if run and i == run[-1] + 1:
            run.append(i)
            continue
        if run:
            out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [i]
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(out)


def parse_spec(spec: str) -> list[int]:
    """The inverse of format_spec; "@FILE" reads the spec from FILE."""
    spec = spec.strip()
    if spec.startswith("@"):
        try:
            spec = Path(spec[1:]).read_text().strip()
        except OSError as exc:
            raise ManifestError(f"cannot read the item list {spec[1:]}: {exc}") from None
    out: list[int] = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        lo, sep, hi = part.partition("-")
        try:
            a, b = int(lo), int(hi) if sep else int(lo)
        except ValueError:
            raise ManifestError(f"bad item list {spec!r}: {part!r} is not N or N-M") from None
        if a < 0 or b < a:
            raise ManifestError(f"bad item list {spec!r}: {part!r}")
        out.extend(range(a, b + 1))
    return out


def task_items(task: int, per_task: int, selection: list[int]) -> list[int]:
    """The item numbers task ``task`` grades: the task-th slice of ``per_task`` items of the selection."""
    if per_task < 1 or task < 0:
        raise ManifestError(f"task {task} with {per_task} items per task")
    return selection[task * per_task:(task + 1) * per_task]
