"""The operations a check may ask of a submission, carried out on the submission's namespace.

In grading, a ``Runtime`` lives in the worker process and answers requests from the grading
process (see ``worker_main.py``); in the notebook's own check cells it runs in-process. Requests and
answers are plain data (``wire``): objects that are not data stay here, behind handles.
"""

from __future__ import annotations

import contextlib
import signal
import sys

import torch
import torch.nn as nn

from autograder.engine import module_state
from autograder.engine import run_cells as executor
from autograder.i18n import tr
from autograder.checks import standins as objects
from autograder.engine import wire as protocol


class GraderTimeout(BaseException):
    """Raised in the submission's code when a call runs past its time limit.

    A BaseException, so that a student's ``except Exception`` cannot swallow it."""


class Guard:
    """Undo the submission's monkeypatching of the modules the worker itself relies on.

    Snapshotted before any submission code runs; after each request, every attribute of these
    modules and classes that the submission replaced or deleted is put back (attributes it added
    stay: torch adds submodules lazily). So ``torch.manual_seed = ...`` or ``builtins.isinstance =
    ...`` at import cannot change how the grader seeds, checks types or encodes answers."""

    def __init__(self):
        import base64
        import builtins
        import json
        import math
        import random

        import torch.nn.functional
        import torch.nn.init
        import torch.testing

        targets = [builtins, math, json, base64, random, torch, torch.nn, torch.nn.functional, torch.nn.init,
                   torch.testing, torch.random, executor, objects, protocol, module_state, sys.modules[__name__],
                   torch.Tensor, torch.nn.Module]
        self.snapshots = [(t, dict(vars(t))) for t in targets]
        # the grader's own classes in the worker (stand-ins, probes, the models train and estimate_loss
        # run on): restored whole, attributes added by the submission removed too
        self.classes = [(cls, dict(vars(cls))) for cls in objects.GRADER_CLASSES]

    def restore(self) -> None:
        for cls, snapshot in self.classes:
            for name in [n for n in vars(cls) if n not in snapshot]:
                try:
                    delattr(cls, name)
                except (AttributeError, TypeError):
                    pass
        for target, snapshot in self.snapshots + self.classes:
            current = vars(target)
            for name, value in snapshot.items():
                if current.get(name, _MISSING) is not value:
                    try:
                        setattr(target, name, value) if isinstance(target, type) else current.__setitem__(name, value)
                    except (AttributeError, TypeError):
                        pass


_MISSING = object()


