"""Build the student handout: the folder (or zip) a student downloads.

    python -m instructor.handout OUT            # a folder OUT/
    python -m instructor.handout OUT --zip      # OUT.zip (OUT may end in .zip), holding one folder gpt-lab/
    python -m instructor.handout OUT --lang es  # the Spanish handout: assignment/es/gpt_lab.ipynb as the
                                                # student notebook, handout/README.es.md as its README

Layout (the repository's, so that the notebook and ``pytest autograder`` find each other as in the
repository: the grader's default submission is ``assignment/gpt_lab.ipynb`` next to ``autograder/``)::

    README.md                   handout/README.md, with the hidden-check counts filled in
    pyproject.toml              the project's dependencies; packages autograder and data only
    assignment/gpt_lab.ipynb    the student notebook (generated from the reference, no outputs)
    autograder/                 every visible check; not autograder/checks/hidden/ (checks/hidden_manifest.json says how many)
    data/__init__.py            the loader only: the dataset is downloaded on first use

Never in it: solutions/, autograder/checks/hidden/, the dataset, checkpoints, caches. The build refuses to
finish if the student notebook is out of date with the reference or if a solution region, hidden
test region or the quiz answer key would reach the handout.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import zipfile
from fractions import Fraction
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parent.parent
ASSIGNMENT = REPO / "assignment" / "gpt_lab.ipynb"
REFERENCE = REPO / "solutions" / "gpt_lab.ipynb"
TEMPLATE = REPO / "handout" / "README.md"


def template(lang: str = "en") -> Path:
    """The handout's README in a language: handout/README.md, handout/README.<lang>.md."""
    return TEMPLATE if lang == "en" else TEMPLATE.with_name(f"README.{lang}.md")
FOLDER_NAME = "gpt-lab"
_SKIP = {"__pycache__", ".pytest_cache", ".hypothesis", ".ipynb_checkpoints", "hidden"}
_SKIP_SUFFIXES = (".pyc", ".pt", ".pth", ".txt.part")
FORBIDDEN = ("### BEGIN SOLUTION", "### END SOLUTION", "### BEGIN HIDDEN TESTS", "### BEGIN MARK SCHEME")


class HandoutError(RuntimeError):
    pass


def _copy_tree(src: Path, dest: Path) -> None:
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        if set(rel.parts) & _SKIP or path.name.endswith(_SKIP_SUFFIXES) or not path.is_file():
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest / rel)


def hidden_summary() -> tuple[int, Fraction, Fraction]:
    """(hidden checks, their points, all autograded points) from the rubric and the hidden manifest."""
    sys.path.insert(0, str(REPO))
    from autograder import parts

    rubric, bonus = parts.rubric()
    manifest = parts.hidden_counts()
    count, points = 0, Fraction(0)
    for part, hidden in manifest.items():
        if part not in rubric or not hidden:
            continue
        visible = len(parts.checks_of(part, hidden=False))
        count += int(hidden)
        points += rubric[part] * int(hidden) / (visible + int(hidden))
    total = sum((p for part, p in rubric.items() if part not in bonus), Fraction(0))
    return count, points, total


def pyproject_text() -> str:
    with open(REPO / "pyproject.toml", "rb") as f:
        project = tomllib.load(f)["project"]
    deps = ",\n".join(f"    {json.dumps(d)}" for d in project.get("dependencies", []))
    return f"""[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "gpt-lab-handout"
version = {json.dumps(project.get("version", "0.1.0"))}
description = {json.dumps(project.get("description", ""))}
requires-python = {json.dumps(project.get("requires-python", ">=3.10"))}
dependencies = [
{deps},
]

[tool.setuptools.packages.find]
include = ["autograder*", "data*"]

[tool.setuptools.package-data]
autograder = ["*.toml", "locale/*/LC_MESSAGES/*.mo"]
"autograder.checks" = ["*.json"]

[tool.pytest.ini_options]
# the handout root is importable (autograder, data) even without `pip install -e .`
pythonpath = ["."]
"""


def _readme(lang: str = "en") -> str:
    count, points, total = hidden_summary()
    return (template(lang).read_text(encoding="utf-8")
            .replace("{hidden_checks}", str(count))
            .replace("{hidden_points}", f"{float(points):.2f}")
            .replace("{total_points}", f"{float(total):.2f}"))


def secrets() -> list[str]:
    """Lines that must not reach students: the reference's solution-region lines that the student
    notebook does not show anyway (long enough to be specific), and the quiz key."""
    import nbformat

    nb = nbformat.read(REFERENCE, as_version=4)
    released = set()
    if ASSIGNMENT.exists():
        for cell in nbformat.read(ASSIGNMENT, as_version=4).cells:
            released.update(line.strip() for line in cell.source.splitlines())
    found = []
    for cell in nb.cells:
        inside = False
        for line in cell.source.splitlines():
            s = line.strip()
            if s.startswith("### BEGIN SOLUTION") or s.startswith("### BEGIN HIDDEN TESTS"):
                inside = True
            elif s.startswith("### END SOLUTION") or s.startswith("### END HIDDEN TESTS"):
                inside = False
            elif inside and len(s) >= 20 and s not in released and not s.startswith("#"):
                found.append(s)
    return found


