"""Unit tests of the grader's bounds (issue 13): exact shares of points, the zero report, the shared
locator, the bounded notebook parse, deadline-bounded reads with a cap on answers, the worker's disk
measure, and a report from a run whose configuration fails."""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

import pytest

from autograder.engine import load as loader
from autograder.engine import wire as protocol
from autograder.engine import report
from autograder.engine.worker_control import Worker

REPO = Path(__file__).resolve().parent.parent


# -- exact points ----------------------------------------------------------------------------------


@pytest.mark.parametrize("points", ["0.25", "0.5", "0.75", "1.0", "1", "0.3333", "6.5", "0.0001"])
def test_points_shares_add_up_exactly(points):
    for total in range(1, 25):
        part = report.PartScore("head", Fraction(points), False,
                                [report.Outcome("head", f"c{i}", f"n{i}", False, "passed") for i in range(total)])
        shares = part.shares()
        assert sum(shares) == Fraction(points), (points, total, shares)
        assert all(s * report.UNITS == int(s * report.UNITS) for s in shares)  # whole 1/10,000s
        assert max(shares) - min(shares) <= Fraction(1, report.UNITS)  # as equal as units allow
        assert part.score == Fraction(points)


def test_points_full_marks_results_json_is_exact():
    rubric, bonus = report.load_rubric()
    counts = {"head": 9, "tokenizer": 5, "get_batch": 3, "feedforward": 7, "decoder_block": 1, "quiz": 6}
    outcomes = [report.Outcome(p, f"c{i}", f"{p}{i}", False, "passed")
                for p in rubric for i in range(counts.get(p, 3))]
    parts = report.score_parts(outcomes, rubric, bonus, hidden_present=True)
    data = report.gradescope_json(parts)
    total_max = sum(Fraction(str(t["max_score"])) for t in data["tests"])
    assert total_max == sum(rubric.values())  # 6.5 of 6.5, not 6.4998
    assert Fraction(str(data["score"])) == total_max
    for p in rubric:
        assert sum(Fraction(str(t["max_score"])) for t in data["tests"] if t["tags"] == [p]) == rubric[p]


def test_points_partial_score_is_the_sum_of_passed_shares():
    part = report.PartScore("head", Fraction("1.0"), False,
                            [report.Outcome("head", f"c{i}", f"n{i}", False, "passed" if i % 2 else "failed")
                             for i in range(9)])
    data = report.gradescope_json([part])
    assert Fraction(str(data["score"])) == sum(Fraction(str(t["score"])) for t in data["tests"]) == part.score
    assert abs(float(part.score) - 4 / 9) < 2e-4  # one unit of 1/10,000 per check at most


def test_zero_report_names_the_cause_and_every_part():
    rubric, _ = report.load_rubric()
    data = report.zero_report("the grader could not start: OSError: boom")
    assert data["score"] == 0 and "OSError: boom" in data["output"]
    assert {t["tags"][0] for t in data["tests"]} == set(rubric)
    assert all(t["score"] == 0 and t["status"] == "failed" and "boom" in t["output"] for t in data["tests"])
    assert sum(Fraction(str(t["max_score"])) for t in data["tests"]) == sum(rubric.values())


# -- the shared locator ----------------------------------------------------------------------------------


