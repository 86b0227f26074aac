"""engine/submission.py: LocalSubmission in-process, RemoteSubmission's bookkeeping with a stand-in
worker, and RemoteSubmission with the session's real worker."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from autograder.engine.load import Cell, Program
from autograder.engine.submission import LocalSubmission, Obj, RemoteSubmission, SubmissionFailure, describe_call
from autograder.engine.worker_control import WorkerDied

CELLS = [
    "import torch\nimport torch.nn as nn\n",
    "class Scale(nn.Module):\n    def __init__(self, k, bias=0.0):\n        super().__init__()\n"
    "        self.k = nn.Parameter(torch.tensor(float(k)))\n        self.bias = bias\n"
    "    def forward(self, x):\n        return self.k * x + self.bias\n",
    "broken = 1 / 0\n",
    "def shape_of(t):\n    return tuple(t.shape)\n\ndef todo():\n    raise NotImplementedError\n",
]


def program(suffix=".ipynb") -> Program:
    return Program(Path(f"sub{suffix}"), [Cell(i + 1, s) for i, s in enumerate(CELLS)])


def exercise(sub):
    """What a check does, the same for both kinds of submission."""
    m = sub.new("Scale", 3, bias=1.0)
    assert isinstance(m, Obj) and m.what == "Scale(3, bias=1.0)"
    assert torch.equal(m(torch.ones(2)), torch.full((2,), 4.0))
    assert m.get("bias") == 1.0
    assert set(m.state_dict()) == {"k"}
    m.load_state_dict({"k": torch.tensor(0.5)})
    assert torch.equal(m(torch.ones(1)), torch.tensor([1.5]))
    assert sub.call("shape_of", torch.zeros(2, 5)) == (2, 5)
    assert sub.names()["Scale"] == "class"
    with pytest.raises(SubmissionFailure) as failure:
        sub.call("todo")
    assert failure.value.not_implemented and failure.value.what == "todo()"
    with pytest.raises(SubmissionFailure, match="NameError"):
        sub.get("broken")


def test_local_submission_runs_cells_and_answers_as_the_wire_would():
    sub = LocalSubmission.from_program(program())
    assert [c.ok for c in sub.load_report] == [True, True, False, True]
    assert sub.load_report[2].error_type == "ZeroDivisionError"
    exercise(sub)
    # the answer is a copy: changing it does not change the submission's object
    m = sub.new("Scale", 2)
    state = m.state_dict()
    state["k"] += 100
    assert m.state_dict()["k"].item() == 2.0


def test_describe_call_in_the_students_terms():
    assert describe_call("f", (torch.zeros(2, 3), torch.tensor(1.5), "a" * 40, list(range(9))), {"k": 2}) == \
        f"f(a tensor of shape (2, 3), 1.5, {'a' * 27 + '...'!r}, [9 items], k=2)"


def test_describe_call_names_the_contracts_parameters():
    params = ("n_embd", "head_size", "block_size", "dropout")
    assert describe_call("Head", (16, 8, 8, 0.0), {}, params) == "Head(n_embd=16, head_size=8, block_size=8, dropout=0.0)"
    assert describe_call("Head", (16, 8), {}, params) == "Head(n_embd=16, head_size=8)"
    # more arguments than declared names: all positional, never a keyword before a positional
    assert describe_call("f", (1, 2, 3), {}, ("a", "b")) == "f(1, 2, 3)"
    assert describe_call("f", (torch.zeros(2, 2, 16),), {"k": 1}, ("x",)) == "f(x=a tensor of shape (2, 2, 16), k=1)"


class FakeWorker:
    """Stands in for worker_control.Worker: answers from a script, records requests."""

    def __init__(self, script):
        self.script, self.requests, self.alive, self.proc = list(script), [], True, object()

    def request(self, message, timeout, deadline=None):
        self.requests.append(message)
        step = self.script.pop(0)
        if isinstance(step, BaseException):
            raise step
        return step

    def kill(self):
        self.alive = False

    def start(self):
        self.alive = True


def remote_with(script) -> RemoteSubmission:
    sub = RemoteSubmission(Program(Path("s.ipynb"), []))
    sub.worker = FakeWorker(script)
    sub.loaded = True
    return sub


def test_code_that_hung_once_is_not_run_again():
    sub = remote_with([WorkerDied("did not finish within 10 s", timed_out=True)])
    first = sub._request({"op": "call"}, 10, key="Head.forward")
    assert first["error"]["type"] == "Timeout"
    again = sub._request({"op": "call"}, 10, key="Head.forward")
    assert again["error"]["type"] == "Timeout" and "was not run again" in again["error"]["message"]
    assert len(sub.worker.requests) == 1


def test_a_death_is_recorded_and_forgotten_for_a_rerun():
    sub = remote_with([WorkerDied("the submission's process died with SIGSEGV")])
    answer = sub._request({"op": "call"}, 10, key="GPT.forward")
    assert answer["error"]["type"] == "ProcessDied" and sub.deaths == [("GPT.forward", answer["error"]["message"])]
    assert sub.hung["GPT.forward"][0] == "ProcessDied" and not sub.loaded
    sub.forget_deaths(0)
    assert sub.deaths == [] and "GPT.forward" not in sub.hung


def test_a_spent_budget_answers_without_asking():
    sub = remote_with([])
    sub.deadline = 0.0
    assert sub._request({"op": "ping"}, 10)["error"]["type"] == "Timeout"
    assert sub.worker.requests == []


def test_malformed_answers_become_submission_failures():
    sub = remote_with([{"no": "ok"}, {"ok": True, "value": {"__tensor__": ["float32", [3], "cpu", ""]}}])
    with pytest.raises(SubmissionFailure, match="malformed answer"):
        sub.get("x")
    with pytest.raises(SubmissionFailure, match="ProtocolError"):
        sub.get("x")


def test_remote_submission_with_a_real_worker(worker):
    sub = RemoteSubmission(program(".py"))
    sub.worker = worker  # the session's worker: alive, so the load runs in it without a restart
    report = sub.load()
    assert [c.ok for c in report.cells] == [True, True, False, True]
    assert report.cells[2].error_type == "ZeroDivisionError" and "cell 3" in report.cells[2].traceback
    exercise(sub)  # the session owns the worker: nothing to close here
