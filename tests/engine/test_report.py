"""engine/report.py: exact shares, bonus, pending hidden checks, the zero report, the atomic writer."""

from __future__ import annotations

import json
import os
from fractions import Fraction

import pytest

from autograder import parts as registry
from autograder.engine import report
from autograder.engine.report import Outcome, PartScore


def outcomes(part, statuses, hidden=False):
    return [Outcome(part, f"check {i}", f"n{i}", hidden, s) for i, s in enumerate(statuses)]


@pytest.mark.parametrize("checks", [3, 7, 11])
@pytest.mark.parametrize("points", ["0.25", "1", "0.5", "1.3333"])
def test_shares_are_whole_units_that_add_up_exactly(points, checks):
    p = PartScore("head", Fraction(points), False, outcomes("head", ["passed"] * checks))
    shares = p.shares()
    assert len(shares) == checks
    assert sum(shares) == Fraction(points)
    assert all((s * report.UNITS).denominator == 1 for s in shares)
    assert max(shares) - min(shares) <= Fraction(1, report.UNITS)
    assert shares == sorted(shares, reverse=True)  # the remainder goes to the first checks
    assert p.score == Fraction(points)


def test_quarter_point_over_three_checks():
    p = PartScore("x", Fraction("0.25"), False, outcomes("x", ["passed", "failed", "passed"]))
    assert p.shares() == [Fraction(834, 10_000), Fraction(833, 10_000), Fraction(833, 10_000)]
    assert p.score == Fraction(834 + 833, 10_000)
    assert p.passed == 2 and p.first_failure.startswith("check 1")


def test_pending_hidden_checks_take_their_shares_but_score_nothing():
    p = PartScore("x", Fraction(1), False, outcomes("x", ["passed", "passed"]), pending=2)
    assert p.total == 4 and p.shares() == [Fraction(1, 4)] * 4
    assert p.score == Fraction(1, 2) and p.pending_points() == Fraction(1, 2)


def test_score_parts_counts_pending_only_when_hidden_absent():
    rubric, bonus = registry.rubric()
    counts = registry.hidden_counts()
    assert counts, "the manifest lists hidden checks"
    part = next(iter(counts))
    absent = {p.part: p for p in report.score_parts(outcomes(part, ["passed"]), rubric, bonus, hidden_present=False)}
    present = {p.part: p for p in report.score_parts(outcomes(part, ["passed"]), rubric, bonus, hidden_present=True)}
    assert absent[part].pending == counts[part] and present[part].pending == 0
    assert list(absent) == [p for p in registry.ids() if p in rubric]  # the registry's order, every part
    assert absent[part].score < present[part].score == rubric[part]


def test_bonus_counts_in_score_not_in_maximum():
    parts = [PartScore("a", Fraction(1), False, outcomes("a", ["passed", "failed"])),
             PartScore("b", Fraction("0.5"), True, outcomes("b", ["passed"]))]
    results = report.gradescope_json(parts)
    assert results["score"] == 1  # 0.5 of a + 0.5 of bonus b
    last = report.table(parts).splitlines()[-1]
    assert last == "total 0.50 / 1.00  + bonus 0.50 / 0.50"
    assert "b (bonus)" in report.table(parts)


def test_results_json_lines_shares_and_visibility():
    parts = [PartScore("a", Fraction("0.25"), False, outcomes("a", ["passed", "failed"]) + outcomes("a", ["passed"], hidden=True))]
    tests = report.gradescope_json(parts)["tests"]
    assert [t["max_score"] for t in tests] == [0.0834, 0.0833, 0.0833]
    assert [t["score"] for t in tests] == [0.0834, 0, 0.0833]
    assert [t["visibility"] for t in tests] == ["visible", "visible", "after_published"]
    assert [t["status"] for t in tests] == ["passed", "failed", "passed"]
    assert all(t["tags"] == ["a"] for t in tests)


def test_num_is_shortest_exact():
    assert report._num(Fraction(1)) == 1 and type(report._num(Fraction(1))) is int
    assert report._num(Fraction(833, 10_000)) == 0.0833


def test_zero_report_covers_every_part_with_the_cause():
    rubric, bonus = registry.rubric()
    results = report.zero_report("the notebook could not be read")
    assert results["score"] == 0 and "the notebook could not be read" in results["output"]
    assert sorted(t["tags"][0] for t in results["tests"]) == sorted(p for p in rubric if rubric[p])
    assert all(t["score"] == 0 and "the notebook could not be read" in t["output"] for t in results["tests"])
    assert sum(Fraction(str(t["max_score"])) for t in results["tests"]) == sum(rubric.values())


def test_zero_report_when_the_registry_itself_fails(monkeypatch):
    def broken():
        raise registry.RegistryError("parts.toml is broken")

    monkeypatch.setattr(registry, "rubric", broken)
    results = report.zero_report("cause")
    assert results["score"] == 0 and results["tests"] == [] and "cause" in results["output"]


def test_write_json_replaces_a_forged_file_atomically(tmp_path):
    target = tmp_path / "out" / "results.json"
    target.parent.mkdir()
    target.write_text('{"score": 100, "forged": true, "tests": [')  # torn and forged
    os.chmod(target, 0o600)
    report.write_json(target, {"score": 1.5, "tests": []})
    assert json.loads(target.read_text()) == {"score": 1.5, "tests": []}
    assert oct(target.stat().st_mode & 0o777) == "0o644"
    assert [p.name for p in target.parent.iterdir()] == ["results.json"]  # no temporary left


def test_write_json_leaves_the_old_file_whole_when_writing_fails(tmp_path):
    target = tmp_path / "results.json"
    report.write_json(target, {"score": 1})
    with pytest.raises(TypeError):
        report.write_json(target, {"score": object()})
    assert json.loads(target.read_text()) == {"score": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_write_json_replaces_a_symlink_instead_of_writing_through_it(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    target = tmp_path / "results.json"
    target.symlink_to(victim)
    report.write_json(target, {"score": 0})
    assert victim.read_text() == "keep me" and not target.is_symlink()
