"""engine/worker_ops.py: the operations a check may ask, answered as plain data or handles."""

from __future__ import annotations

import torch

from autograder.engine import wire
from autograder.engine.worker_ops import Runtime

SOURCE = """
import torch
import torch.nn as nn

class Lin(nn.Module):
    def __init__(self, n, m=2):
        super().__init__()
        self.lin = nn.Linear(n, m)
        self.blocks = nn.ModuleList([nn.ReLU(), nn.ReLU()])
    def forward(self, x):
        return self.lin(x)

def twice(x):
    return 2 * x

def helper_user():
    return Helper().value

class Helper:
    value = "student"

rate = 0.5
"""


def runtime() -> Runtime:
    rt = Runtime()
    assert rt.dispatch({"op": "exec_cell", "number": 1, "source": SOURCE})["value"]["__dict__"]["ok"]
    return rt


def ask(rt, **request):
    answer = wire.loads(wire.dumps(rt.dispatch({k: wire.to_jsonable(v) for k, v in request.items()})))
    assert answer["ok"], answer
    return wire.from_jsonable(answer["value"])


def test_names_lists_kinds():
    names = ask(runtime(), op="names")
    assert names["Lin"] == "class" and names["twice"] == "function" and names["rate"] == "float"
    assert not any(n.startswith("__") for n in names)


def test_new_returns_a_handle_and_one_object_keeps_one_handle():
    rt = runtime()
    h = ask(rt, op="new", cls="Lin", args=[3], kwargs={"m": 4}, seed=1)
    assert isinstance(h, wire.Handle) and h.type == "Lin"
    assert ask(rt, op="get", target=h, path="lin") == ask(rt, op="get", target=h, path="lin")
    w = ask(rt, op="get", target=h, path="lin.weight")
    assert type(w) is torch.Tensor and w.shape == (4, 3)
    again = ask(rt, op="new", cls="Lin", args=[3], kwargs={"m": 4}, seed=1)
    assert again != h and torch.equal(ask(rt, op="get", target=again, path="lin.weight"), w)  # seeded


def test_call_state_dict_load_state_dict_modules_attrs():
    rt = runtime()
    h = ask(rt, op="new", cls="Lin", args=[2])
    x = torch.ones(1, 2)
    out = ask(rt, op="call", target=h, args=[x])
    state = ask(rt, op="state_dict", target=h)
    assert set(state) == {"lin.weight", "lin.bias"}
    assert torch.allclose(out, x @ state["lin.weight"].T + state["lin.bias"])
    zeros = {k: torch.zeros_like(v) for k, v in state.items()}
    ask(rt, op="load_state_dict", target=h, state=zeros)
    assert torch.equal(ask(rt, op="call", target=h, args=[x]), torch.zeros(1, 2))
    modules = ask(rt, op="modules", target=h)
    assert [m[:2] for m in modules] == [["", "Lin"], ["lin", "Linear"], ["blocks", "ModuleList"],
                                        ["blocks.0", "ReLU"], ["blocks.1", "ReLU"]]
    assert ask(rt, op="get", target=h, path="blocks.1").type == "ReLU"
    assert ask(rt, op="attrs", target=h)["training"] == "bool"
    assert ask(rt, op="call", target=wire.Global("twice"), args=[(1, 2)]) == (1, 2, 1, 2)


def test_values_patch_the_namespace_for_one_call_only():
    rt = runtime()
    assert ask(rt, op="call", target=wire.Global("helper_user")) == "student"
    grader_helper = ask(rt, op="make", factory="LayerNorm", args=[2])
    assert grader_helper.type == "LayerNorm"
    answer = rt.dispatch({"op": "call", "target": wire.to_jsonable(wire.Global("helper_user")),
                          "values": wire.to_jsonable({"Helper": None})})
    assert not answer["ok"] and answer["error"]["type"] == "TypeError"
    assert ask(rt, op="call", target=wire.Global("helper_user")) == "student"  # put back


def test_errors_are_answers_never_raised():
    rt = runtime()
    cases = [({"op": "nope"}, "ProtocolError"), ({"op": 3}, "ProtocolError"),
             ({"op": "global", "name": "missing"}, "NameError"),
             ({"op": "call", "target": {"__handle__": 99, "type": "x"}}, "LookupError"),
             ({"op": "new", "cls": "rate"}, "TypeError"),
             ({"op": "call", "target": {"__global__": "twice"}, "args": []}, "TypeError")]
    for request, kind in cases:
        answer = rt.dispatch(request)
        assert answer["ok"] is False and answer["error"]["type"] == kind, (request, answer)


def test_time_limit_interrupts_the_call():
    rt = runtime()
    rt.dispatch({"op": "exec_cell", "number": 2, "source": "def spin():\n    while True:\n        try:\n            pass\n        except Exception:\n            pass\n"})
    answer = rt.dispatch({"op": "call", "target": {"__global__": "spin"}}, timeout=0.3)
    assert answer == {"ok": False, "error": {"type": "Timeout", "message": "ran past its 0.3 s limit"}}
    assert ask(rt, op="call", target=wire.Global("twice"), args=[3]) == 6  # the runtime still answers


def test_an_answer_of_millions_of_python_numbers_is_refused_while_encoding():
    rt = runtime()
    rt.dispatch({"op": "exec_cell", "number": 2, "source": "def many():\n    return [0.5] * 3_000_000\n"})
    answer = rt.dispatch({"op": "call", "target": {"__global__": "many"}})
    assert answer["ok"] is False and answer["error"]["type"] == "OutputTooLarge", answer
    assert f"{wire.MAX_VALUES:,}" in answer["error"]["message"] and "tensor" in answer["error"]["message"]
    assert len(wire.dumps(answer)) < 1000  # nothing of the list travels
    assert ask(rt, op="call", target=wire.Global("twice"), args=[3]) == 6


def test_guard_undoes_the_submissions_monkeypatching():
    saved = torch.manual_seed
    rt = Runtime(guard=True)
    try:
        answer = rt.dispatch({"op": "exec_cell", "number": 1, "source": "import torch\ntorch.manual_seed = lambda s: None\n"})
        assert answer["ok"]
        assert torch.manual_seed is saved
    finally:
        torch.manual_seed = saved


def test_reset_forgets_handles():
    rt = runtime()
    h = ask(rt, op="new", cls="Lin", args=[2])
    ask(rt, op="reset")
    answer = rt.dispatch({"op": "get", "target": wire.to_jsonable(h), "path": "lin"})
    assert answer["error"]["type"] == "LookupError"
