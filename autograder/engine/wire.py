"""The wire format between the grading process and the submission's worker process.

Messages are JSON documents: never pickle, because the grading process must not run code that the
student's process chose (unpickling can call any importable function). Values that cross the wire:

- None, bool, int, float (NaN and infinities included), str;
- list, tuple (kept apart), dict with string keys;
- tensors: ``{"__tensor__": [dtype, shape, device, base64 bytes]}``, decoded into a fresh, plain,
  contiguous CPU tensor that shares memory with nothing in either process;
- handles to objects that stay in the worker (modules, optimisers, anything else):
  ``{"__handle__": id, "type": "ClassName"}``;
- references to names in the submission's namespace (``{"__global__": "Head"}``), sent by the grader.

The decoder validates every field, so a forged or corrupt message raises ``ProtocolError``
instead of producing a value that merely looks right.
"""

from __future__ import annotations

import base64
import json
import math
import numbers
import struct
import time
from dataclasses import dataclass
from typing import Any

import torch

# dtypes a check may receive; anything else is refused by the decoder
_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float64": torch.float64,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "int64": torch.int64,
    "int32": torch.int32,
    "int16": torch.int16,
    "int8": torch.int8,
    "uint8": torch.uint8,
    "bool": torch.bool,
}
_NAMES = {v: k for k, v in _DTYPES.items()}

MAX_MESSAGE_BYTES = 256 * 1024 * 1024  # a check never needs more; a bigger message is refused
# What the grading process reads back from the worker: the largest answer a check of the reference
# gets is 250 KB (benchmarks/grading_bounds.py prints it); 16 MB leaves 60x room, and bounds the
# grading process's memory for one answer (the JSON text, its parse and the decoded tensors) to
# ~100 MB.
MAX_ANSWER_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 32
# Plain values (numbers, strings, ...) in one message; a tensor counts as one. The reference's largest
# answer (250 KB of JSON) holds at most ~125,000 of them, since each takes two bytes or more. A list of
# millions of floats fits in MAX_ANSWER_BYTES but costs seconds to encode and parse on every call, and
# ~100 bytes of memory per value once parsed: it is refused while it is being encoded, at the first
# value over the cap.
MAX_VALUES = 1 << 18


class ProtocolError(Exception):
    """A message that is not what the grader asked for (malformed, forged or too large)."""


class TooManyValues(ProtocolError):
    """A value with more than ``MAX_VALUES`` plain values in it (a tensor counts as one)."""

    def __init__(self, limit: int = MAX_VALUES):
        super().__init__(f"more than {limit:,} values in one message")
        self.limit = limit


class _Bounds:
    """Counts the values of one message as it is encoded or decoded; refuses past the caps."""

    def __init__(self, max_values: int):
        self.max_values = max_values
        self.count = 0

    def visit(self, depth: int) -> None:
        self.count += 1
        if self.count > self.max_values:
            raise TooManyValues(self.max_values)
        if depth > MAX_DEPTH:
            raise ProtocolError("value nested too deeply")


@dataclass(frozen=True)
class Handle:
    """A reference to an object that lives in the worker process."""

    id: int
    type: str

    def __repr__(self) -> str:
        return f"<{self.type} in the submission's process>"


@dataclass(frozen=True)
class Global:
    """A reference to a name in the submission's namespace, resolved in the worker."""

    name: str


# ---------------------------------------------------------------------------------------------
# encoding (both sides)


def encode_tensor(t: torch.Tensor) -> dict:
    device = str(t.device)
    # strip any subclass and autograd state; copy to CPU memory owned by the encoder
    plain = torch.Tensor.as_subclass(t.detach(), torch.Tensor).to("cpu").contiguous()
    if plain.dtype not in _NAMES:
        plain = plain.to(torch.float32)
    if plain.dtype == torch.bfloat16:
        raw = plain.view(torch.int16).numpy().tobytes()
    else:
        raw = plain.numpy().tobytes()
    return {"__tensor__": [_NAMES[plain.dtype], list(plain.shape), device, base64.b64encode(raw).decode()]}


def to_jsonable(value: Any, handle_for=None, max_values: int = MAX_VALUES) -> Any:
    """Turn a value into JSON-able data; objects that are not plain data become handles.

    ``handle_for(obj) -> Handle`` registers such objects (worker side); without it they are an error.
    More than ``max_values`` values raise ``TooManyValues`` as soon as the cap is passed.
    """
    bounds = _Bounds(max_values)

    def enc(value: Any, depth: int) -> Any:
        bounds.visit(depth)
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, numbers.Integral):  # int, numpy integers
            return int(value)
        if isinstance(value, numbers.Real):  # float, numpy floats
            value = float(value)
            if math.isnan(value) or math.isinf(value):
                return {"__float__": repr(value)}
            return value
        if isinstance(value, torch.Tensor):
            return encode_tensor(value)
        if isinstance(value, Handle):
            return {"__handle__": value.id, "type": value.type}
        if isinstance(value, Global):
            return {"__global__": value.name}
        if type(value) in (list, tuple):
            items = [enc(v, depth + 1) for v in value]
            return items if type(value) is list else {"__tuple__": items}
        if type(value) is dict and all(type(k) is str for k in value):
            return {"__dict__": {k: enc(v, depth + 1) for k, v in value.items()}}
        if handle_for is None:
            raise ProtocolError(f"cannot send a {type(value).__name__}")
        handle = handle_for(value)
        if not isinstance(handle, Handle):
            raise ProtocolError(f"cannot send a {type(value).__name__}")
        return enc(handle, depth + 1)

    return enc(value, 0)


