"""engine/hidden_count.py: the manifest of hidden checks per part."""

from __future__ import annotations

import json

from autograder import parts
from autograder.engine import hidden_count


def test_counts_are_hidden_minus_visible_for_parts_with_hidden_checks():
    counts = hidden_count.count_hidden()
    for pid in parts.ids():
        visible = len(parts.checks_of(pid, hidden=False))
        total = len(parts.checks_of(pid, hidden=True))
        assert counts.get(pid, 0) == total - visible
    assert all(n > 0 for n in counts.values())


def test_committed_manifest_is_up_to_date():
    assert hidden_count.main(["--check"]) == 0
    assert json.loads(hidden_count.MANIFEST.read_text()) == hidden_count.count_hidden()


def test_check_fails_on_a_stale_manifest_and_write_repairs_it(tmp_path, monkeypatch, capsys):
    manifest = tmp_path / "hidden_manifest.json"
    monkeypatch.setattr(hidden_count, "MANIFEST", manifest)
    assert hidden_count.main(["--check"]) == 1  # missing
    manifest.write_text('{"head": 99}\n')
    assert hidden_count.main(["--check"]) == 1  # stale
    assert "out of date" in capsys.readouterr().err
    assert hidden_count.main([]) == 0
    assert json.loads(manifest.read_text()) == hidden_count.count_hidden()
    assert hidden_count.main(["--check"]) == 0
