"""What a check holds: a submission it can ask to build objects and call methods.

``RemoteSubmission`` runs the submission in a worker process (grading); ``LocalSubmission`` runs
it in-process (the notebook's own check cells, and the trusted reference). Both answer with
plain data (tensors copied, numbers, strings, containers) or ``Obj`` handles, so a check is
written once for both.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from autograder import parts as registry
from autograder.engine import wire as protocol
from autograder.engine.run_cells import CellOutcome, run_cell
from autograder.engine.load import Program, python_source
from autograder.engine.report import printable
from autograder.engine.worker_ops import Runtime
from autograder.engine.worker_control import Worker, WorkerDied
from autograder.i18n import tr

# Per-request time limits (seconds). A correct reference answers every check request in well
# under 0.5 s on a 2-core laptop CPU; the limits leave a slow machine (or a CUDA warm-up) 20x room.
CALL_TIMEOUT_S = 10.0
CELL_TIMEOUT_S = 20.0
CELL_TIMEOUT_AFTER_HANG_S = 5.0  # once one cell hung, demo cells calling the same code should not each cost 20 s
LOAD_BUDGET_S = 150.0


class SubmissionFailure(Exception):
    """The submission's code failed while a check ran (not the check's verdict itself)."""

    def __init__(self, what: str, kind: str, message: str, traceback: str = ""):
        # the submission's own text (its exception's message): no escape sequence reaches a terminal or a report
        kind, message, traceback = printable(kind), printable(message), printable(traceback)
        super().__init__(f"{what}: {kind}: {message}")
        self.what, self.kind, self.message, self.traceback = what, kind, message, traceback

    @property
    def not_implemented(self) -> bool:
        return self.kind == "NotImplementedError"


def _describe(value) -> str:
    if isinstance(value, torch.Tensor):
        return (tr("a tensor of shape {shape}").format(shape=tuple(value.shape)) if value.dim()
                else f"{value.item():g}")  # the student's terms
    if isinstance(value, Obj):
        return value.what
    if isinstance(value, str):
        return repr(value) if len(value) < 30 else repr(value[:27] + "...")
    if isinstance(value, (list, tuple)) and len(value) > 6:
        return tr("[{count} items]").format(count=len(value))
    return repr(value)


def describe_call(name: str, args, kwargs, params: tuple[str, ...] = ()) -> str:
    """A call as a message shows it: arguments by the contract's names where the registry declares them
    (``params``, from ``parts.parameters``), shapes as shapes: ``Head(n_embd=16, head_size=8, ...)``."""
    if params and len(args) <= len(params):
        parts = [f"{p}={_describe(a)}" for p, a in zip(params, args)]
    else:
        parts = [_describe(a) for a in args]
    parts += [f"{k}={_describe(v)}" for k, v in kwargs.items()]
    return f"{name}({', '.join(parts)})"


@dataclass
class Obj:
    """An object living in the submission's process."""

    sub: "Submission"
    handle: protocol.Handle
    what: str  # how it was made, for messages: "Head(16, 4, 8)"
    variant: str = ""  # "+stand-ins" when built with the grader's stand-ins (other code, other time-out record)

    def _ask(self, op: str, what: str, **fields):
        return self.sub._ask(op, what, target=self.handle, **fields)

    def call(self, method: str | None, *args, _seed=None, _values=None, _timeout=None, **kwargs):
        name = f"{self.what}.{method}" if method else self.what
        called = method or "forward"
        # the contract's parameter names: by the object's class in the worker, else by how the check named it
        params = registry.parameters(f"{self.handle.type}.{called}") or registry.parameters(f"{self.what}.{called}")
        return self._ask(
            "call", describe_call(name, args, kwargs, params), method=method, args=list(args), kwargs=kwargs,
            seed=_seed, values=_values, _timeout=_timeout, _key=f"{self.handle.type}{self.variant}.{called}",
        )

    def __call__(self, *args, **kwargs):
        return self.call(None, *args, **kwargs)

    def get(self, path: str):
        return self._ask("get", f"{self.what}.{path}", path=path)

    def state_dict(self) -> dict:
        return self._ask("state_dict", f"{self.what}.state_dict()")

    def load_state_dict(self, state: dict) -> None:
        self._ask("load_state_dict", f"{self.what}.load_state_dict(...)", state=state)

    def modules(self) -> list:
        return self._ask("modules", f"{self.what}.named_modules()")

    def attrs(self) -> dict:
        return self._ask("attrs", f"vars({self.what})")

    def training(self) -> bool:
        """The module's mode as nn.Module.train/eval set it (read without asking the object)."""
        return self._ask("training", f"{self.what}.training")

    def eval(self):
        self.call("eval")
        return self

    def train(self, mode: bool = True):
        self.call("train", mode)
        return self