def dumps(message: dict) -> bytes:
    data = json.dumps(message, allow_nan=False).encode()
    if len(data) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"message of {len(data)} bytes is larger than {MAX_MESSAGE_BYTES}")
    return data


# ---------------------------------------------------------------------------------------------
# decoding (validates everything: the other side may be hostile)


def _decode_tensor(spec: Any) -> torch.Tensor:
    if not (isinstance(spec, list) and len(spec) == 4):
        raise ProtocolError("malformed tensor")
    dtype_name, shape, device, payload = spec
    if dtype_name not in _DTYPES or not isinstance(device, str) or not isinstance(payload, str):
        raise ProtocolError("malformed tensor")
    if not (isinstance(shape, list) and all(type(n) is int and n >= 0 for n in shape)):
        raise ProtocolError("malformed tensor shape")
    dtype = _DTYPES[dtype_name]
    try:
        raw = base64.b64decode(payload.encode(), validate=True)
    except ValueError:  # binascii.Error: not base64 (a forged payload is the decoder's to refuse)
        raise ProtocolError("malformed tensor data") from None
    numel = math.prod(shape)
    itemsize = torch.empty((), dtype=dtype).element_size()
    if len(raw) != numel * itemsize:
        raise ProtocolError("tensor data does not match its shape")
    if numel == 0:
        try:  # the other dimensions are bounded by nothing: [2**62, 2**62, 0] overflows torch's size
            t = torch.empty(shape, dtype=dtype)
        except (RuntimeError, TypeError, OverflowError):
            raise ProtocolError("malformed tensor shape") from None
    elif dtype == torch.bfloat16:
        t = torch.frombuffer(bytearray(raw), dtype=torch.int16).view(torch.bfloat16).reshape(shape)
    else:
        t = torch.frombuffer(bytearray(raw), dtype=dtype).reshape(shape)
    t = t.clone()
    return t


def from_jsonable(value: Any, resolve=None, max_values: int = MAX_VALUES) -> Any:
    """Inverse of ``to_jsonable``. ``resolve`` maps handle / global markers to objects (worker side).
    The same cap on values holds: a hostile sender cannot make the reader build millions of objects."""
    bounds = _Bounds(max_values)

    def dec(value: Any, depth: int) -> Any:
        bounds.visit(depth)
        if value is None or type(value) in (bool, int, float, str):
            return value
        if type(value) is list:
            return [dec(v, depth + 1) for v in value]
        if type(value) is dict and len(value) in (1, 2):
            if "__tensor__" in value:
                return _decode_tensor(value["__tensor__"])
            if "__float__" in value:
                text = value["__float__"]
                if text not in ("nan", "inf", "-inf"):
                    raise ProtocolError("malformed float")
                return float(text)
            if "__tuple__" in value and type(value["__tuple__"]) is list:
                return tuple(dec(v, depth + 1) for v in value["__tuple__"])
            if "__dict__" in value and type(value["__dict__"]) is dict:
                return {str(k): dec(v, depth + 1) for k, v in value["__dict__"].items()}
            if "__handle__" in value and type(value["__handle__"]) is int:
                h = Handle(value["__handle__"], str(value.get("type", "object"))[:100])
                return resolve(h) if resolve else h
            if "__global__" in value and type(value["__global__"]) is str:
                g = Global(value["__global__"])
                return resolve(g) if resolve else g
        raise ProtocolError("malformed value")

    return dec(value, 0)


def loads(data: bytes) -> dict:
    if len(data) > MAX_MESSAGE_BYTES:
        raise ProtocolError("message too large")
    try:
        message = json.loads(data.decode())
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(f"not a JSON message: {exc}") from None
    except RecursionError:  # JSON nested deeper than the parser goes: never a message of ours
        raise ProtocolError("a JSON message nested too deeply") from None
    if type(message) is not dict:
        raise ProtocolError("message is not an object")
    return message


# ---------------------------------------------------------------------------------------------
# framing over a socket: 8-byte length, then the JSON document


def send(sock, message: dict, max_bytes: int = MAX_MESSAGE_BYTES) -> None:
    data = dumps(message)
    if len(data) > max_bytes:
        raise ProtocolError(f"message of {len(data)} bytes is larger than {max_bytes}")
    sock.sendall(struct.pack("!Q", len(data)) + data)


def recv_exact(sock, n: int, deadline: float | None = None) -> bytes:
    """``n`` bytes from ``sock``. With a ``deadline`` (``time.monotonic()``), every wait is bounded by
    the time left until it, so a sender that trickles a byte at a time cannot stretch the read
    past the deadline (``TimeoutError``)."""
    chunks, got = [], 0
    while got < n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the other process did not finish its message in time")
            sock.settimeout(left)
        chunk = sock.recv(min(n - got, 1 << 20))
        if not chunk:
            raise EOFError("the other process closed the connection")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def recv(sock, deadline: float | None = None, max_bytes: int = MAX_MESSAGE_BYTES) -> dict:
    """One message. ``max_bytes`` is checked on the announced length, before anything is read."""
    (n,) = struct.unpack("!Q", recv_exact(sock, 8, deadline))
    if n > max_bytes:
        raise ProtocolError(f"message of {n} bytes refused (the limit is {max_bytes})")
    return loads(recv_exact(sock, n, deadline))
