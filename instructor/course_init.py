"""Make an nbgrader course folder for gpt-lab somewhere else than ``course/`` (a JupyterHub home, a
temporary folder for the tests):

    python -m instructor.course_init DIR [--link]
    python -m instructor.course_init DIR --lang es     # the Spanish course: the Spanish source notebook

DIR gets ``nbgrader_config.py`` (the template ``course/nbgrader_config.py``, pointed at this checkout,
whose ``autograder/``, ``data/`` and ``solutions/`` the check cells use) and
``source/gpt_lab/gpt_lab.ipynb``: a copy of ``solutions/gpt_lab.ipynb`` (``--link``: a symbolic link, so
that edits of the reference reach the course). The folder ``course/`` of the repository needs no
init: its source is already a link to the reference.

``--lang es``: the source notebook is the Spanish instructor notebook, generated from the reference and its
translation layer (``instructor/i18n.py``), and the config's ``ClearSolutions`` writes the Spanish stubs,
so that ``nbgrader generate_assignment`` releases what ``python -m instructor.generate --lang es`` commits.
The grader's messages follow the notebook's language (``c.GradeInSandbox.lang`` can force one).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = REPO / "course" / "nbgrader_config.py"
REFERENCE = REPO / "solutions" / "gpt_lab.ipynb"
ASSIGNMENT = "gpt_lab"


def init(dest: str | os.PathLike, link: bool = False, reference: Path = REFERENCE, lang: str = "en") -> Path:
    if lang != "en" and link:
        raise ValueError("--link is for the English source: a translated source is generated, not linked")
    dest = Path(dest).resolve()
    source = dest / "source" / ASSIGNMENT
    source.mkdir(parents=True, exist_ok=True)
    text = TEMPLATE.read_text(encoding="utf-8")
    marker = "_DEFAULT_ROOT = None"
    if marker not in text:
        raise RuntimeError(f"{TEMPLATE} has no line {marker!r}")
    text = text.replace(marker, f"_DEFAULT_ROOT = {str(REPO)!r}", 1)
    if lang != "en":
        from instructor.generate import STUBS

        text += (f"\n# the {lang} course: nbgrader's stubs in the notebook's language (instructor.course_init --lang)\n"
                 f"c.ClearSolutions.code_stub = {STUBS[lang]['code_stub']!r}\n"
                 f"c.ClearSolutions.text_stub = {STUBS[lang]['text_stub']!r}\n")
    (dest / "nbgrader_config.py").write_text(text, encoding="utf-8")
    target = source / f"{ASSIGNMENT}.ipynb"
    if target.is_symlink() or target.exists():
        target.unlink()
    if lang != "en":
        from instructor.generate import render_source

        target.write_text(render_source(Path(reference), lang), encoding="utf-8")
    elif link:
        target.symlink_to(Path(reference).resolve())
    else:
        shutil.copyfile(reference, target)
    return dest


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m instructor.course_init", description=__doc__.split("\n\n")[0])
    ap.add_argument("dest", help="the course folder to create (or refresh)")
    ap.add_argument("--link", action="store_true", help="link the reference instead of copying it")
    ap.add_argument("--lang", default="en", help="the course's language: en (default) or es")
    args = ap.parse_args(argv)
    dest = init(args.dest, link=args.link, lang=args.lang)
    print(f"course folder ready: {dest}\n  cd {dest} && nbgrader generate_assignment {ASSIGNMENT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
