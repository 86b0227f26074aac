"""The lab in other languages: a translation layer beside the English source, and the grader's messages.

    python -m instructor.i18n status   [--lang es]   # what is missing or stale, for the notebook and the messages
    python -m instructor.i18n update   [--lang es]   # bring the PO files up to date with the English source
    python -m instructor.i18n compile  [--lang es]   # the grader's messages: PO -> MO (what gettext reads)

**The notebook.** ``solutions/gpt_lab.ipynb`` stays the one source, in English. Its translation lives
beside it in ``solutions/i18n/<lang>.po`` (gettext PO, read and written with Babel): one entry per
translatable cell, ``msgctxt`` = the cell id, ``msgid`` = the English cell source, ``msgstr`` = the whole
translated cell source. Translatable cells are the markdown cells and the code cells that hold a comment or a
docstring; in a code cell only comments and docstrings may differ (``tests/test_spanish.py`` compares the
code with them removed). :func:`translate` builds the translated instructor notebook from the English one;
``python -m instructor.generate --lang es`` makes the student notebook from it.

Stale translations: an entry is used only while its ``msgid`` is the English cell's current source. When an
English cell changes, ``update`` (Babel's ``Catalog.update``) keeps the old translation on the new source,
marked *fuzzy*, with the previous English text as ``#| msgid``: a translator compares the two, corrects the
translation and removes the fuzzy flag. Until then the generator refuses the language, and the parity test
fails, naming the cell.

**The notebook's language reaches the grader** two ways, neither touching the check cells (identical code in
every language): the notebook's metadata ``gptlab.lang`` (read by ``pytest autograder`` when ``--lang`` is
not given), and one line the generator adds at the end of the setup cell, ``LAB_LANGUAGE = "es"``, which
``check("<part>", globals())`` reads from the globals it is given. That line is the only code difference the
parity test allows.

**The grader's messages** are gettext messages, English the ``msgid``, written once in the code as
``tr("... {name} ...").format(name=...)`` (``autograder/i18n.py``). ``update`` extracts them with Babel
(``babel.messages.extract``) into ``autograder/locale/<lang>/LC_MESSAGES/gptlab.po``; ``compile`` writes the
``.mo`` next to it, which the standard library's ``gettext`` reads at grading time (Babel is needed only to
extract and compile, never to grade).
"""

from __future__ import annotations

import argparse
import copy
import io
import re
import sys
import tokenize
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "solutions" / "gpt_lab.ipynb"
NOTEBOOK_PO_DIR = ROOT / "solutions" / "i18n"
LOCALE_DIR = ROOT / "autograder" / "locale"
DOMAIN = "gptlab"
LANGUAGES = ("es",)  # besides English, the source language
LANGUAGE_LINE = 'LAB_LANGUAGE = "{lang}"'
SETUP_CELL = "setup"
PROJECT = "gpt-lab"


class TranslationError(Exception):
    """A translation is missing or stale: the translated notebook cannot be made."""


# ---------------------------------------------------------------------------------------------- the notebook

def _source(cell) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def has_prose(code: str) -> bool:
    """A code cell worth translating: it holds a comment or a docstring."""
    return any(tok.type == tokenize.COMMENT for tok in _tokens(code)) or bool(_docstrings(code))


