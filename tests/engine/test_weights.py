"""Check weights (``[parts.<id>.weights]``): read by the registry, shared exactly by the report (issue 22)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from autograder import parts
from autograder.engine import report
from autograder.engine.report import Outcome, PartScore


def _write(tmp_path, text):
    path = tmp_path / "parts.toml"
    path.write_text(text)
    return path


def test_weights_are_read_by_property_with_hidden_and_default(tmp_path):
    (p,) = parts.read(_write(tmp_path, "[parts.x]\npoints = 1\n[parts.x.weights]\ncore = 6\nhidden = 3\n"))
    assert p.weight("test_x_core") == 6
    assert p.weight("test_x_shape") == 1  # not declared
    assert p.weight("test_x_anything", hidden=True) == 3


@pytest.mark.parametrize("table", ["core = 0", "core = 1.5", "core = \"6\"", "\"not an id\" = 2", "core = 1001"])
def test_invalid_weights_are_refused(tmp_path, table):
    with pytest.raises(parts.RegistryError, match="weights"):
        parts.read(_write(tmp_path, f"[parts.x]\npoints = 1\n[parts.x.weights]\n{table}\n"))


def test_every_declared_weight_names_a_check_of_its_part():
    for p in parts.all_parts():
        names = {fn.__name__.removeprefix(f"test_{p.id}_") for _, fn, _ in parts.checks_of(p.id, hidden=True)}
        for key, _ in p.weights:
            assert key == "hidden" or key in names, f"[parts.{p.id}.weights] {key}: no check test_{p.id}_{key}"


def test_shares_follow_the_weights_exactly():
    outcomes = [Outcome("x", n, n, False, "passed", "", w) for n, w in (("core", 6), ("a", 1), ("b", 1))]
    p = PartScore("x", Fraction("0.75"), False, outcomes, pending=1, pending_weight=4)
    shares = p.shares()
    assert sum(shares) == Fraction("0.75") and all((s * report.UNITS).denominator == 1 for s in shares)
    # 0.75 = 7500 units over weights 6 + 1 + 1 + 4 (the pending hidden check)
    assert shares == [Fraction(3750, 10_000), Fraction(625, 10_000), Fraction(625, 10_000), Fraction(2500, 10_000)]
    uneven = PartScore("x", Fraction("0.25"), False, outcomes).shares()  # 2500 units over 6 + 1 + 1
    assert uneven == [Fraction(1876, 10_000), Fraction(312, 10_000), Fraction(312, 10_000)]  # floors, remainder first
    assert p.score == sum(shares[:3]) and p.pending_points() == shares[3]
