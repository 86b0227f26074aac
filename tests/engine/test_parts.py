"""autograder/parts.py: the registry, its validation, and the one rule for what a check is."""

from __future__ import annotations

from fractions import Fraction

import pytest

from autograder import parts


def write(tmp_path, text):
    path = tmp_path / "parts.toml"
    path.write_text(text)
    return path


def test_the_labs_registry():
    ids = parts.ids()
    assert ids[0] == "tokenizer" and len(set(ids)) == len(ids)
    rubric, bonus = parts.rubric()
    assert list(rubric) == list(ids) and bonus == {p.id for p in parts.all_parts() if p.bonus}
    assert bonus, "the lab has a bonus part"
    b = parts.part(next(iter(bonus)))
    assert b.cell_points == 0.0 and b.grade_id == f"check_{b.id}"
    head = parts.part("head")
    assert head.cell_points == float(head.points) and "Head" in head.names
    with pytest.raises(KeyError):
        parts.part("nope")


def test_read_a_valid_registry(tmp_path):
    got = parts.read(write(tmp_path, '[parts.a]\ntitle = "A"\npoints = 0.1234\nnames = ["X"]\n'
                                     '[parts.b]\npoints = 1\nbonus = true\n'))
    assert got == (parts.Part("a", "A", Fraction("0.1234"), False, ("X",)), parts.Part("b", "b", Fraction(1), True, ()))


def test_parameters_are_read_and_looked_up(tmp_path):
    got = parts.read(write(tmp_path, '[parts.a]\npoints = 1\nnames = ["F"]\n[parts.a.parameters]\nF = ["x", "y"]\n'
                                     '"F.forward" = ["z"]\n'))
    assert got[0].parameters == (("F", ("x", "y")), ("F.forward", ("z",)))
    # the lab's registry declares the contract's names (../shared/lab-contract.md)
    assert parts.parameters("Head") == ("n_embd", "head_size", "block_size", "dropout")
    assert parts.parameters("get_batch") == ("data", "block_size", "batch_size")
    assert parts.parameters("GPTLanguageModel.generate") == ("idx", "max_new_tokens")
    assert parts.parameters("not_a_name") == ()


@pytest.mark.parametrize("text, message", [
    ("x = 1\n", "no \\[parts"),
    ("[parts.Bad]\npoints = 1\n", "lower-case"),
    ("[parts.a]\npoints = 1\nweight = 2\n", "unknown keys"),
    ("[parts.a]\ntitle = 'x'\n", "points must be a number"),
    ("[parts.a]\npoints = 'lots'\n", "points must be a number"),
    ("[parts.a]\npoints = -1\n", ">= 0"),
    ("[parts.a]\npoints = 0.12345\n", "4 decimals"),
    ("[parts.a]\npoints = 1\nnames = 'Head'\n", "list of strings"),
    ("[parts.a]\npoints = 1\n[parts.a.parameters]\nF = 'x'\n", "parameters must map"),
    ("[parts.a]\npoints = 1\n[parts.a.parameters]\nF = ['not an identifier']\n", "parameters must map"),
])
def test_invalid_registries_are_refused(tmp_path, text, message):
    with pytest.raises(parts.RegistryError, match=message):
        parts.read(write(tmp_path, text))


def test_rubric_of_another_file_must_name_the_labs_parts(tmp_path):
    rubric, bonus = parts.rubric(write(tmp_path, "[parts.head]\npoints = 2\n"))
    assert rubric == {"head": Fraction(2)} and bonus == set()
    with pytest.raises(parts.RegistryError, match="does not have"):
        parts.rubric(write(tmp_path, "[parts.layernorm]\npoints = 2\n"))


def test_check_part_rule():
    assert parts.check_part("autograder.checks.test_head", "test_head_causal") == "head"
    assert parts.check_part("autograder.checks.hidden.test_head_hidden", "test_head_x") == "head"
    assert parts.check_part("autograder.checks.test_head", "test_gpt_causal") is None  # another part's name
    assert parts.check_part("autograder.checks.test_head", "helper") is None
    assert parts.check_part("autograder.checks.test_head", "test_head_x", obj=42) is None  # not callable
    assert parts.check_part("tests.test_head", "test_head_x") is None
    assert parts.is_hidden("autograder.checks.hidden.test_head_hidden")
    assert not parts.is_hidden("autograder.checks.test_head")


def test_checks_of_expands_parametrisations_and_adds_hidden():
    visible = parts.checks_of("head")
    hidden = parts.checks_of("head", hidden=True)
    assert visible and len(hidden) > len(visible) and hidden[: len(visible)] == visible
    assert all(fn.__name__.startswith("test_head_") for _, fn, _ in hidden)
    for pid in parts.ids():
        for label, fn, kwargs in parts.checks_of(pid):
            assert fn.__module__ == f"autograder.checks.test_{pid}"
            if kwargs:
                assert "[" in label


def test_hidden_counts_reads_the_manifest(tmp_path, monkeypatch):
    assert parts.hidden_counts()
    monkeypatch.setattr(parts, "HIDDEN_COUNTS", tmp_path / "missing.json")
    assert parts.hidden_counts() == {}
    (tmp_path / "bad.json").write_text("[1, 2]")
    monkeypatch.setattr(parts, "HIDDEN_COUNTS", tmp_path / "bad.json")
    assert parts.hidden_counts() == {}
    (tmp_path / "ok.json").write_text('{"head": "2"}')
    monkeypatch.setattr(parts, "HIDDEN_COUNTS", tmp_path / "ok.json")
    assert parts.hidden_counts() == {"head": 2}
