"""module_state: a module's state read and written without asking the module (issue 22)."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
import torch.nn as nn

from autograder.engine import module_state, wire
from autograder.engine.worker_ops import Runtime


class Liar(nn.Module):
    """Reports weights its forward never uses; ignores loading; disguises its class and submodules."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(OrderedDict(fc=nn.Linear(2, 3), act=nn.ReLU()))
        self.register_buffer("mask", torch.ones(2))
        self.register_buffer("scratch", torch.zeros(1), persistent=False)
        self.plain = torch.zeros(3)

    def state_dict(self, *args, **kwargs):
        return {"net.fc.weight": torch.zeros(3, 2)}

    def load_state_dict(self, *args, **kwargs):
        return None

    def named_modules(self, *args, **kwargs):
        yield "", self

    def parameters(self, recurse=True):
        return iter(())

    @property
    def __class__(self):
        return nn.Identity

    def __getattr__(self, name):
        return "lie" if name == "training" else super().__getattr__(name)


def test_state_is_read_from_the_tables_not_the_methods():
    m = Liar()
    state = module_state.read_state(m)
    assert list(state) == ["mask", "net.fc.weight", "net.fc.bias"]  # state_dict's order; no non-persistent buffer
    assert torch.equal(state["net.fc.weight"], m.net.fc.weight.detach())
    assert [n for n, _ in module_state.named_modules(m)] == ["", "net", "net.fc", "net.act"]
    assert module_state.instance_attributes(m)["plain"] == "Tensor"  # a plain attribute, not a buffer
    assert module_state.training(m) is True


def test_state_is_written_into_the_registered_tensors():
    m = Liar()
    w = torch.arange(6.0).reshape(3, 2)
    module_state.write_state(m, {"net.fc.weight": w})
    assert torch.equal(m.net.fc.weight.detach(), w)  # the forward's own tensor holds it
    with pytest.raises(KeyError):
        module_state.write_state(m, {"net.fc.nothing": w})
    with pytest.raises(ValueError):
        module_state.write_state(m, {"net.fc.weight": torch.zeros(2, 2)})


def test_a_replaced_dict_is_refused():
    class Hidden(nn.Module):
        @property
        def __dict__(self):
            return {"_parameters": {}, "_buffers": {}, "_modules": {}}

    with pytest.raises(module_state.Unreadable):
        module_state.read_state(Hidden())


def test_the_worker_answers_state_from_the_tables():
    rt = Runtime({"Liar": Liar})
    obj = rt.op_new("Liar")
    handle = wire.to_jsonable(rt.handle_for(obj))
    state = rt.op_state_dict(handle)
    assert set(state) == {"net.fc.weight", "net.fc.bias", "mask"}
    rt.op_load_state_dict(handle, wire.to_jsonable({"net.fc.bias": torch.ones(3)}))
    assert torch.equal(obj.net.fc.bias.detach(), torch.ones(3))
    assert [row[0] for row in rt.op_modules(handle)] == ["", "net", "net.fc", "net.act"]
