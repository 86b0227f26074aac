"""Write the student notebook (assignment/gpt_lab.ipynb) from the instructor's source (solutions/gpt_lab.ipynb).

    python -m instructor.generate            # (re)write assignment/gpt_lab.ipynb (and the source's check-cell points)
    python -m instructor.generate --check    # exit 1 if the committed student notebook is out of date

The check cells' points come from the registry of parts (``autograder/parts.toml``): before anything
else, every check cell ``check_<part>`` of the source gets its part's points (0 for a bonus part:
nbgrader records its score as extra credit), and the source is rewritten when they differ. A
registered part without its check cell, or a check cell of no registered part, is an error.

It applies nbgrader's own preprocessors, in the order of `nbgrader generate_assignment`, directly on the
notebook with nbformat (no course directory, no gradebook):

    LockCells -> ClearSolutions -> ClearOutput -> ComputeChecksums -> ClearHiddenTests -> ClearMarkScheme

* LockCells: check (grade) cells and read-only cells become non-deletable and non-editable; solution cells
  non-deletable.
* ClearSolutions: every `### BEGIN SOLUTION` .. `### END SOLUTION` region becomes `# YOUR CODE HERE` /
  `raise NotImplementedError()` (code) or `YOUR ANSWER HERE` (markdown). Refuses regions outside solution cells.
* ClearOutput: outputs and execution counts go.
* ComputeChecksums: nbgrader checksums of the released grade/solution/locked cells (as generate_assignment does).
* ClearHiddenTests / ClearMarkScheme: `### BEGIN HIDDEN TESTS` / `### BEGIN MARK SCHEME` regions go.

The output is a pure function of the source file: the same source gives a byte-identical notebook.
"""
from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "solutions" / "gpt_lab.ipynb"
RELEASE = ROOT / "assignment" / "gpt_lab.ipynb"

# per-cell metadata that records a run, not the notebook's content
_VOLATILE_CELL_METADATA = ("execution", "collapsed", "scrolled", "ExecuteTime")


def _preprocessors():
    from nbgrader.preprocessors import (ClearHiddenTests, ClearMarkScheme, ClearOutput, ClearSolutions,
                                        ComputeChecksums, LockCells)
    return [LockCells(), ClearSolutions(), ClearOutput(), ComputeChecksums(), ClearHiddenTests(), ClearMarkScheme()]


def student_notebook(source: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Return the student version of an instructor notebook (the argument is not modified)."""
    nb = copy.deepcopy(source)
    for cell in nb.cells:
        for key in _VOLATILE_CELL_METADATA:
            cell.metadata.pop(key, None)
    resources: dict = {}
    for pp in _preprocessors():
        nb, resources = pp.preprocess(nb, resources)
    nbformat.validate(nb)
    return nb


class RegistryMismatch(ValueError):
    """The source notebook's check cells do not match the registry of parts."""


def check_cell_source(part_id: str) -> str:
    """The whole source of a part's check cell (a self-check in the student's kernel)."""
    return f'from autograder.notebook import check\ncheck("{part_id}", globals())'


def apply_registry(nb: nbformat.NotebookNode) -> list[str]:
    """Give each check cell its part's points from the registry (in place); return what changed."""
    from autograder import parts

    cells = {}
    for c in nb.cells:
        gid = (c.metadata.get("nbgrader") or {}).get("grade_id", "")
        if gid.startswith("check_"):
            cells[gid] = c
    wanted = {p.grade_id: p for p in parts.all_parts()}
    missing = sorted(set(wanted) - set(cells))
    extra = sorted(set(cells) - set(wanted))
    if missing or extra:
        raise RegistryMismatch(f"check cells without a registered part: {extra}; registered parts without a "
                               f"check cell: {missing} (autograder/parts.toml, docs/architecture.md)")
    changed = []
    for gid, part in wanted.items():
        cell, md = cells[gid], cells[gid].metadata["nbgrader"]
        if cell.source != check_cell_source(part.id):
            raise RegistryMismatch(f"cell {gid} should be exactly {check_cell_source(part.id)!r}")
        if md.get("points") != part.cell_points:
            changed.append(f"{gid}: points {md.get('points')} -> {part.cell_points}")
            md["points"] = part.cell_points
    return changed


def sync_source(source_path: Path = SOURCE, write: bool = True) -> list[str]:
    """Apply the registry to the source notebook's file; return what changed (written unless ``write`` is False)."""
    nb = nbformat.read(str(source_path), as_version=4)
    changed = apply_registry(nb)
    if changed and write:
        source_path.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")
    return changed


def render(source_path: Path = SOURCE) -> str:
    """The student notebook's file content for the source notebook at source_path (registry points applied)."""
    nb = nbformat.read(str(source_path), as_version=4)
    apply_registry(nb)
    return nbformat.writes(student_notebook(nb)) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m instructor.generate", description=__doc__.split("\n")[0])
    parser.add_argument("--source", type=Path, default=SOURCE, help=f"instructor notebook (default {SOURCE})")
    parser.add_argument("--dest", type=Path, default=RELEASE, help=f"student notebook (default {RELEASE})")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if DEST is not what SOURCE generates")
    args = parser.parse_args(argv)

    try:
        changed = sync_source(args.source, write=not args.check)
    except RegistryMismatch as exc:
        print(f"{args.source}: {exc}", file=sys.stderr)
        return 1
    if changed:
        print(f"{args.source}: " + ("out of date with autograder/parts.toml: " if args.check else "updated: ")
              + "; ".join(changed), file=sys.stderr if args.check else sys.stdout)
        if args.check:
            return 1
    text = render(args.source)
    if args.check:
        current = args.dest.read_text(encoding="utf-8") if args.dest.exists() else None
        if current != text:
            print(f"{args.dest} is out of date: run `python -m instructor.generate`", file=sys.stderr)
            return 1
        print(f"{args.dest} is up to date")
        return 0
    args.dest.parent.mkdir(parents=True, exist_ok=True)
    args.dest.write_text(text, encoding="utf-8")
    print(f"wrote {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
