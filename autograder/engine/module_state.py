"""A module's parameters and submodules, read and written without asking the module.

The grader's verdicts must not rest on what a submission's objects say about themselves: a class
may override ``state_dict``, ``load_state_dict``, ``parameters``, ``named_modules``,
``__getattr__``, ``__getattribute__`` or ``__class__``. So the worker never calls those here. It
walks the tables that ``torch.nn.Module.__init__`` itself creates (``_parameters``, ``_buffers``,
``_modules``) in the instance's own ``__dict__``, reached through functions captured when this
module is imported, before any student code runs: ``type()`` (which ``__class__`` cannot fool),
the ``__dict__`` descriptor of ``object``/``type`` and ``dict`` methods. Whatever the forward
then computes with the weights the grader wrote in is the module's behaviour, observed from
outside.

A module whose tables are not the plain ones (a ``__dict__`` property, a ``_parameters`` that is
not a dict, a parameter that is not exactly a tensor) is refused with ``Unreadable``: the grader
cannot put known weights in it, so no check that needs them passes.
"""

from __future__ import annotations

import types

import torch
import torch.nn as nn

# captured at import (before any student code runs in this process)
_type = type
_dict_type = dict
_getset = types.GetSetDescriptorType
_type_dict = type.__dict__["__dict__"].__get__  # cls -> its own mappingproxy, whatever its metaclass says
_type_mro = type.__dict__["__mro__"].__get__
_object_getattribute = object.__getattribute__
_dict_items = dict.items
_dict_get = dict.get
_issubclass = issubclass
_TENSOR_TYPES = (torch.Tensor, nn.Parameter)
_MODULE = nn.Module
_no_grad = torch.no_grad
_copy = torch.Tensor.copy_
_detach = torch.Tensor.detach


class Unreadable(TypeError):
    """The module's own tables cannot be read safely."""


def _instance_dict(obj) -> dict:
    """``obj``'s own ``__dict__``, refused if any class of its type replaces the descriptor."""
    for cls in _type_mro(_type(obj)):
        own = _type_dict(cls)
        if "__dict__" in own:
            if _type(own["__dict__"]) is not _getset:
                raise Unreadable(f"{_type(obj).__name__} replaces __dict__")
            break
    d = _object_getattribute(obj, "__dict__")
    if _type(d) is not _dict_type:
        raise Unreadable(f"{_type(obj).__name__}'s __dict__ is not a dict")
    return d


def _table(module, name: str) -> dict:
    table = _dict_get(_instance_dict(module), name)
    if _type(table) is not _dict_type:
        raise Unreadable(f"{_type(module).__name__} is not an initialised nn.Module (its {name} is missing)")
    return table


def is_module(obj) -> bool:
    return _issubclass(_type(obj), _MODULE)


def children(module) -> list[tuple[str, object]]:
    """The registered submodules, in registration order (None entries left out)."""
    return [(k, m) for k, m in _dict_items(_table(module, "_modules")) if m is not None and is_module(m)]


def named_modules(module, prefix: str = "") -> list[tuple[str, object]]:
    """Every registered submodule with its qualified name (the module itself as ""), duplicates included."""
    out = [(prefix, module)]
    for name, child in children(module):
        out.extend(named_modules(child, f"{prefix}.{name}" if prefix else name))
    return out


def _tensors(module, table: str) -> list[tuple[str, torch.Tensor]]:
    out = []
    for name, value in _dict_items(_table(module, table)):
        if value is None:
            continue
        if _type(value) not in _TENSOR_TYPES:
            raise Unreadable(f"{_type(module).__name__}.{name} is a {_type(value).__name__}, not a plain tensor")
        out.append((name, value))
    return out


def named_tensors(module, buffers: bool = True) -> list[tuple[str, torch.Tensor]]:
    """(qualified name, the tensor itself) of every registered parameter (and persistent buffer),
    in the order and with the names nn.Module.state_dict would give them."""
    out = []
    for prefix, m in named_modules(module):
        tables = ("_parameters", "_buffers") if buffers else ("_parameters",)
        transient = _dict_get(_instance_dict(m), "_non_persistent_buffers_set")
        for table in tables:
            for name, t in _tensors(m, table):
                if table == "_buffers" and _type(transient) is set and name in transient:
                    continue
                out.append((f"{prefix}.{name}" if prefix else name, t))
    return out


def read_state(module) -> dict[str, torch.Tensor]:
    """Every registered parameter and buffer, by qualified name, detached (the wire sends copies)."""
    with _no_grad():
        return {name: _detach(t) for name, t in named_tensors(module)}


def write_state(module, state: dict) -> None:
    """Copy ``state``'s tensors into the module's registered tensors of those names (in place, so
    the objects the forward holds get the values). Every key must name a registered tensor of the
    same shape; registered tensors that ``state`` does not name keep their values."""
    tensors = dict(named_tensors(module))
    for name, value in state.items():
        if name not in tensors:
            raise KeyError(f"no registered parameter or buffer {name!r}")
        target = tensors[name]
        if tuple(target.shape) != tuple(value.shape):
            raise ValueError(f"{name}: shape {tuple(target.shape)}, given {tuple(value.shape)}")
        with _no_grad():
            _copy(target, value.to(device=target.device, dtype=target.dtype))


def instance_attributes(obj) -> dict[str, str]:
    """The instance's own attributes (not the ones ``__getattr__`` invents) and their type names."""
    return {k: _type(v).__name__ for k, v in _dict_items(_instance_dict(obj))
            if isinstance(k, str) and not k.startswith("_")}


def training(module) -> bool:
    """The module's mode as nn.Module.train/eval set it (its own ``training`` entry)."""
    value = _dict_get(_instance_dict(module), "training")
    if _type(value) is not bool:
        raise Unreadable(f"{_type(module).__name__}.training is not a bool")
    return value