def _notebook(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"cells": [{"cell_type": "code", "source": "x = 1", "metadata": {}}],
                                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


def test_locator_refuses_links_and_special_files(tmp_path):
    real = _notebook(tmp_path / "real" / "gpt_lab.ipynb")
    (tmp_path / "a").mkdir()
    os.symlink(real, tmp_path / "a" / "gpt_lab.ipynb")
    os.mkfifo(tmp_path / "fifo.ipynb")
    (tmp_path / "b").mkdir()
    os.link(real, tmp_path / "b" / "gpt_lab.ipynb")
    os.symlink("/dev/zero", tmp_path / "zero.ipynb")
    for bad in (tmp_path / "a" / "gpt_lab.ipynb", tmp_path / "a", tmp_path / "fifo.ipynb", tmp_path / "b",
                tmp_path / "zero.ipynb"):
        with pytest.raises(loader.Refused):
            loader.locate_submission(bad)
    start = time.monotonic()
    with pytest.raises(loader.SubmissionError):
        loader.read_submission(tmp_path / "fifo.ipynb")  # never blocks on the FIFO
    assert time.monotonic() - start < 5


def test_locator_finds_the_one_notebook_and_ignores_linked_folders(tmp_path):
    real = _notebook(tmp_path / "elsewhere" / "gpt_lab.ipynb")
    sub = tmp_path / "sub"
    _notebook(sub / "work" / "my_lab.ipynb")
    _notebook(sub / ".ipynb_checkpoints" / "my_lab-checkpoint.ipynb")
    os.symlink(real.parent, sub / "linked")  # a linked folder is never entered
    assert loader.locate_submission(sub) == sub / "work" / "my_lab.ipynb"
    with pytest.raises(loader.SubmissionError, match="does not exist"):
        loader.locate_submission(tmp_path / "missing")


# -- the bounded notebook parse --------------------------------------------------------------------------


def test_notebook_parse_is_bounded(tmp_path):
    deep = tmp_path / "deep.ipynb"
    deep.write_text('{"cells": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(loader.SubmissionError, match="nested too deeply"):
        loader.read_submission(deep)
    many = tmp_path / "many.ipynb"
    many.write_text('{"cells": [], "x": [' + ",".join(["0"] * (loader.MAX_JSON_VALUES + 1)) + "]}")
    with pytest.raises(loader.SubmissionError, match="JSON values"):
        loader.read_submission(many)


def test_notebook_odd_metadata_reads(tmp_path):
    p = tmp_path / "odd.ipynb"
    p.write_text(json.dumps({"metadata": ["a", "list"], "nbformat": 4, "cells": [
        {"cell_type": "code", "metadata": ["x"], "source": "a = 1"},
        {"cell_type": "code", "metadata": {"tags": [1, None], "nbgrader": ["x"]}, "source": ["b = ", "2"]},
        {"cell_type": "code", "metadata": {"tags": ["slow"]}, "source": "train()"},
        "not a cell",
    ]}))
    program = loader.read_submission(p)
    assert [c.source for c in program.cells] == ["a = 1", "b = 2"]


def test_notebook_ipython_is_transformed_in_the_worker_not_here(tmp_path):
    p = tmp_path / "magic.ipynb"
    p.write_text(json.dumps({"metadata": {}, "nbformat": 4, "cells": [
        {"cell_type": "code", "metadata": {}, "source": "%time x = 1\n!ls"}]}))
    (cell,) = loader.read_submission(p).cells
    assert cell.ipython and cell.source == "%time x = 1\n!ls"  # raw: the worker transforms it
    assert "get_ipython()" in loader.python_source(cell)


# -- deadline-bounded reads and the answer cap -----------------------------------------------------------


def test_recv_trickle_is_stopped_at_the_deadline():
    a, b = socket.socketpair()
    stop = threading.Event()

    def trickle():
        a.sendall(struct.pack("!Q", 1000))
        while not stop.is_set():
            try:
                a.sendall(b" ")
            except OSError:
                return
            time.sleep(0.1)  # each byte well inside any per-read timeout

    t = threading.Thread(target=trickle, daemon=True)
    t.start()
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        protocol.recv(b, deadline=time.monotonic() + 1.0)
    elapsed = time.monotonic() - start
    stop.set()
    a.close()
    b.close()
    assert elapsed < 1.5, elapsed  # the deadline, plus scheduling slack on a loaded 2-core machine


def test_recv_refuses_an_oversized_answer_unread():
    a, b = socket.socketpair()
    a.sendall(struct.pack("!Q", protocol.MAX_ANSWER_BYTES + 1))
    with pytest.raises(protocol.ProtocolError, match="refused"):
        protocol.recv(b, deadline=time.monotonic() + 5, max_bytes=protocol.MAX_ANSWER_BYTES)
    a.close()
    b.close()


# -- disk -----------------------------------------------------------------------------------------------


def test_worker_disk_measure(tmp_path):
    w = Worker()
    w.workdir = tmp_path
    (tmp_path / "d").mkdir()
    with open(tmp_path / "d" / "f.bin", "wb") as f:
        f.write(os.urandom(3 << 20))
    assert 3 << 20 <= w.disk_used() < 4 << 20
    for i in range(50):
        (tmp_path / f"e{i}").touch()
    assert w.disk_used(limit_entries=20) > (256 << 20)  # too many files count as over the quota


# -- a report whatever the configuration -----------------------------------------------------------------


def test_report_when_the_configuration_fails(tmp_path):
    rubric = tmp_path / "parts.toml"
    rubric.write_text("[parts.not_a_part]\npoints = 1\n")
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "autograder", "-q", "-p", "no:cacheprovider", "--submission",
         str(REPO / "solutions" / "gpt_lab.ipynb"), "--rubric", str(rubric), "--grade-json", str(out),
         "-k", "tokenizer"],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stdout[-2000:]
    assert "INTERNALERROR" not in proc.stdout + proc.stderr
    data = json.loads(out.read_text())
    assert data["score"] == 0 and "names parts the lab does not have" in data["output"]
    assert "not graded" in proc.stdout


def test_recv_refuses_deep_json():
    a, b = socket.socketpair()
    body = b"[" * 100_000 + b"]" * 100_000
    a.sendall(struct.pack("!Q", len(body)) + body)
    with pytest.raises(protocol.ProtocolError, match="nested"):
        protocol.recv(b, deadline=time.monotonic() + 5)
    a.close()
    b.close()


def test_worker_past_its_disk_quota_is_stopped(tmp_path, monkeypatch):
    """Without namespaces (no tmpfs), the grading process measures the worker's folder while it waits."""
    from autograder.engine import worker_control as sandbox

    monkeypatch.setattr(sandbox, "DISK_QUOTA_BYTES", 1 << 20)
    w = Worker()
    w.workdir = tmp_path
    w.proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        w._police()  # under the quota: nothing happens
        assert w.alive
        (tmp_path / "big.bin").write_bytes(os.urandom(2 << 20))
        with pytest.raises(sandbox.WorkerDied, match="to disk"):
            w._police()
        assert w.proc is None  # killed and reaped
    finally:
        if w.proc is not None:
            w.proc.kill()
            w.proc.wait()
