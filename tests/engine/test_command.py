"""engine/command.py: the one builder of ``pytest autograder ...`` command lines."""

from __future__ import annotations

import sys
from pathlib import Path

from autograder.engine import command


def value_of(args, flag):
    assert args.count(flag) == 1, (flag, args)
    return args[args.index(flag) + 1]


def test_minimal_arguments(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = command.pytest_args("sub.ipynb", "out/results.json")
    assert args[0] == str(command.REPO / "autograder")
    assert value_of(args, "--submission") == str(tmp_path / "sub.ipynb")  # absolute: the run may change folder
    assert value_of(args, "--grade-json") == "out/results.json"
    assert value_of(args, "--rootdir") == str(command.REPO)
    assert value_of(args, "-p") == "no:cacheprovider"
    for absent in ("--reference", "--time-budget", "--device"):
        assert absent not in args


def test_every_option(tmp_path):
    ref = tmp_path / "ref.ipynb"
    ref.write_text("{}")
    args = command.pytest_args(tmp_path / "s.py", tmp_path / "g.json", reference=ref, root=tmp_path / "checkout",
                               time_budget=90.0, device="cuda", extra=["-x", "-k", "head"])
    assert args[0] == str(tmp_path / "checkout" / "autograder")
    assert value_of(args, "--rootdir") == str(tmp_path / "checkout")
    assert value_of(args, "--reference") == str(ref.resolve())
    assert value_of(args, "--time-budget") == "90"
    assert value_of(args, "--device") == "cuda"
    assert args[-3:] == ["-x", "-k", "head"]


def test_reference_is_resolved_through_links(tmp_path):
    real = tmp_path / "real.ipynb"
    real.write_text("{}")
    (tmp_path / "link.ipynb").symlink_to(real)
    args = command.pytest_args("s", "g", reference=tmp_path / "link.ipynb")
    assert value_of(args, "--reference") == str(real)


def test_fractional_time_budget_is_kept():
    assert value_of(command.pytest_args("s", "g", time_budget=2.5), "--time-budget") == "2.5"


def test_grader_command_runs_this_interpreter():
    cmd = command.grader_command("s.ipynb", "g.json", device="cpu")
    assert cmd[:3] == [sys.executable, "-m", "pytest"]
    assert cmd[3:] == command.pytest_args("s.ipynb", "g.json", device="cpu")
    assert Path(value_of(cmd, "--submission")).is_absolute()
