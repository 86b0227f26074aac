"""engine/wire.py: round trips of every value type it documents, and its refusals."""

from __future__ import annotations

import base64
import json
import math
import socket
import struct

import pytest
import torch

from autograder.engine import wire

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.int32, torch.int16,
          torch.int8, torch.uint8, torch.bool]


def round_trip(value):
    """Through the encoder, the JSON text and the decoder, as a message travels."""
    return wire.from_jsonable(wire.loads(wire.dumps({"v": wire.to_jsonable(value)}))["v"])


def same(a, b) -> bool:
    """Equal in value *and* in type, recursively (a tuple is not a list, 1 is not 1.0 or True)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, torch.Tensor):
        return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return a == b


@pytest.mark.parametrize("value", [None, True, False, 0, -7, 2**62, 1.5, -0.0, "", "héllo\n", float("nan"),
                                   float("inf"), float("-inf")], ids=repr)
def test_scalars_round_trip(value):
    back = round_trip(value)
    assert same(back, value), (value, back)


def test_list_and_tuple_kept_apart():
    value = [1, (2, 3), [4, (5,)], ()]
    back = round_trip(value)
    assert same(back, value)
    assert type(back[1]) is tuple and type(back[2]) is list and type(back[2][1]) is tuple


def test_dict_round_trip_keeps_keys_order_and_nested_types():
    value = {"b": [1.0, None], "a": {"t": (True, "x")}, "__tensor__": 3}  # a key that looks like a marker
    back = round_trip(value)
    assert same(back, value)


def test_tensors_of_every_dtype_round_trip():
    for dtype in DTYPES:
        if dtype == torch.bool:
            t = torch.tensor([[True, False, True], [False, False, True]])
        elif dtype.is_floating_point:
            t = (torch.arange(6, dtype=torch.float64).reshape(2, 3) / 3 - 0.7).to(dtype)
        else:
            t = torch.arange(6).reshape(2, 3).to(dtype)
        back = round_trip(t)
        assert back.dtype == dtype, (dtype, back.dtype)
        assert back.shape == (2, 3)
        assert torch.equal(back, t), dtype


def test_tensor_special_floats_and_scalar_shape():
    t = torch.tensor([float("nan"), float("inf"), -float("inf"), 1e-30])
    back = round_trip(t)
    assert torch.equal(back.isnan(), t.isnan()) and torch.equal(back[1:], t[1:])
    s = round_trip(torch.tensor(2.5, dtype=torch.float64))
    assert s.shape == () and s.dtype == torch.float64 and s.item() == 2.5


def test_empty_tensors_keep_shape_and_dtype():
    for shape in [(0,), (3, 0), (0, 4, 2)]:
        t = torch.empty(shape, dtype=torch.int32)
        back = round_trip(t)
        assert back.shape == shape and back.dtype == torch.int32


def test_non_contiguous_tensor_travels_as_its_values():
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    for t in (base.t(), base[:, ::2], base[1:, 1:], base[:1].expand(2, 4)):
        assert not t.is_contiguous()
        back = round_trip(t)
        assert back.shape == t.shape and torch.equal(back, t)
        assert back.is_contiguous()


def test_decoded_tensor_shares_no_memory_and_drops_autograd():
    t = torch.ones(3, requires_grad=True)
    encoded = wire.to_jsonable(t)
    back = wire.from_jsonable(encoded)
    assert not back.requires_grad and type(back) is torch.Tensor
    back += 1
    assert torch.equal(t.detach(), torch.ones(3))
    assert torch.equal(wire.from_jsonable(encoded), torch.ones(3))


def test_tensor_subclass_arrives_as_plain_tensor():
    class Sneaky(torch.Tensor):
        pass

    t = torch.arange(3.0).as_subclass(Sneaky)
    back = round_trip(t)
    assert type(back) is torch.Tensor and torch.equal(back, torch.arange(3.0))


def test_handles_and_globals_round_trip_and_resolve():
    h, g = wire.Handle(7, "Head"), wire.Global("GPTLanguageModel")
    assert round_trip(h) == h and round_trip([g]) == [g]
    resolved = wire.from_jsonable(wire.to_jsonable({"m": h, "c": g}), resolve=lambda ref: ("got", ref))
    assert resolved == {"m": ("got", h), "c": ("got", g)}


def test_objects_become_handles_only_with_a_registry():
    obj = object()
    with pytest.raises(wire.ProtocolError):
        wire.to_jsonable(obj)
    seen = []
    encoded = wire.to_jsonable([obj], handle_for=lambda o: seen.append(o) or wire.Handle(1, "object"))
    assert seen == [obj] and wire.from_jsonable(encoded) == [wire.Handle(1, "object")]


def test_dict_with_non_string_keys_is_an_object_not_data():
    with pytest.raises(wire.ProtocolError):
        wire.to_jsonable({1: "a"})


# ---- refusals -------------------------------------------------------------------------------


def _tensor_spec(dtype="float32", shape=(2,), payload=None):
    payload = payload if payload is not None else base64.b64encode(b"\0" * 8).decode()
    return {"__tensor__": [dtype, list(shape), "cpu", payload]}


@pytest.mark.parametrize("forged", [
    {"__reduce__": ["os.system", ["true"]]},                 # a pickle-like payload
    {"py/object": "os.system"},
    {"__class__": "torch.nn.Module"},
    {"__tensor__": "gASVAAAA"},                              # pickle bytes in place of a spec
    _tensor_spec(dtype="object"),                            # a dtype not in the table
    _tensor_spec(dtype="complex64"),
    _tensor_spec(shape=(3,)),                                # 8 bytes for 3 float32
    _tensor_spec(shape=(-2,)),
    _tensor_spec(shape=(2.0,)),
    _tensor_spec(payload="not base64!"),
    _tensor_spec(shape=(2**62, 2**62, 0), payload=""),       # empty, yet past torch's sizes
    _tensor_spec(shape=(0, 2**70), payload=""),
    {"__float__": "1e400"},                                  # only nan / inf / -inf are spelled out
    {"__float__": "__import__('os')"},
    {"__tuple__": "abc"},
    {"__handle__": "1"},
    {"a": 1, "b": 2, "c": 3},                                # a bare dict is not data on the wire
], ids=lambda v: json.dumps(v)[:40])
def test_forged_values_are_refused(forged):
    with pytest.raises(wire.ProtocolError):
        wire.from_jsonable(forged)


def test_shape_data_mismatch_is_refused_both_ways():
    good = wire.to_jsonable(torch.arange(6, dtype=torch.int64))
    assert torch.equal(wire.from_jsonable(good), torch.arange(6))
    spec = list(good["__tensor__"])
    for shape in ([5], [7], [2, 4]):
        with pytest.raises(wire.ProtocolError, match="does not match"):
            wire.from_jsonable({"__tensor__": [spec[0], shape, spec[2], spec[3]]})


def nested(depth: int) -> list:
    value = []
    for _ in range(depth):
        value = [value]
    return value


def test_deep_nesting_is_refused_both_ways():
    assert wire.MAX_DEPTH == 32  # the documented bound: the figures below sit either side of it
    with pytest.raises(wire.ProtocolError):
        wire.to_jsonable(nested(40))
    with pytest.raises(wire.ProtocolError):
        wire.from_jsonable(nested(40))
    assert wire.from_jsonable(wire.to_jsonable(nested(30))) == nested(30)
    with pytest.raises(wire.ProtocolError):  # deeper than the JSON parser goes
        wire.loads(b"[" * 200_000 + b"]" * 200_000)


def test_too_many_values_are_refused_both_ways_a_tensor_counts_once():
    limit = 1000
    # the list itself is one value, so 999 items fit and 1000 do not
    assert wire.to_jsonable([0.5] * (limit - 1), max_values=limit) == [0.5] * (limit - 1)
    with pytest.raises(wire.TooManyValues):
        wire.to_jsonable([0.5] * limit, max_values=limit)
    with pytest.raises(wire.TooManyValues):  # nested inside tuples and dicts, counted the same
        wire.to_jsonable({"a": (list(range(600)),), "b": [list(range(600))]}, max_values=limit)
    big = wire.to_jsonable(torch.zeros(10 * limit), max_values=limit)  # bounded by bytes, not by values
    with pytest.raises(wire.TooManyValues):
        wire.from_jsonable([1] * limit, max_values=limit)
    assert wire.from_jsonable([big] * 10, max_values=limit)[0].shape == (10 * limit,)
    # the default is above the largest reference answer's count, and under a 3-million-float list
    assert 125_000 < wire.MAX_VALUES < 3_000_000
    with pytest.raises(wire.TooManyValues):
        wire.to_jsonable([0.5] * 3_000_000)


def test_loads_refuses_what_is_not_a_message():
    for data in (b"[1, 2]", b"\xff\xfe", b"{not json", b'"text"'):
        with pytest.raises(wire.ProtocolError):
            wire.loads(data)
    assert wire.loads(b'{"op": "ping"}') == {"op": "ping"}


def test_dumps_never_writes_bare_nan():
    with pytest.raises(ValueError):
        wire.dumps({"x": float("nan")})  # to_jsonable spells it {"__float__": "nan"} first
    assert b"NaN" not in wire.dumps({"x": wire.to_jsonable(float("nan"))})


def test_framing_round_trip_and_oversized_answer_refused_unread():
    a, b = socket.socketpair()
    try:
        message = {"ok": True, "value": wire.to_jsonable((torch.ones(2, 2), "x"))}
        wire.send(a, message)
        got = wire.recv(b, deadline=None)
        assert same(wire.from_jsonable(got["value"]), (torch.ones(2, 2), "x"))
        with pytest.raises(wire.ProtocolError):
            wire.send(a, {"value": "x" * 200}, max_bytes=100)
        # an announced length over the limit is refused before a byte of the body is read
        a.sendall(struct.pack("!Q", wire.MAX_ANSWER_BYTES + 1))
        with pytest.raises(wire.ProtocolError, match="refused"):
            wire.recv(b, max_bytes=wire.MAX_ANSWER_BYTES)
    finally:
        a.close()
        b.close()


def test_recv_exact_honours_its_deadline():
    import time

    a, b = socket.socketpair()
    try:
        a.sendall(struct.pack("!Q", 10) + b"{")  # a message that never finishes
        with pytest.raises(TimeoutError):
            wire.recv(b, deadline=time.monotonic() + 0.3)
    finally:
        a.close()
        b.close()
