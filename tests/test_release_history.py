"""Students are judged against the release they received (instructor/tampering.py's release history):
after a points change or a new question, a notebook of the earlier release is not tampered with, in
grade_class's notes and in nbgrader's RepairStructure; an edit of an earlier release's locked cell still is."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from instructor import tampering

RELEASE = tampering.RELEASE


def _cell(nb: dict, grade_id: str) -> dict:
    return next(c for c in nb["cells"] if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id)


@pytest.fixture()
def releases(tmp_path, monkeypatch):
    """An old release (check_head worth 0.5, no check_quiz) replaced by today's: its fingerprint recorded."""
    monkeypatch.setattr(tampering, "HISTORY", tmp_path / "releases.json")
    new = json.loads(RELEASE.read_text(encoding="utf-8"))
    old = copy.deepcopy(new)
    _cell(old, "check_head")["metadata"]["nbgrader"]["points"] = 0.5
    old["cells"].remove(_cell(old, "check_quiz"))  # a check cell added since
    old_path = tmp_path / "old.ipynb"
    old_path.write_text(json.dumps(old), encoding="utf-8")
    return old, old_path, new


def _notes(tmp_path, nb: dict) -> list[str]:
    path = tmp_path / "sub" / "gpt_lab.ipynb"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(nb), encoding="utf-8")
    return tampering.notes(path)


def test_release_history_keeps_a_replaced_release_once(releases):
    old, old_path, new = releases
    text = RELEASE.read_text(encoding="utf-8")
    assert tampering.record_release("en", old_path, text) is True
    assert tampering.record_release("en", old_path, text) is False  # kept once
    assert tampering.record_release("en", RELEASE, text) is False  # unchanged cells: nothing to keep
    assert tampering.earlier_releases("en") == [tampering.fingerprint(old)]
    assert tampering.earlier_releases("es") == []


def test_release_history_an_earlier_release_is_not_tampered_with(releases, tmp_path):
    old, old_path, _ = releases
    assert _notes(tmp_path, old), "without the history the old release reads as tampered (the control)"
    tampering.record_release("en", old_path, RELEASE.read_text(encoding="utf-8"))
    assert _notes(tmp_path, old) == []
    edited = copy.deepcopy(old)
    _cell(edited, "check_head")["source"] = "print('full marks')"
    assert _notes(tmp_path, edited) == ["locked cell check_head: source edited"]
    forged = copy.deepcopy(old)  # points of an earlier release on one cell, today's elsewhere: no release
    _cell(forged, "check_gpt")["metadata"]["nbgrader"]["points"] = 9
    assert any("check_gpt: points changed" in n for n in _notes(tmp_path, forged))


def test_release_history_nbgrader_repair_is_silent_for_an_earlier_release(releases):
    from instructor.nbgrader_plugins import NotebookNode  # noqa: F401 - nbgrader present
    old, old_path, _ = releases
    head = _cell(old, "check_head")
    assert not tampering.as_released_before("check_head", head, "en", ("points",))
    tampering.record_release("en", old_path, RELEASE.read_text(encoding="utf-8"))
    assert tampering.as_released_before("check_head", head, "en", ("points", "grade", "locked", "checksum"))
    assert tampering.as_released_before("check_quiz", None, "en", ())  # added since: its absence is no change
    assert not tampering.as_released_before("check_gpt", None, "en", ())  # deleted by the student
    wrong = copy.deepcopy(head)
    wrong["metadata"]["nbgrader"]["points"] = 3
    assert not tampering.as_released_before("check_head", wrong, "en", ("points",))


def test_release_history_generate_records_the_replaced_edition(tmp_path, monkeypatch):
    pytest.importorskip("nbgrader")
    from instructor import generate

    monkeypatch.setattr(tampering, "HISTORY", tmp_path / "releases.json")
    dest = tmp_path / "assignment" / "gpt_lab.ipynb"
    dest.parent.mkdir()
    old = json.loads(RELEASE.read_text(encoding="utf-8"))
    _cell(old, "check_head")["metadata"]["nbgrader"]["points"] = 0.5
    dest.write_text(json.dumps(old), encoding="utf-8")
    monkeypatch.setattr(generate, "release_path", lambda lang="en": dest)
    monkeypatch.setattr(generate, "sync_source", lambda *a, **k: [])
    assert generate.main(["--lang", "en"]) == 0
    assert dest.read_text(encoding="utf-8") == RELEASE.read_text(encoding="utf-8")
    assert tampering.earlier_releases("en") == [tampering.fingerprint(old)]
    assert Path(tampering.HISTORY).is_file()
