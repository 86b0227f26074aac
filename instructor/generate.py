"""Write the student notebook (assignment/gpt_lab.ipynb) from the instructor's source (solutions/gpt_lab.ipynb).

    python -m instructor.generate            # (re)write every edition: assignment/gpt_lab.ipynb, assignment/es/...
                                             # (and the source's check-cell points)
    python -m instructor.generate --check    # exit 1 if a committed student notebook is out of date
    python -m instructor.generate --lang es  # the Spanish student notebook only, assignment/es/gpt_lab.ipynb
    python -m instructor.generate --lang es --source-dest PATH   # and the Spanish instructor notebook

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

Another language (``--lang es``): the English source is first translated cell by cell from its translation
layer, ``solutions/i18n/<lang>.po`` (``instructor/i18n.py``; a missing or stale translation stops the
generator), then goes through the same preprocessors, with the stubs in that language.
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

# what ClearSolutions leaves in a solution region, per language (nbgrader's defaults for English)
STUBS = {
    "en": {"code_stub": {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}, "text_stub": "YOUR ANSWER HERE"},
    "es": {"code_stub": {"python": "# TU CÓDIGO AQUÍ\nraise NotImplementedError()"},
           "text_stub": "ESCRIBE AQUÍ TU RESPUESTA"},
}


def release_path(lang: str = "en") -> Path:
    """The committed student notebook of a language: assignment/gpt_lab.ipynb, assignment/<lang>/gpt_lab.ipynb."""
    return RELEASE if lang == "en" else RELEASE.parent / lang / RELEASE.name

# per-cell metadata that records a run, not the notebook's content
_VOLATILE_CELL_METADATA = ("execution", "collapsed", "scrolled", "ExecuteTime")


def _preprocessors(lang: str = "en"):
    from nbgrader.preprocessors import (ClearHiddenTests, ClearMarkScheme, ClearOutput, ClearSolutions,
                                        ComputeChecksums, LockCells)
    clear = ClearSolutions(**STUBS[lang]) if lang != "en" else ClearSolutions()
    return [LockCells(), clear, ClearOutput(), ComputeChecksums(), ClearHiddenTests(), ClearMarkScheme()]


def student_notebook(source: nbformat.NotebookNode, lang: str | None = None) -> nbformat.NotebookNode:
    """Return the student version of an instructor notebook (the argument is not modified). ``lang``
    (default: the notebook's own, ``metadata.gptlab.lang``, else English) picks the stubs' language."""
    from instructor.i18n import notebook_language

    lang = lang or notebook_language(source)
    nb = copy.deepcopy(source)
    for cell in nb.cells:
        for key in _VOLATILE_CELL_METADATA:
            cell.metadata.pop(key, None)
    resources: dict = {}
    for pp in _preprocessors(lang):
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


def source_notebook(lang: str = "en", source_path: Path = SOURCE) -> nbformat.NotebookNode:
    """The instructor notebook in ``lang`` (registry points applied): the English source, translated for
    another language."""
    nb = nbformat.read(str(source_path), as_version=4)
    apply_registry(nb)
    if lang == "en":
        return nb
    from instructor.i18n import translate

    return translate(nb, lang)


def render(source_path: Path = SOURCE, lang: str = "en") -> str:
    """The student notebook's file content for the source notebook at source_path (translated to lang)."""
    return nbformat.writes(student_notebook(source_notebook(lang, source_path), lang)) + "\n"


def render_source(source_path: Path = SOURCE, lang: str = "en") -> str:
    """The instructor notebook's file content in lang."""
    return nbformat.writes(source_notebook(lang, source_path)) + "\n"


def _edition(args, lang: str) -> int:
    """Write (or ``--check``) one language's student notebook; 0 when it is (now) current."""
    from instructor import tampering
    from instructor.i18n import TranslationError

    dest = args.dest if args.dest is not None else release_path(lang)
    try:
        text = render(args.source, lang)
    except TranslationError as exc:
        print(f"{dest}: not written: {exc}\n(translate the cells named above: python -m instructor.i18n update, "
              f"then edit {lang}'s catalogue)", file=sys.stderr)
        return 1
    if args.source_dest and not args.check:
        args.source_dest.parent.mkdir(parents=True, exist_ok=True)
        args.source_dest.write_text(render_source(args.source, lang), encoding="utf-8")
        print(f"wrote {args.source_dest}")
    if args.check:
        current = dest.read_text(encoding="utf-8") if dest.exists() else None
        if current != text:
            flag = f" --lang {lang}" if lang != "en" else ""
            print(f"{dest} is out of date: run `python -m instructor.generate{flag}`", file=sys.stderr)
            return 1
        print(f"{dest} is up to date")
        return 0
    if args.dest is None and dest.is_file() and tampering.record_release(lang, dest, text):
        # students may hold the release being replaced: they are judged against it (instructor/tampering.py)
        print(f"kept the replaced release's cells in {tampering.HISTORY.name} ({lang})")
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(text, encoding="utf-8")
    print(f"wrote {dest}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m instructor.generate", description=__doc__.split("\n")[0])
    parser.add_argument("--source", type=Path, default=SOURCE, help=f"instructor notebook (default {SOURCE})")
    parser.add_argument("--dest", type=Path, default=None,
                        help=f"student notebook (default {RELEASE}, or assignment/<lang>/gpt_lab.ipynb)")
    parser.add_argument("--lang", default=None,
                        help="one edition: en (the source's language) or es (default: every edition, with "
                             "--dest or --source-dest: en)")
    parser.add_argument("--source-dest", type=Path, default=None,
                        help="also write the instructor notebook in LANG here (for an nbgrader course)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if DEST is not what SOURCE generates")
    args = parser.parse_args(argv)
    from instructor.i18n import LANGUAGES

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
    if args.lang is not None and args.lang != "en" and args.lang not in LANGUAGES:
        parser.error(f"--lang: en or one of {', '.join(LANGUAGES)}")
    if args.lang is not None:
        langs = [args.lang]
    elif args.dest is not None or args.source_dest is not None:
        langs = ["en"]
    else:
        langs = ["en", *LANGUAGES]  # one command for every edition: a points change reaches them all
    return max(_edition(args, lang) for lang in langs)


if __name__ == "__main__":
    sys.exit(main())