class Submission:
    """Common interface; subclasses implement ``_request``."""

    label = "submission"

    def _request(self, message: dict, timeout: float, key: str | None = None) -> dict:
        raise NotImplementedError

    def _wrap(self, value, what: str):
        if isinstance(value, protocol.Handle):
            return Obj(self, value, what)
        return value

    def _ask(self, op: str, what: str, _timeout=None, _key=None, **fields):
        """``_key`` names the submission code the request runs ("Head.forward"), for time-out records."""
        key = _key
        fields = {k: _encode_arg(v) for k, v in fields.items()}
        answer = self._request({"op": op, **fields}, _timeout or CALL_TIMEOUT_S, key)
        if type(answer) is not dict or "ok" not in answer:
            raise SubmissionFailure(what, "ProtocolError", "malformed answer from the submission's process")
        if not answer["ok"]:
            err = answer.get("error") if type(answer.get("error")) is dict else {}
            raise SubmissionFailure(
                what, str(err.get("type", "Error"))[:60], str(err.get("message", ""))[:400],
                str(err.get("traceback", ""))[:2000],
            )
        try:
            value = protocol.from_jsonable(answer.get("value"))
        except protocol.ProtocolError as exc:
            raise SubmissionFailure(what, "ProtocolError", str(exc)) from None
        return self._wrap(value, what)

    # -- what checks call ------------------------------------------------------------------------

    def names(self) -> dict:
        return self._ask("names", "listing the submission's names")

    def new(self, cls: str, *args, _seed: int = 0, _stubs=None, _values=None, _bypass_init=False, **kwargs) -> Obj:
        what = describe_call(cls, args, kwargs, registry.parameters(cls))
        variant = "+stand-ins" if _stubs else ""
        obj = self._ask(
            "new", what, cls=cls, args=list(args), kwargs=kwargs, seed=_seed, stubs=_stubs,
            values=_values, bypass_init=_bypass_init, _key=f"{cls}(){variant}",
        )
        if isinstance(obj, Obj):
            obj.variant = variant
        return obj

    def make(self, factory: str, *args, _seed: int = 0, **kwargs) -> Obj:
        return self._ask("make", tr("the grader's {name}").format(name=factory), factory=factory, args=list(args), kwargs=kwargs, seed=_seed)

    def call(self, function: str, *args, _seed=None, _values=None, _timeout=None, **kwargs):
        return self._ask(
            "call", describe_call(function, args, kwargs, registry.parameters(function)), target=protocol.Global(function),
            args=list(args), kwargs=kwargs, seed=_seed, values=_values, _timeout=_timeout, _key=function,
        )

    def get(self, name: str):
        """The value of a name in the submission's namespace."""
        return self._ask("global", name, name=name)

    def seed(self, seed: int) -> None:
        self._ask("seed", "seeding", seed=seed)

    def reset(self) -> None:
        self._ask("reset", "resetting")