def leaks(root: Path) -> dict[str, list[str]]:
    """Handout file -> the reference solution lines or region markers it contains."""
    lines = set(secrets())
    found = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        bad = sorted(lines & {line.strip() for line in text.splitlines()})
        if path.suffix == ".ipynb":
            bad += [m for m in FORBIDDEN if m in text]
        if bad:
            found[str(path.relative_to(root))] = bad
    return found


def check_clean(root: Path, strict_grader: bool = False) -> list[str]:
    """Raise HandoutError if the folder holds solutions, hidden checks, or reference solution lines
    outside the grader's own code; return warnings for lines of the grader's visible code that are
    also solution lines (``strict_grader``: an error too)."""
    if (root / "autograder" / "checks" / "hidden").exists() or (root / "solutions").exists():
        raise HandoutError("hidden checks or solutions in the handout")
    warnings = []
    for rel, bad in leaks(root).items():
        message = f"{rel} contains reference solution lines: {bad[:4]}"
        if rel.startswith("autograder/") and rel.endswith(".py") and not strict_grader:
            warnings.append(message)
        else:
            raise HandoutError(message)
    return warnings


def strip_catalogues(root: Path) -> list[Path]:
    """Make each message catalogue of the handout (``autograder/locale/<lang>/LC_MESSAGES/*.po`` and its .mo)
    hold only what the handout's own code uses: a message is kept when one of its source references is a
    file of the handout, and only those references are kept (no file, line or text of the hidden checks, the
    instructor's tools or anything else left out). Extracted comments go too; the .mo is compiled from the
    result. Returns the catalogues written."""
    from babel.messages.pofile import write_po

    from instructor.i18n import compiled, read_po

    written = []
    for po in sorted((root / "autograder" / "locale").glob("*/LC_MESSAGES/*.po")):
        catalog = read_po(po, locale=po.parent.parent.name)
        for msg in list(catalog):
            if not msg.id:
                continue  # the header
            kept = [(f, line) for f, line in msg.locations if (root / f).is_file()]
            if not kept:
                catalog.delete(msg.id, context=msg.context)
                continue
            msg.locations = kept
            msg.auto_comments = []
        catalog.obsolete.clear()  # old messages (#~) may be anyone's
        with open(po, "wb") as f:
            write_po(f, catalog, width=120, sort_output=False, include_previous=False)
        po.with_suffix(".mo").write_bytes(compiled(catalog))
        written.append(po)
    return written


def build(out: str | Path, as_zip: bool = False, lang: str = "en") -> Path:
    """Write the handout to the folder ``out`` (or the zip ``out``, .zip added); return its path. ``lang``:
    the notebook and README of that language (the notebook keeps its place, assignment/gpt_lab.ipynb)."""
    from instructor.generate import release_path, render

    notebook = release_path(lang)
    if notebook.read_text(encoding="utf-8") != render(REFERENCE, lang):
        option = f" --lang {lang}" if lang != "en" else ""
        raise HandoutError(f"{notebook.relative_to(REPO)} is out of date: run python -m instructor.generate{option}")
    out = Path(out)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / FOLDER_NAME
        (root / "assignment").mkdir(parents=True)
        shutil.copyfile(notebook, root / "assignment" / "gpt_lab.ipynb")
        _copy_tree(REPO / "autograder", root / "autograder")
        strip_catalogues(root)  # the messages of what the handout holds, nothing of the hidden checks
        (root / "data").mkdir()
        shutil.copyfile(REPO / "data" / "__init__.py", root / "data" / "__init__.py")
        (root / "README.md").write_text(_readme(lang), encoding="utf-8")
        (root / "pyproject.toml").write_text(pyproject_text(), encoding="utf-8")
        (root / ".gitignore").write_text("data/tinyshakespeare.txt\n__pycache__/\n.pytest_cache/\n.venv/\n*.pt\n")
        for warning in check_clean(root):
            print(f"warning: {warning}", file=sys.stderr)
        if as_zip or out.suffix == ".zip":
            out = out if out.suffix == ".zip" else out.with_name(out.name + ".zip")
            out.parent.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
                for path in sorted(root.rglob("*")):
                    if path.is_file():
                        z.write(path, Path(FOLDER_NAME) / path.relative_to(root))
        else:
            if out.exists():
                if not out.is_dir() or any(out.iterdir()):
                    raise HandoutError(f"{out} exists and is not an empty folder")
                out.rmdir()
            shutil.copytree(root, out)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m instructor.handout", description=__doc__.split("\n\n")[0])
    ap.add_argument("out", help="the folder to create (or the zip, with --zip or a .zip name)")
    ap.add_argument("--zip", action="store_true", help="write a zip holding the folder gpt-lab/")
    ap.add_argument("--lang", default="en", help="the handout's language: en (default) or es")
    args = ap.parse_args(argv)
    try:
        out = build(args.out, as_zip=args.zip, lang=args.lang)
    except HandoutError as exc:
        print(f"handout not built: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
