"""Tampering notes for a submitted notebook: its locked cells (the check cells, the given code)
compared with the released notebook. Runs in the grading process, on the notebook's JSON only:
nothing of the submission is executed or imported here.

The grade does not depend on it (``pytest autograder`` ignores the check cells a submission holds
and runs its own checks), but an instructor wants to know who edited a check cell, stripped its
nbgrader metadata or changed its points: :func:`notes` says so, one line per finding.

A student is judged against the release they received. When ``python -m instructor.generate`` replaces
a release whose nbgrader cells changed (a part's points, a new question), the old release's cells are
kept, as digests, in ``assignment/releases.json`` (:func:`record_release`, committed with the release):
a notebook whose locked cells are exactly those of an earlier release of its language is not tampered
with. Only releases the instructor made are kept there; nothing a submission says adds one.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from autograder.engine import load as loader

REPO = Path(__file__).resolve().parent.parent
RELEASE = REPO / "assignment" / "gpt_lab.ipynb"


HISTORY = REPO / "assignment" / "releases.json"  # {lang: [fingerprint of an earlier release, ...]}


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


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def fingerprint(nb: dict, locked_only: bool = False) -> dict[str, dict]:
    """grade_id -> what a release fixes of each nbgrader cell (locked, graded or answer cell; the locked
    ones only with ``locked_only``): its normalised source's digest, its points, its flags and nbgrader's
    checksum."""
    found = {}
    for cell in nb.get("cells", []) if isinstance(nb, dict) else []:
        meta = _nbgrader(cell) if isinstance(cell, dict) else {}
        if meta.get("grade_id") and (meta.get("locked") or not locked_only):
            found[str(meta["grade_id"])] = {
                "source": _digest(_normalise(_source(cell))), "points": meta.get("points"),
                "grade": bool(meta.get("grade")), "locked": bool(meta.get("locked")),
                "solution": bool(meta.get("solution")), "checksum": meta.get("checksum")}
    return found


def earlier_releases(lang: str = "en") -> list[dict[str, dict]]:
    """The fingerprints of the earlier releases of a language (oldest first)."""
    try:
        history = json.loads(HISTORY.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    kept = history.get(lang) if isinstance(history, dict) else None
    return [f for f in kept if isinstance(f, dict)] if isinstance(kept, list) else []


def record_release(lang: str, old_release: Path, new_text: str) -> bool:
    """Before ``old_release`` is replaced by ``new_text``: keep its fingerprint when its nbgrader cells
    differ from the new one's (a student may hold it). True when the history changed."""
    try:
        old = fingerprint(json.loads(Path(old_release).read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return False
    if not old or old == fingerprint(json.loads(new_text)) or old in earlier_releases(lang):
        return False
    try:
        history = json.loads(HISTORY.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        history = {}
    history.setdefault(lang, []).append(old)
    HISTORY.write_text(json.dumps(history, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return True


def notebook_lang(nb: dict) -> str:
    """The edition a notebook says it is (metadata.gptlab.lang), "en" when it says nothing usable."""
    meta = nb.get("metadata") if isinstance(nb, dict) else None
    gptlab = meta.get("gptlab") if isinstance(meta, dict) else None  # any JSON value: the student's
    lang = gptlab.get("lang") if isinstance(gptlab, dict) else None
    return lang if isinstance(lang, str) and lang != "en" and release_of(lang).is_file() else "en"


def as_released_before(grade_id: str, cell: dict | None, lang: str, fields: tuple[str, ...]) -> bool:
    """Whether a submitted cell (None: no cell holds that grade id) is, in ``fields`` of its fingerprint,
    the cell of an earlier release of ``lang``: a student who received that release changed nothing."""
    for old in earlier_releases(lang):
        if cell is None:
            if grade_id not in old:
                return True  # added since that release
            continue
        want = old.get(grade_id)
        got = fingerprint({"cells": [cell]}).get(grade_id)
        if want is not None and got is not None and all(got.get(f) == want.get(f) for f in fields):
            return True
    return False


def _locked(fp: dict[str, dict]) -> dict[str, dict]:
    return {g: c for g, c in fp.items() if c.get("locked")}


def findings(nb: dict, expected: dict[str, dict]) -> list[str]:
    """A notebook's locked cells compared with a release's fingerprint: one line per finding."""
    got = fingerprint(nb, locked_only=True)
    plain = {_digest(_normalise(_source(c))) for c in nb["cells"] if isinstance(c, dict) and not _nbgrader(c)}
    found = []
    for grade_id, want in _locked(expected).items():
        mine = got.get(grade_id)
        if mine is None:
            how = "its nbgrader metadata stripped" if want["source"] in plain else "deleted or its metadata changed"
            found.append(f"locked cell {grade_id}: {how}")
            continue
        if mine["source"] != want["source"]:
            found.append(f"locked cell {grade_id}: source edited")
        if mine["points"] != want["points"]:
            found.append(f"locked cell {grade_id}: points changed from {want['points']} to {mine['points']}")
        if mine["grade"] != want["grade"]:
            found.append(f"locked cell {grade_id}: nbgrader 'grade' flag changed")
    return found


def notes(submission: str | Path, release: str | Path | None = None) -> list[str]:
    """One line per locked cell that was edited, deleted (or lost its metadata), or whose
    nbgrader points changed; [] for an untouched notebook (of the current release or of an earlier one
    of its language), a .py module or an unreadable file. ``release``: by default the released notebook
    of the submission's language (metadata.gptlab.lang), and its earlier releases."""
    try:
        path = loader.locate_submission(Path(submission))
    except loader.SubmissionError:
        return []
    if path.suffix != ".ipynb":
        return []
    lang, earlier = "en", True
    try:
        nb = json.loads(loader.read_bytes_safely(path).decode("utf-8"))
        if release is None:
            lang = notebook_lang(nb)
            release = release_of(lang)
        else:
            earlier = False  # a release named by the caller: that one only
        expected = fingerprint(json.loads(Path(release).read_text(encoding="utf-8")))
    except (OSError, ValueError, RecursionError, loader.SubmissionError):
        return []  # the grader reports an unreadable notebook itself
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        return []
    found = findings(nb, expected)
    if found and earlier:  # judged against the release it is closest to: [] for an untouched earlier release
        found = min([found, *(findings(nb, old) for old in earlier_releases(lang))], key=len)
    return found