def _encode_arg(value):
    if isinstance(value, Obj):
        return protocol.to_jsonable(value.handle)
    if isinstance(value, (list, tuple)):
        items = [v.handle if isinstance(v, Obj) else v for v in value]
        return protocol.to_jsonable(type(value)(items))
    if isinstance(value, dict):
        return protocol.to_jsonable({k: (v.handle if isinstance(v, Obj) else v) for k, v in value.items()})
    return protocol.to_jsonable(value)


# ---------------------------------------------------------------------------------------------


class LocalSubmission(Submission):
    """A namespace in this process: a notebook's globals, or the trusted reference."""

    label = "local"

    def __init__(self, namespace: dict | None = None, device: str = "cpu"):
        self.runtime = Runtime(namespace, device=device)
        self.load_report: list[CellOutcome] = []

    @classmethod
    def from_program(cls, program: Program, device: str = "cpu") -> "LocalSubmission":
        import contextlib
        import io

        sub = cls(device=device)
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            for cell in program.cells:
                sub.load_report.append(run_cell(sub.runtime.ns, cell.number, python_source(cell),
                                                program.path.suffix == ".py", cell.label))
        return sub

    def _request(self, message: dict, timeout: float, key: str | None = None) -> dict:
        # the JSON round trip gives local checks the same copies and handles as remote ones
        answer = self.runtime.dispatch(message, timeout=None)
        return protocol.loads(protocol.dumps(answer))