class Runtime:
    guard: Guard | None = None

    def __init__(self, namespace: dict | None = None, device: str = "cpu", guard: bool = False):
        if guard:
            self.guard = Guard()
        # the submission's namespace is a real module's __dict__ (see executor.new_module)
        self.module = executor.new_module() if namespace is None else None
        self.ns = namespace if namespace is not None else self.module.__dict__
        self._registered = False
        self.device = device
        self.handles: dict[int, object] = {}
        self._ids: dict[int, int] = {}  # id(obj) -> handle id, so one object keeps one handle

    # -- values ------------------------------------------------------------------------------

    def handle_for(self, obj) -> protocol.Handle:
        key = id(obj)
        if key not in self._ids:
            hid = len(self.handles) + 1
            self.handles[hid] = obj
            self._ids[key] = hid
        return protocol.Handle(self._ids[key], type(obj).__name__)

    def resolve(self, ref):
        if isinstance(ref, protocol.Handle):
            if ref.id not in self.handles:
                raise LookupError(f"unknown handle {ref.id}")
            return self.handles[ref.id]
        if ref.name not in self.ns:
            raise NameError(f"name {ref.name!r} is not defined")
        return self.ns[ref.name]

    def _decode(self, value):
        value = protocol.from_jsonable(value, self.resolve)
        return self._to_device(value)

    def _to_device(self, value):
        if isinstance(value, torch.Tensor):
            return value.to(self.device)
        if isinstance(value, list):
            return [self._to_device(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self._to_device(v) for v in value)
        if isinstance(value, dict):
            return {k: self._to_device(v) for k, v in value.items()}
        return value

    def encode(self, value):
        return protocol.to_jsonable(value, self.handle_for)

    # -- patching the namespace for one operation --------------------------------------------

    @contextlib.contextmanager
    def patched(self, stubs: dict | None, values: dict | None):
        saved, missing = {}, object()
        stubs = protocol.from_jsonable(stubs) if stubs else {}
        values = self._decode(values) if values else {}
        changes = {name: objects.STUBS[kind] for name, kind in stubs.items()}
        changes.update(values)
        for name, new in changes.items():
            saved[name] = self.ns.get(name, missing)
            self.ns[name] = new
        try:
            yield
        finally:
            for name, old in saved.items():
                if old is missing:
                    self.ns.pop(name, None)
                else:
                    self.ns[name] = old

    # -- operations ----------------------------------------------------------------------------

    def op_exec_cell(self, number, source, is_module=False, ipython=False, label=""):
        if self.guard is not None and self.module is not None and not self._registered:
            executor.register(self.module, bool(is_module))  # the worker: its own sys.modules
            self._registered = True
        if ipython:  # IPython syntax is rewritten here, in the worker, under the cell's time limit
            from autograder.engine.load import to_python

            source = to_python(source)
        return executor.run_cell(self.ns, number, source, is_module, str(label)).as_dict()

    def op_names(self):
        kinds = {}
        for name, value in list(self.ns.items()):
            if name.startswith("__"):
                continue
            if isinstance(value, type):
                kinds[name] = "class"
            elif callable(value):
                kinds[name] = "function"
            else:
                kinds[name] = type(value).__name__
        return kinds

    def op_new(self, cls, args=(), kwargs=None, seed=0, stubs=None, values=None, bypass_init=False):
        """Instantiate a submission class. ``bypass_init`` makes a bare module (``nn.Module.__init__``
        only), for checking a method whose part does not include ``__init__``."""
        klass = self.ns[cls] if isinstance(cls, str) else self._decode(cls)
        if not isinstance(klass, type):
            raise TypeError(f"{cls} is a {type(klass).__name__}, not a class")
        torch.manual_seed(seed)
        with self.patched(stubs, values):
            if bypass_init:
                obj = klass.__new__(klass)
                nn.Module.__init__(obj)
            else:
                obj = klass(*self._decode(list(args)), **(self._decode(kwargs) if kwargs else {}))
        if isinstance(obj, nn.Module):
            obj.to(self.device)
        return obj

    def op_make(self, factory, args=(), kwargs=None, seed=0):
        torch.manual_seed(seed)
        obj = objects.FACTORIES[factory](*self._decode(list(args)), **(self._decode(kwargs) if kwargs else {}))
        if isinstance(obj, nn.Module):
            obj.to(self.device)
        return obj

    def op_call(self, target, method=None, args=(), kwargs=None, seed=None, values=None):
        fn = self._decode(target)
        if method:
            fn = getattr(fn, method)
        if seed is not None:
            torch.manual_seed(seed)
        with self.patched(None, values):
            return fn(*self._decode(list(args)), **(self._decode(kwargs) if kwargs else {}))

    def op_global(self, name):
        if name not in self.ns:
            raise NameError(f"name {name!r} is not defined")
        return self.ns[name]

    def op_get(self, target, path):
        obj = self._decode(target)
        for part in path.split("."):
            obj = obj[int(part)] if part.isdigit() and hasattr(obj, "__getitem__") else getattr(obj, part)
        return obj

    # State is read and written through nn.Module's own tables (module_state), never through the
    # object's methods: a submission's state_dict / load_state_dict / named_modules / __getattr__
    # may say anything, and no verdict rests on what it says.

    def op_state_dict(self, target):
        return module_state.read_state(self._module(target))

    def op_load_state_dict(self, target, state):
        module_state.write_state(self._module(target), self._decode(state))

    def op_modules(self, target):
        """Every registered submodule (duplicates included): [qualified name, type name, identity]."""
        return [[name, type(m).__name__, id(m)] for name, m in module_state.named_modules(self._module(target))]

    def op_attrs(self, target):
        """Instance attributes of an object and the type of each (to find a list of modules)."""
        return module_state.instance_attributes(self._decode(target))

    def op_training(self, target):
        """The module's mode, as nn.Module.train/eval left it."""
        return module_state.training(self._module(target))

    def _module(self, target):
        module = self._decode(target)
        if not module_state.is_module(module):
            raise TypeError(f"a {type(module).__name__}, not an nn.Module")
        return module

    def op_seed(self, seed):
        torch.manual_seed(seed)

    def op_reset(self):
        self.handles.clear()
        self._ids.clear()

    def op_ping(self):
        return {"isolation": list(getattr(self, "isolation_notes", []))}

    # -- dispatch -------------------------------------------------------------------------------

    def dispatch(self, request: dict, timeout: float | None = None) -> dict:
        """Carry out one request; never raises: failures become an ``error`` answer."""
        op = request.get("op")
        fn = getattr(self, f"op_{op}", None) if isinstance(op, str) else None
        if fn is None:
            return {"ok": False, "error": {"type": "ProtocolError", "message": f"unknown operation {op!r}"}}
        fields = {k: v for k, v in request.items() if k not in ("op", "timeout")}
        try:
            with _time_limit(timeout):
                value = fn(**fields)
                if self.guard:
                    self.guard.restore()
                return {"ok": True, "value": self.encode(value)}
        except GraderTimeout:
            answer = {"ok": False, "error": {"type": "Timeout", "message": tr("ran past its {seconds:g} s limit").format(seconds=timeout)}}
        except protocol.TooManyValues as exc:
            answer = {"ok": False, "error": {"type": "OutputTooLarge", "message": tr(
                "returned more than {limit:,} numbers as Python values (lists, tuples or dicts); "
                "a check never needs that many: return a tensor").format(limit=exc.limit)}}
        except BaseException as exc:  # noqa: BLE001 - the submission's SystemExit is an answer too
            answer = {"ok": False, "error": {
                "type": type(exc).__name__,
                "message": executor.short_message(exc),
                "traceback": executor.student_traceback(exc),
            }}
        if self.guard:
            self.guard.restore()
        return answer


@contextlib.contextmanager
def _time_limit(seconds: float | None):
    """Interrupt the main thread with ``GraderTimeout`` after ``seconds`` (a soft limit: the
    grading process kills the worker if the submission blocks the signal)."""
    if not seconds or not hasattr(signal, "setitimer"):
        yield
        return

    def _raise(signum, frame):
        raise GraderTimeout()

    previous = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
