"""benchmarks/gpu_check.py, on its CPU fallback (no GPU here): the grades table is printed and
equal for a repeated grading, the run says at its top and bottom that no GPU was there, and a
grade that differs between runs makes it fail (nonzero exit), whether a part's score or a single
check's status differs."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "benchmarks" / "gpu_check.py"

pytestmark = [pytest.mark.e2e_paths,
              pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU fallback; a GPU is here")]


def _load():
    if "gpu_check" in sys.modules:
        return sys.modules["gpu_check"]
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gpu_check", module)  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "--device", "auto", "--jobs", "2", *args],
                          cwd=REPO, capture_output=True, text=True, timeout=600)


def _row(out: str, name: str) -> str:
    rows = [line for line in out.splitlines() if line.split()[:1] == [name]]
    assert len(rows) == 1, f"expected one table row for {name}, got {rows}:\n{out}"
    return rows[0]


def test_gpu_check_fallback_prints_equal_grades_and_says_no_gpu():
    proc = _run("--submissions", "reference", "--train-steps", "10", "--eval-iters", "2",
                "--sample-tokens", "40")
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    lines = [line for line in out.splitlines() if line.strip("=")]
    assert lines[0].startswith("NO GPU HERE") and "NO GPU HERE" in lines[-1], out
    header = next(line for line in out.splitlines() if line.startswith("submission"))
    assert "tokenizer" in header and "train" in header and header.endswith("same"), header
    ref = _row(out, "reference")
    # the reference earns every point of every part (tokenizer 0.50 ... quiz 0.50)
    assert ref.endswith("yes") and len(ref.split()) == len(header.split()) and "0.00" not in ref, ref
    assert "grades identical across cpu#1 / cpu#2: yes" in out
    assert "10 steps in" in out and "val loss reached" in out, out
    sample = out.split("sample (prompt 'ROMEO:'):\n", 1)[1].split("\ntime of each step:", 1)[0]
    assert sample.startswith("ROMEO:") and len(sample) == len("ROMEO:") + 40, sample
    for step in ("grading run 1 (cpu", "grading run 2 (cpu", "training (tiny", "sampling (40 tokens)", "total"):
        assert step in out, f"the time of '{step}' is missing:\n{out}"


def test_gpu_check_fails_when_a_grade_differs():
    # a mutant graded in place of the reference in the second run: a real difference through the real grader
    proc = _run("--submissions", "reference", "--swap", "reference=train_no_zero_grad", "--no-train")
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    row = _row(out, "reference")
    # train: full marks in the first run, less in the second (the mutant's share is the grader's business)
    pair = re.search(r"0\.50\|(\d+\.\d\d)", row)
    assert row.endswith("NO") and pair and float(pair.group(1)) < 0.50, row
    assert "grades identical across cpu#1 / cpu#2: NO" in out
    assert "DIFFERENCE reference / train" in out and "FAIL:" in out, out
    assert "NO GPU HERE" in out.strip("=\n").splitlines()[-1], out


def test_gpu_check_compare_flags_a_check_status_difference_with_equal_part_scores(capsys):
    gc = _load()
    # two checks of one part trade places: the part's score is the same, the grades are not
    a = gc.Grade({"head": 0.5}, {"head: causal": "passed", "head: scale": "failed"}, {})
    b = gc.Grade({"head": 0.5}, {"head: causal": "failed", "head: scale": "passed"}, {})
    diffs, parts = gc.compare({"sub": [a, b]}, ["cpu#1", "cuda#2"])
    assert parts == ["head"]
    assert len(diffs) == 1 and "head: causal (passed -> failed)" in diffs[0], diffs
    assert _row(capsys.readouterr().out, "sub").endswith("NO")
    same, _ = gc.compare({"sub": [a, a]}, ["cpu#1", "cpu#2"])
    assert same == []


def test_gpu_check_compare_flags_a_run_without_results(capsys):
    gc = _load()
    a = gc.Grade({"gpt": 0.5}, {"gpt: shape": "passed"}, {})
    broken = gc.Grade({}, {}, {}, error="no results.json: worker died")
    diffs, _ = gc.compare({"sub": [a, broken]}, ["cpu#1", "cuda#2"])
    assert any("worker died" in d for d in diffs) and any("sub / gpt" in d for d in diffs), diffs
    assert "0.50|-" in _row(capsys.readouterr().out, "sub")