@dataclass
class LoadReport:
    cells: list[CellOutcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


class RemoteSubmission(Submission):
    """The submission in its own worker process; restarted (and reloaded) after a crash or hang."""

    label = "remote"

    def __init__(self, program: Program, device: str = "cpu", memory_mb: int = 6144,
                 hide: list[str] | None = None, budget_s: float | None = None):
        self.program = program
        # one wall-clock budget for the whole submission (load, restarts, every check), kept here in
        # the grading process: no request runs past it, whatever the per-request limits say
        self.deadline = None if budget_s is None else time.monotonic() + budget_s
        self.deaths: list[tuple[str, str]] = []  # worker deaths, in order: (what was running, why)
        self.worker = Worker(device=device, memory_mb=memory_mb, hide=hide)
        self.report = LoadReport(notes=list(program.skipped))
        self.bad_cells: dict[int, CellOutcome] = {}  # cells that killed or hung the worker
        self.loaded = False
        self.hung: dict[str, tuple[str, str]] = {}  # code that hung or crashed once: not run again
        self.answered = False  # whether a worker ever answered: if not, nothing of the submission ran

    def start(self) -> None:
        """Start the worker early: it imports torch while the grading process collects checks."""
        if self.worker.proc is None:
            self.worker.start()

    def _exec(self, cell, timeout: float) -> CellOutcome:
        message = {"op": "exec_cell", "number": cell.number, "source": cell.source,
                   "is_module": self.program.path.suffix == ".py", "label": cell.label}
        if cell.ipython:
            message["ipython"] = True  # the worker rewrites IPython syntax, under this cell's limit
        answer = self.worker.request(message, timeout, self.deadline)
        if answer.get("ok"):
            d = protocol.from_jsonable(answer.get("value"))
            if isinstance(d, dict):
                return CellOutcome(
                    cell.number, bool(d.get("ok")), printable(str(d.get("error_type", ""))[:60]),
                    printable(str(d.get("message", ""))[:400]), printable(str(d.get("traceback", ""))[:2000]),
                )
        err = answer.get("error") if isinstance(answer.get("error"), dict) else {}
        return CellOutcome(cell.number, False, printable(str(err.get("type", "Error"))[:60]),
                           printable(str(err.get("message", ""))[:400]))

    def _isolation_notes(self) -> None:
        try:
            answer = self.worker.request({"op": "ping"}, CELL_TIMEOUT_S, self.deadline)
            notes = protocol.from_jsonable(answer.get("value")).get("isolation", [])
            self.answered = True
        except (WorkerDied, protocol.ProtocolError, AttributeError) as exc:
            notes = [f"the worker did not start ({exc})"]
        for note in notes:
            if f"sandbox: {note}" not in self.report.notes:
                self.report.notes.append(f"sandbox: {note}")

    def load(self) -> LoadReport:
        """Execute the submission's cells in a fresh worker. A cell that kills the worker or hangs
        past its limit is dropped, and the load replayed without it, so the names defined by the
        other cells are still there to grade."""
        start = time.monotonic()
        fresh = self.worker.alive and not self.loaded  # started early by start(), nothing run yet
        while True:
            if not fresh:
                self.worker.kill()
                self.worker.start()
            fresh = False
            self._isolation_notes()
            outcomes, died = dict(self.bad_cells), False
            for cell in self.program.cells:
                if cell.number in self.bad_cells:
                    continue
                if time.monotonic() - start > LOAD_BUDGET_S or self.budget_spent():
                    outcomes[cell.number] = CellOutcome(cell.number, False, "Timeout", "not run: the load time budget was spent")
                    continue
                hung = self.bad_cells or any(o.error_type == "Timeout" for o in outcomes.values())
                try:
                    outcomes[cell.number] = self._exec(cell, CELL_TIMEOUT_AFTER_HANG_S if hung else CELL_TIMEOUT_S)
                except WorkerDied as exc:
                    if exc.budget:
                        outcomes[cell.number] = CellOutcome(cell.number, False, "Timeout", str(exc))
                        continue
                    self.bad_cells[cell.number] = CellOutcome(cell.number, False, "ProcessStopped", str(exc))
                    died = True
                    break
                except protocol.ProtocolError as exc:
                    self.bad_cells[cell.number] = CellOutcome(cell.number, False, "ProcessStopped", str(exc))
                    died = True
                    break
            if not died:
                break
        self.loaded = True
        self.report.cells = [outcomes[k] for k in sorted(outcomes)]
        self.report.seconds += time.monotonic() - start
        return self.report

    def budget_spent(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def _once(self, message: dict, timeout: float) -> dict:
        if not self.worker.alive or not self.loaded:
            self.load()
        try:
            return self.worker.request(message, timeout, self.deadline)
        except WorkerDied as exc:
            kind = "Timeout" if exc.timed_out else "ProcessDied"
            return {"ok": False, "error": {"type": kind, "message": str(exc)}, "budget": exc.budget}

    def _request(self, message: dict, timeout: float, key: str | None = None) -> dict:
        if key is not None and key in self.hung:
            # code that hung or killed the worker once would only spend the time budget again
            kind, why = self.hung[key]
            return {"ok": False, "error": {"type": kind, "message": tr("was not run again: {what} {why}").format(what=key, why=why)}}
        if self.budget_spent():
            return {"ok": False, "error": {"type": "Timeout", "message": tr("not run: the submission's time budget was spent")}}
        answer = self._once(message, timeout)
        budget = answer.pop("budget", False)
        err = answer.get("error") if isinstance(answer, dict) else None
        if isinstance(err, dict) and err.get("type") == "ProcessDied":
            self.deaths.append((key or str(message.get("op")), str(err.get("message"))))
            self.loaded = False  # what follows runs in a fresh worker
        if key is not None and isinstance(err, dict) and err.get("type") == "Timeout" and not budget:
            self.hung[key] = ("Timeout", tr("ran past its time limit in an earlier check ({cause})").format(cause=err.get("message")))
        elif key is not None and isinstance(err, dict) and err.get("type") == "ProcessDied":
            self.hung[key] = ("ProcessDied", tr("ended the submission's process in an earlier check ({cause})")
                              .format(cause=err.get("message")))
        return answer

    def forget_deaths(self, since: int) -> None:
        """Undo the records of the deaths after the first ``since``: a check is about to be rerun in a
        fresh worker to learn whether its own code kills the worker (see plugin/rerun.py)."""
        for key, _ in self.deaths[since:]:
            if self.hung.get(key, ("",))[0] == "ProcessDied":
                del self.hung[key]
        del self.deaths[since:]
        self.loaded = False

    def close(self) -> None:
        self.worker.close()