def _tokens(code: str):
    try:
        return list(tokenize.generate_tokens(io.StringIO(code).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return []


def _docstrings(code: str) -> list:
    import ast

    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = getattr(node, "body", [])
            if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
                    and isinstance(body[0].value.value, str):
                found.append(body[0])
    return found


def code_only(code: str) -> str:
    """The code of a cell with its comments and docstrings removed, as a token stream (layout-insensitive
    within a line, newlines kept): what must be identical in every language."""
    doc_lines = set()
    for node in _docstrings(code):
        doc_lines.update(range(node.lineno, node.end_lineno + 1))
    out = []
    for tok in _tokens(code):
        if tok.type in (tokenize.COMMENT, tokenize.NL, tokenize.ENCODING, tokenize.ENDMARKER):
            continue
        if tok.start[0] in doc_lines and tok.type in (tokenize.STRING, tokenize.NEWLINE, tokenize.INDENT,
                                                       tokenize.DEDENT):
            continue
        out.append("\n" if tok.type == tokenize.NEWLINE else tok.string)
    return " ".join(out).replace(" \n ", "\n").strip()


def translatable(cell) -> bool:
    if cell.cell_type == "markdown":
        return bool(_source(cell).strip())
    return cell.cell_type == "code" and has_prose(_source(cell))


def template(nb) -> "babel.messages.catalog.Catalog":  # noqa: F821
    """A PO template (no translations) of the notebook's translatable cells."""
    from babel.messages.catalog import Catalog

    cat = Catalog(project=PROJECT, fuzzy=False)
    for cell in nb.cells:
        if translatable(cell):
            cat.add(_source(cell), context=cell.get("id"), auto_comments=[f"{cell.cell_type} cell"])
    return cat


def po_path(lang: str) -> Path:
    return NOTEBOOK_PO_DIR / f"{lang}.po"


def read_po(path: Path, locale: str | None = None):
    from babel.messages.pofile import read_po as _read

    with open(path, "rb") as f:
        catalog = _read(f, locale=locale, abort_invalid=True)
    _restore_previous(catalog)
    return catalog


def _restore_previous(catalog) -> None:
    """Babel writes a fuzzy entry's previous English (``#| msgid "..."``) but reads it back as a translator
    comment; make it the entry's ``previous_id`` again, so that it survives the next read and write."""
    from babel.messages.pofile import unescape

    for msg in catalog:
        lines = [c for c in msg.user_comments if c.startswith("|")]
        if not lines:
            continue
        msg.user_comments = [c for c in msg.user_comments if not c.startswith("|")]
        text = " ".join(line[1:].strip() for line in lines)
        previous = "".join(unescape(f'"{piece}"') for piece in re.findall(r'"((?:[^"\\]|\\.)*)"', text))
        msg.previous_id = [previous]


def write_po(catalog, path: Path) -> None:
    from babel.messages.pofile import write_po as _write

    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    # lines are never wrapped (a huge width): a cell's text keeps its own lines, one PO line each, and a fuzzy
    # entry's previous English stays on one comment line (Babel wraps comments at the width)
    _write(buf, catalog, width=10**9, omit_header=False, sort_output=False, include_previous=True,
           ignore_obsolete=False)
    path.write_bytes(buf.getvalue())


def problems(nb, catalog) -> list[str]:
    """What stops the translation: one line per translatable cell with no current, finished translation."""
    found = []
    for cell in nb.cells:
        if not translatable(cell):
            continue
        cid = cell.get("id")
        msg = catalog.get(_source(cell), context=cid)
        if msg is None:
            old = [m for m in catalog if m.context == cid and m.id]
            found.append(f"cell {cid}: " + ("stale: the English cell changed since it was translated "
                                            "(run `python -m instructor.i18n update`, then revise the fuzzy entry)"
                                            if old else "no translation"))
        elif msg.fuzzy:
            found.append(f"cell {cid}: stale: marked fuzzy (the English cell changed since it was translated)")
        elif not (msg.string or "").strip():
            found.append(f"cell {cid}: no translation")
    return found


def translate(nb, lang: str, catalog=None):
    """The instructor notebook in ``lang`` (the argument is not modified). Raises TranslationError, naming
    every cell whose translation is missing or stale."""
    if catalog is None:
        catalog = read_po(po_path(lang), locale=lang)
    missing = problems(nb, catalog)
    if missing:
        raise TranslationError(f"{po_path(lang)}: {len(missing)} cell(s) not translated:\n  " + "\n  ".join(missing))
    out = copy.deepcopy(nb)
    for cell in out.cells:
        if translatable(cell):
            cell.source = catalog.get(_source(cell), context=cell.get("id")).string
        if cell.get("id") == SETUP_CELL:
            cell.source = cell.source.rstrip("\n") + "\n" + LANGUAGE_LINE.format(lang=lang)
    out.metadata.setdefault("gptlab", {})["lang"] = lang
    if "language_info" in out.metadata:
        pass  # the kernel's language (python): unchanged
    return out


_NBGRADER_VOLATILE = ("checksum",)  # nbgrader's checksum hashes the cell's source, so it follows the language


def parity(english, translated, lang: str) -> list[str]:
    """What differs between two versions of the notebook beyond their prose: one line per difference.
    Both must have the same cells (ids, types, in order), the same tags and nbgrader metadata (grade ids,
    points, locks; checksums aside), and, in code cells, the same code once comments and docstrings are
    removed, except for the line ``LAB_LANGUAGE = "<lang>"`` that the translated setup cell adds."""
    found = []
    a, b = list(english.cells), list(translated.cells)
    ids_a, ids_b = [c.get("id") for c in a], [c.get("id") for c in b]
    if ids_a != ids_b:
        found.append(f"the cells differ: {len(a)} cells {ids_a[:3]}... against {len(b)} cells {ids_b[:3]}...")
        return found
    for ca, cb in zip(a, b):
        cid = ca.get("id")
        if ca.cell_type != cb.cell_type:
            found.append(f"cell {cid}: {ca.cell_type} against {cb.cell_type}")
            continue
        meta_a = {k: v for k, v in ca.metadata.get("nbgrader", {}).items() if k not in _NBGRADER_VOLATILE}
        meta_b = {k: v for k, v in cb.metadata.get("nbgrader", {}).items() if k not in _NBGRADER_VOLATILE}
        if meta_a != meta_b:
            found.append(f"cell {cid}: nbgrader metadata {meta_a} against {meta_b}")
        if ca.metadata.get("tags", []) != cb.metadata.get("tags", []):
            found.append(f"cell {cid}: tags {ca.metadata.get('tags', [])} against {cb.metadata.get('tags', [])}")
        if ca.cell_type != "code":
            continue
        code_b = _source(cb)
        if cid == SETUP_CELL:
            line = LANGUAGE_LINE.format(lang=lang)
            if code_b.rstrip("\n").splitlines()[-1:] != [line]:
                found.append(f"cell {cid}: the setup cell does not end with {line!r}")
            code_b = "\n".join(code_b.rstrip("\n").splitlines()[:-1]) + "\n"
        if code_only(_source(ca)) != code_only(code_b):
            found.append(f"cell {cid}: the code differs (beyond comments and docstrings)")
    return found


def notebook_language(nb) -> str:
    """The language of a notebook (its JSON as a dict or a NotebookNode): ``metadata.gptlab.lang``, else "en"."""
    try:
        lang = nb.get("metadata", {}).get("gptlab", {}).get("lang")
    except AttributeError:
        return "en"
    return lang if isinstance(lang, str) and lang in LANGUAGES else "en"


def update_notebook(lang: str, source: Path = SOURCE, path: Path | None = None) -> list[str]:
    """Bring ``solutions/i18n/<lang>.po`` (or ``path``) up to date with the English source; returns what
    needs a translator."""
    from babel.messages.catalog import Catalog

    nb = nbformat.read(str(source), as_version=4)
    path = path or po_path(lang)
    catalog = read_po(path, locale=lang) if path.exists() else Catalog(locale=lang, project=PROJECT)
    previous = {(m.id, m.context): m.previous_id for m in catalog if m.id and m.previous_id}
    catalog.update(template(nb), no_fuzzy_matching=False, update_header_comment=False, update_creation_date=False)
    _fuzzy_by_cell_id(catalog)
    _keep_previous(catalog, previous)
    write_po(catalog, path)
    return problems(nb, catalog)


def _keep_previous(catalog, previous: dict) -> None:
    """Babel's update forgets the previous English of an entry that was already fuzzy: keep it until the
    translator revises the entry (and removes the fuzzy flag)."""
    for msg in catalog:
        if msg.fuzzy and not msg.previous_id and (msg.id, msg.context) in previous:
            msg.previous_id = previous[(msg.id, msg.context)]


def _fuzzy_by_cell_id(catalog) -> None:
    """Babel's fuzzy matching compares texts; a cell keeps its id, so an obsolete entry of the same cell id is
    the previous translation of a new English text: carry it over as fuzzy, with the old English as previous."""
    for key, old in list(catalog.obsolete.items()):
        for msg in catalog:
            if msg.context == old.context and msg.id and not msg.string:
                msg.string, msg.previous_id = old.string, [old.id]
                msg.flags.add("fuzzy")
                del catalog.obsolete[key]
                break


# ---------------------------------------------------------------------------------------- the grader's messages

def message_po_path(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def message_mo_path(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.mo"


KEYWORDS = {"tr": None, "N_": None}
# besides autograder/: the instructor's modules whose messages a student reads (nbgrader's check-cell lines)
MESSAGE_FILES = (ROOT / "instructor" / "nbgrader_plugins.py",)


def _message_sources(folder: Path | None = None) -> list[Path]:
    if folder is not None:
        return sorted(Path(folder).rglob("*.py"))
    return sorted((ROOT / "autograder").rglob("*.py")) + list(MESSAGE_FILES)


def extract_messages():
    """The grader's messages, extracted from ``autograder/`` with Babel: a template Catalog."""
    from babel.messages.catalog import Catalog
    from babel.messages.extract import extract_from_dir

    from babel.messages.extract import extract_from_file

    cat = Catalog(project=PROJECT, fuzzy=False)
    found = [(f"autograder/{filename}", *rest) for filename, *rest in
             extract_from_dir(str(ROOT / "autograder"), method_map=[("**.py", "python")], keywords=KEYWORDS,
                              comment_tags=("TRANSLATORS:",), strip_comment_tags=True)]
    for path in MESSAGE_FILES:  # the instructor's code that writes into a student's notebook
        found += [(str(path.relative_to(ROOT)), *rest) for rest in
                  extract_from_file("python", str(path), keywords=KEYWORDS, comment_tags=("TRANSLATORS:",),
                                    strip_comment_tags=True)]
    for filename, lineno, message, comments, context in found:
        cat.add(message, locations=[(filename, lineno)], auto_comments=comments, context=context)
    for label, where in check_labels():
        cat.add(label, locations=[where], context="check name",
                auto_comments=["the name of a check, as the reports show it"])
    return cat


def check_labels() -> list:
    """The checks' names (``test_<part>_<label>`` -> ``<label>`` with spaces), from the check modules."""
    import ast

    sys.path.insert(0, str(ROOT))
    from autograder.parts import PARTS

    found = []
    for path in sorted((ROOT / "autograder").rglob("test_*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.FunctionDef):
                part = next((p for p in sorted(PARTS, key=len, reverse=True)
                             if node.name.startswith(f"test_{p}_")), None)
                if part:
                    found.append((node.name.removeprefix(f"test_{part}_").replace("_", " "),
                                  (str(path.relative_to(ROOT)), node.lineno)))
    return found


def untranslatable_calls() -> list[str]:
    """``tr(...)`` / ``N_(...)`` calls whose argument is not one plain string literal (an f-string, a variable,
    a concatenation): gettext could not find their translation. One line each."""
    import ast

    found = []
    for path in _message_sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in KEYWORDS:
                ok = len(node.args) == 1 and isinstance(node.args[0], ast.Constant) \
                     and isinstance(node.args[0].value, str)
                if not ok:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.func.id}() of something else than "
                                 "a string literal")
    return found


def format_mismatches(folder: Path | None = None) -> list[str]:
    """``tr("...").format(...)`` calls whose keyword arguments are not exactly the message's placeholders
    (a placeholder without a value raises KeyError when the message is built; a value without a
    placeholder is a message that lost a detail). One line each."""
    import ast

    found = []
    for path in _message_sources(folder):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        formatted = set()
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format"
                    and isinstance(node.func.value, ast.Call) and isinstance(node.func.value.func, ast.Name)
                    and node.func.value.func.id == "tr" and node.func.value.args
                    and isinstance(node.func.value.args[0], ast.Constant)):
                formatted.add(id(node.func.value))
                want = set(placeholders(node.func.value.args[0].value))
                got = {kw.arg for kw in node.keywords}
                if want != got or node.args:
                    found.append(f"{path.name}:{node.lineno}: placeholders {sorted(want)}, "
                                 f"arguments {sorted(g for g in got if g)}")
        for node in ast.walk(tree):  # a message with placeholders must be formatted where it is translated
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "tr"
                    and id(node) not in formatted and node.args and isinstance(node.args[0], ast.Constant)
                    and placeholders(node.args[0].value)):
                found.append(f"{path.name}:{node.lineno}: placeholders but no .format()")
    return found


_FIELD = re.compile(r"(?<!\{)\{([^{}!:]*)(?:![rsa])?(?::[^{}]*)?\}(?!\})")


def placeholders(text: str) -> list[str]:
    return sorted(_FIELD.findall(text))


def message_problems(lang: str, catalog=None) -> list[str]:
    """Messages of the code with no current translation in ``lang``, or whose translation has other
    placeholders than the English; translations of messages the code no longer has."""
    if catalog is None:
        path = message_po_path(lang)
        if not path.exists():
            return [f"{path} does not exist (run `python -m instructor.i18n update`)"]
        catalog = read_po(path, locale=lang)
    found = []
    wanted = extract_messages()
    for msg in wanted:
        if not msg.id:
            continue
        have = catalog.get(msg.id, context=msg.context)
        where = ", ".join(f"{f}:{n}" for f, n in msg.locations[:1])
        if have is None:
            found.append(f"{where}: no translation of {msg.id[:70]!r}")
        elif have.fuzzy:
            found.append(f"{where}: stale (fuzzy) translation of {msg.id[:70]!r}")
        elif not (have.string or "").strip():
            found.append(f"{where}: no translation of {msg.id[:70]!r}")
        elif placeholders(have.string) != placeholders(msg.id):
            found.append(f"{where}: the translation of {msg.id[:70]!r} has placeholders "
                         f"{placeholders(have.string)}, the English {placeholders(msg.id)}")
    ids = {(m.id, m.context) for m in wanted if m.id}
    for msg in catalog:
        if msg.id and (msg.id, msg.context) not in ids:
            found.append(f"the catalogue translates a message the code no longer has: {msg.id[:70]!r} "
                         "(run `python -m instructor.i18n update`)")
    return found


def compiled(catalog) -> bytes:
    from babel.messages.mofile import write_mo

    buf = io.BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    return buf.getvalue()


def update_messages(lang: str) -> list[str]:
    from babel.messages.catalog import Catalog

    path = message_po_path(lang)
    catalog = read_po(path, locale=lang) if path.exists() else Catalog(locale=lang, project=PROJECT)
    previous = {(m.id, m.context): m.previous_id for m in catalog if m.id and m.previous_id}
    catalog.update(extract_messages(), no_fuzzy_matching=False, update_header_comment=False,
                   update_creation_date=False)
    _keep_previous(catalog, previous)
    catalog.obsolete.clear()  # a message the code no longer has: its translation goes (git keeps it)
    write_po(catalog, path)
    return message_problems(lang, catalog)


def compile_messages(lang: str) -> Path:
    catalog = read_po(message_po_path(lang), locale=lang)
    out = message_mo_path(lang)
    out.write_bytes(compiled(catalog))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m instructor.i18n", description=__doc__.split("\n")[0])
    ap.add_argument("command", choices=("status", "update", "compile"))
    ap.add_argument("--lang", default="es", choices=LANGUAGES)
    args = ap.parse_args(argv)
    lang = args.lang
    if args.command == "compile":
        print(f"wrote {compile_messages(lang)}")
        return 0
    if args.command == "update":
        nb_todo, msg_todo = update_notebook(lang), update_messages(lang)
        print(f"wrote {po_path(lang)} and {message_po_path(lang)}")
    else:
        nb = nbformat.read(str(SOURCE), as_version=4)
        nb_todo = problems(nb, read_po(po_path(lang), locale=lang)) if po_path(lang).exists() else ["no catalogue"]
        msg_todo = message_problems(lang) + untranslatable_calls() + format_mismatches()
    for what, todo in (("notebook", nb_todo), ("messages", msg_todo)):
        print(f"{what}: {len(todo)} to translate or revise")
        for line in todo:
            print(f"  {line}")
    if args.command == "status" and message_mo_path(lang).exists() and not msg_todo:
        current = compiled(read_po(message_po_path(lang), locale=lang))
        if message_mo_path(lang).read_bytes() != current:
            print(f"{message_mo_path(lang)} is out of date: run `python -m instructor.i18n compile`")
            return 1
    return 1 if (nb_todo or msg_todo) else 0


if __name__ == "__main__":
    sys.exit(main())
