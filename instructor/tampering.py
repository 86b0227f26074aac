"""Tampering notes for a submitted notebook: its locked cells (the check cells, the given code)
compared with the released notebook. Runs in the grading process, on the notebook's JSON only:
nothing of the submission is executed or imported here.

The grade does not depend on it (``pytest autograder`` ignores the check cells a submission holds
and runs its own checks), but an instructor wants to know who edited a check cell, stripped its
nbgrader metadata or changed its points: :func:`notes` says so, one line per finding.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from autograder.engine import load as loader

REPO = Path(__file__).resolve().parent.parent
RELEASE = REPO / "assignment" / "gpt_lab.ipynb"


def release_of(lang: str) -> Path:
    """The released notebook of a language (a translated notebook's locked cells hold translated docstrings)."""
    return RELEASE if lang == "en" else RELEASE.parent / lang / RELEASE.name


def releases() -> list[Path]:
    """Every released notebook: English and its translations."""
    return [RELEASE, *sorted(RELEASE.parent.glob(f"*/{RELEASE.name}"))]


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    if isinstance(source, list):
        source = "".join(s for s in source if isinstance(s, str))
    return source if isinstance(source, str) else ""


def _nbgrader(cell: dict) -> dict:
    meta = (cell.get("metadata") or {}) if isinstance(cell, dict) else {}
    nbg = meta.get("nbgrader") if isinstance(meta, dict) else None
    return nbg if isinstance(nbg, dict) else {}


_HIDDEN = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS.*?^[ \t]*### END HIDDEN TESTS[ \t]*$\n?", re.M | re.S)


def _normalise(source: str) -> str:
    # hidden-test regions: the instructor's source and nbgrader's autograded copies hold them, the
    # release does not; trailing blanks and the final newline are what editors change on their own
    source = _HIDDEN.sub("", source)
    return "\n".join(line.rstrip() for line in source.strip().splitlines())


def locked_cells(nb: dict) -> dict[str, dict]:
    """grade_id -> cell for the locked cells (check cells and given code) of a notebook's JSON."""
    found = {}
    for cell in nb.get("cells", []) if isinstance(nb, dict) else []:
        if not isinstance(cell, dict):
            continue
        meta = _nbgrader(cell)
        if meta.get("locked") and meta.get("grade_id"):
            found[str(meta["grade_id"])] = cell
    return found


def notes(submission: str | Path, release: str | Path | None = None) -> list[str]:
    """One line per locked cell that was edited, deleted (or lost its metadata), or whose
    nbgrader points changed; [] for an untouched notebook, a .py module or an unreadable file.
    ``release``: by default the released notebook of the submission's language (metadata.gptlab.lang)."""
    try:
        path = loader.locate_submission(Path(submission))
    except loader.SubmissionError:
        return []
    if path.suffix != ".ipynb":
        return []
    try:
        nb = json.loads(loader.read_bytes_safely(path).decode("utf-8"))
        if release is None:
            release = RELEASE
            meta = nb.get("metadata") if isinstance(nb, dict) else None
            gptlab = meta.get("gptlab") if isinstance(meta, dict) else None  # any JSON value: the student's
            lang = gptlab.get("lang") if isinstance(gptlab, dict) else None
            if isinstance(lang, str) and lang != "en" and release_of(lang).is_file():
                release = release_of(lang)
        expected = locked_cells(json.loads(Path(release).read_text(encoding="utf-8")))
    except (OSError, ValueError, RecursionError, loader.SubmissionError):
        return []  # the grader reports an unreadable notebook itself
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        return []
    got = locked_cells(nb)
    plain = {_normalise(_source(c)) for c in nb["cells"] if isinstance(c, dict) and not _nbgrader(c)}
    found = []
    for grade_id, cell in expected.items():
        want = _normalise(_source(cell))
        if grade_id not in got:
            how = "its nbgrader metadata stripped" if want in plain else "deleted or its metadata changed"
            found.append(f"locked cell {grade_id}: {how}")
            continue
        mine = got[grade_id]
        if _normalise(_source(mine)) != want:
            found.append(f"locked cell {grade_id}: source edited")
        if _nbgrader(mine).get("points") != _nbgrader(cell).get("points"):
            found.append(f"locked cell {grade_id}: points changed from {_nbgrader(cell).get('points')} "
                         f"to {_nbgrader(mine).get('points')}")
        if bool(_nbgrader(mine).get("grade")) != bool(_nbgrader(cell).get("grade")):
            found.append(f"locked cell {grade_id}: nbgrader 'grade' flag changed")
    return found
