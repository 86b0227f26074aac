"""Objects the grader places around a part so that the part is checked through its own behaviour.

They live in the submission's worker (created there by name) and, where a check needs to predict
an outcome, in the grading process too. None of them implements a lab part: a probe stands in
for a submodule with a simple position-wise map, so that a bug in one part (a broken ``Head``,
say) cannot cost points in another (``DecoderBlock``, ``GPTLanguageModel``).
"""

from __future__ import annotations

import weakref

import torch
import torch.nn as nn
import torch.nn.functional as F
from autograder.i18n import N_, tr, translate

# ---------------------------------------------------------------------------------------------
# probes: stand-ins for submodules, with the constructor signatures of the parts they replace


class Probe(nn.Module):
    """x -> tanh(x W^T + b), applied position by position: (B, T, n_in) -> (B, T, n_out)."""

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.lin = nn.Linear(n_in, n_out)
        with torch.no_grad():  # weights large enough that every output matters
            self.lin.weight.normal_(0.0, 1.0 / n_in**0.5)
            self.lin.bias.normal_(0.0, 0.5)

    stands_for = N_("this module")

    def _check_input(self, x) -> None:
        # a wrong input raises here in the student's terms, not as F.linear's shape error from
        # inside the grader's stand-in
        n_in = self.lin.in_features
        if not isinstance(x, torch.Tensor) or x.dim() < 2 or x.shape[-1] != n_in:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(tr("{stands_for} expects an input of shape (B, T, {n_in}), got {got}")
                              .format(stands_for=translate(self.stands_for), n_in=n_in, got=got))

    def forward(self, x):
        self._check_input(x)
        return torch.tanh(self.lin(x))

    @staticmethod
    def compute(state: dict, x: torch.Tensor, prefix: str = "") -> torch.Tensor:
        """The same map computed from a state dict, in the grading process."""
        return torch.tanh(F.linear(x, state[prefix + "lin.weight"], state[prefix + "lin.bias"]))


# Each stand-in takes exactly the contract's constructor signature of the part it replaces (so a
# call that the real class accepts, positional or keyword, binds the same way) and carries that
# part's name (so an error raised by a wrong call names the class the student called).


class ProbeHead(Probe):
    """Stands in for ``Head(n_embd, head_size, block_size, dropout)``."""

    def __init__(self, n_embd: int, head_size: int, block_size: int, dropout: float = 0.0):
        super().__init__(n_embd, head_size)


class ProbeMultiHead(Probe):
    """Stands in for ``MultiHeadAttention(n_embd, num_heads, head_size, block_size, dropout)``."""

    def __init__(self, n_embd: int, num_heads: int, head_size: int, block_size: int, dropout: float = 0.0):
        super().__init__(n_embd, n_embd)


class ProbeFeedForward(Probe):
    """Stands in for ``FeedForward(n_embd, dropout)``."""

    def __init__(self, n_embd: int, dropout: float = 0.0):
        super().__init__(n_embd, n_embd)


class ProbeBlock(Probe):
    """Stands in for ``DecoderBlock(n_embd, n_head, block_size, dropout)``: x -> x + tanh(x W^T + b)."""

    def __init__(self, n_embd: int, n_head: int, block_size: int, dropout: float = 0.0):
        super().__init__(n_embd, n_embd)

    def forward(self, x):
        self._check_input(x)
        return x + torch.tanh(self.lin(x))

    @staticmethod
    def compute(state: dict, x: torch.Tensor, prefix: str = "") -> torch.Tensor:
        return x + Probe.compute(state, x, prefix)


for _cls, _name in ((ProbeHead, "Head"), (ProbeMultiHead, "MultiHeadAttention"),
                    (ProbeFeedForward, "FeedForward"), (ProbeBlock, "DecoderBlock")):
    _cls.__init__.__qualname__ = f"{_name}.__init__"
    _cls.stands_for = _name


# stand-ins by name, for ``Submission.new(..., _stubs={'Head': 'ProbeHead'})``
STUBS = {cls.__name__: cls for cls in (ProbeHead, ProbeMultiHead, ProbeFeedForward, ProbeBlock)}
STANDS_IN_FOR = {"ProbeHead": "Head", "ProbeMultiHead": "MultiHeadAttention", "ProbeFeedForward": "FeedForward",
                 "ProbeBlock": "DecoderBlock"}

# ---------------------------------------------------------------------------------------------
# generate: a language model whose next-token distribution the grader knows exactly


def markov_table(vocab_size: int, seed: int) -> torch.Tensor:
    """Log-probabilities (V, V) of a Markov chain: row a is the distribution after token a."""
    g = torch.Generator().manual_seed(seed)
    probs = torch.rand(vocab_size, vocab_size, generator=g) ** 2 + 0.05
    probs = probs / probs.sum(dim=1, keepdim=True)
    return probs.log()


class ContextTooLong(IndexError):
    pass


def window_next(window: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """The one token that the "window" oracle predicts after a context: a hash of every token of
    the context and of its position in it, (sum_j (j + 2) * ctx[:, j] * (j + 1)) mod V, so a
    context cut anywhere else (no crop, the first block_size tokens, one token short) predicts
    another token."""
    T = window.shape[1]
    weights = torch.arange(2, T + 2, device=window.device) * torch.arange(1, T + 1, device=window.device)
    return (window * weights).sum(dim=1) % vocab_size


def _build(base: type, forward, init_args, stand_ins):
    """An instance of a subclass of the submission's class ``base`` whose ``forward`` is
    ``forward``: built with the class's own ``__init__`` (so every attribute its ``generate``
    may read is there: a config, the position table, ...) with the grader's stand-ins for the
    other parts' classes it builds (``stand_ins``: class name -> stand-in name), so a broken
    DecoderBlock cannot stop it. A class whose ``__init__`` fails even so is built bare."""

    class Oracle(base):
        pass

    Oracle.forward = forward
    Oracle.__name__ = Oracle.__qualname__ = base.__name__
    Oracle.__module__ = base.__module__
    model = Oracle.__new__(Oracle)
    namespace = getattr(base.__init__, "__globals__", None)
    saved, missing = {}, object()
    if isinstance(namespace, dict):
        for name, kind in (stand_ins or {}).items():
            saved[name] = namespace.get(name, missing)
            namespace[name] = STUBS[kind]
    try:
        base.__init__(model, *(init_args or ()))
    except Exception:  # noqa: BLE001 - the part checked here is generate, not __init__
        nn.Module.__init__(model)
    finally:
        for name, old in saved.items():
            if old is missing:
                namespace.pop(name, None)
            else:
                namespace[name] = old
    return model


def oracle_model(base: type, vocab_size: int, block_size: int, seed: int, shift: float = 4.0,
                 init_args=None, stand_ins=None, mode: str = "markov"):
    """The submission's own model class with its forward replaced, for checking ``generate``.

    ``mode="markov"``: the logits are ``log P[last token] + shift`` at every position, so the
    token after token a must be drawn from row a of the Markov table (the shift keeps every logit
    positive: sampling from raw logits gives a wrong distribution rather than a crash).
    ``mode="window"``: the next token is ``window_next(context fed)`` with probability 1 - 1e-12,
    so the grading process can recompute from generate's output alone which context each step fed.
    Either way a context longer than block_size raises. Nothing is recorded in the object: what
    the check decides is computed in the grading process from generate's output."""
    log_probs = markov_table(vocab_size, seed) + shift  # kept in this closure, not on the model

    def forward(self, idx, targets=None):
        if idx.shape[1] > block_size:
            raise ContextTooLong(
                tr("the model was fed {positions} positions but its block_size is {block_size}: crop "
                  "the context to its last block_size tokens")
                 .format(positions=idx.shape[1], block_size=block_size)
            )
        if mode == "window":
            logits = torch.zeros(*idx.shape, vocab_size, device=idx.device)
            nxt = window_next(idx, vocab_size)  # (B,)
            logits[:, -1].scatter_(1, nxt.unsqueeze(1), 40.0)  # e^-40 * V: never another token
        else:
            logits = log_probs.to(idx.device)[idx]  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        return logits, loss

    model = _build(base, forward, init_args, stand_ins)
    if not hasattr(model, "block_size"):
        model.block_size = block_size
    return model


# ---------------------------------------------------------------------------------------------
# estimate_loss and train: a model, batches and an optimiser that record how they are used


class BatchStream:
    """``get_batch_fn(split)``: batch k of a split is fixed by (seed, split, k), independent of
    torch's global RNG. ``x[0, 0]`` carries k so that a model can tell batches apart."""

    def __init__(self, vocab_size: int, batch_size: int, block_size: int, seed: int):
        self.vocab_size, self.batch_size, self.block_size, self.seed = vocab_size, batch_size, block_size, seed
        self.calls: list[str] = []

    def batch(self, split: str, k: int):
        g = torch.Generator().manual_seed(self.seed * 1000 + k * 2 + (split == "val"))
        data = torch.randint(self.vocab_size, (self.batch_size, self.block_size + 1), generator=g)
        x, y = data[:, :-1].clone(), data[:, 1:].clone()  # (B, T) each
        x[0, 0] = k % self.vocab_size
        return x, y

    def __call__(self, split):
        if split not in ("train", "val"):
            raise ValueError(tr("get_batch_fn takes 'train' or 'val', got {got!r}").format(got=split))
        k = sum(1 for s in self.calls if s == split)
        self.calls.append(split)
        return self.batch(split, k)


# What a training loop does with the grader's model and optimiser is recorded in lists that no
# attribute of either object holds: the records live in closures, registered here by model, and
# the objects only show read-only copies (``model.events``, ``model.losses``). A loop cannot
# append to them or replace them through the objects it is given.
_RECORDERS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


class TinyLM(nn.Module):
    """A bigram table plus a bias: small enough to replay exactly in the grading process."""

    def __init__(self, vocab_size: int, seed: int):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.table = nn.Parameter(torch.randn(vocab_size, vocab_size, generator=g) * 0.5)
        self.bias = nn.Parameter(torch.zeros(vocab_size))
        events: list[str] = []
        losses: list[float] = []  # the loss of every forward with targets
        _RECORDERS[self] = (events, losses)
        self._hook = self.table.register_post_accumulate_grad_hook(lambda p: events.append("backward"))

    @property
    def events(self) -> list:
        return list(_RECORDERS[self][0])

    @property
    def losses(self) -> list:
        return list(_RECORDERS[self][1])

    def forward(self, idx, targets=None):
        events, losses = _RECORDERS[self]
        events.append("forward" if self.training else "forward(eval)")
        logits = self.table[idx] + self.bias  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
            losses.append(float(loss.detach()))
        return logits, loss

    def zero_grad(self, set_to_none: bool = True):
        _RECORDERS[self][0].append("zero_grad")
        super().zero_grad(set_to_none)


class RecordingSGD:
    """Plain SGD (p -= lr * grad) that records its calls (into its model's record, see above).

    Not torch.optim.SGD: constructing any torch.optim optimiser imports torch._dynamo, about
    1.5 s of every grading run; a training loop only needs zero_grad() and step()."""

    def __init__(self, model: nn.Module, lr: float, events: list | None = None):
        self.params = list(model.parameters())
        self.param_groups = [{"params": self.params, "lr": lr}]
        self.lr = lr
        record = events if events is not None else _RECORDERS.get(model, ([],))[0]
        self._record = record.append

    def zero_grad(self, set_to_none: bool = True):
        self._record("zero_grad")
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    @torch.no_grad()
    def step(self, closure=None):
        self._record("step")
        for p in self.params:
            if p.grad is not None:
                p.add_(p.grad, alpha=-self.lr)


# The loss of an evaluation forward carries, on top of the batch's value, how it was run: + a
# train-mode offset in train mode, + an autograd offset with autograd on. The grading process picks
# both afresh for every run (see test_estimate_loss) and reads them back from the means that
# estimate_loss returns: no constant of the grader's code tells a submission what to subtract.


class EvalModel(nn.Module):
    """For estimate_loss: the loss of a batch is read off its targets (``y[0, 0] / 100``), plus
    the offsets above, so the expected means are known exactly and the mode and autograd state
    of every forward come back inside the result (nothing to read or forge in the worker)."""

    def __init__(self, train_offset: float = 1000.0, grad_offset: float = 5000.0):
        super().__init__()
        self.weight = nn.Parameter(torch.ones((), dtype=torch.float64))
        offsets = (float(train_offset), float(grad_offset))  # in forward's closure, not on the model

        def forward(idx, targets=None):
            logits = torch.zeros(*idx.shape, 4, device=idx.device)  # (B, T, 4)
            loss = None
            if targets is not None:
                offset = offsets[0] * self.training + offsets[1] * torch.is_grad_enabled()
                loss = self.weight * (targets[0, 0].double() / 100.0) + offset
            return logits, loss

        self._forward = forward

    def forward(self, idx, targets=None):
        return self._forward(idx, targets)


def eval_batches(values: dict):
    """``get_batch_fn(split)`` for estimate_loss: batch k of a split has loss ``values[split][k]``.
    A plain function: the values live in its closure, not in fields a submission could read."""
    table = {s: [int(v) for v in values[s]] for s in ("train", "val")}
    counts = {"train": 0, "val": 0}

    def get_batch_fn(split):
        if split not in ("train", "val"):
            raise ValueError(tr("get_batch_fn takes 'train' or 'val', got {got!r}").format(got=split))
        k = counts[split]
        counts[split] += 1
        x = torch.zeros(2, 3, dtype=torch.long)
        y = torch.full((2, 3), table[split][k % len(table[split])], dtype=torch.long)
        return x, y

    return get_batch_fn


# ---------------------------------------------------------------------------------------------
# the input's device: a CPU grader sees what a GPU would refuse


class DeviceMismatch(RuntimeError):
    """A tensor created without a device met the input's tensors (on a GPU: a device error)."""


_CREATORS = frozenset((torch.arange, torch.zeros, torch.ones, torch.full, torch.empty, torch.tensor, torch.linspace,
                       torch.rand, torch.randn, torch.randint, torch.eye, torch.as_tensor))
_MOVERS = frozenset(("to", "cuda", "type_as"))  # Tensor methods, by name (torch hands over its C methods)


def _tensors_in(value, out):
    if isinstance(value, torch.Tensor):
        out.append(value)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _tensors_in(v, out)
    elif isinstance(value, dict):
        for v in value.values():
            _tensors_in(v, out)
    return out


class _AnotherDevice(torch.overrides.TorchFunctionMode):
    """While a forward runs: a tensor made by a factory (torch.arange, torch.zeros, ...) without a
    ``device`` is "loose", as on a GPU machine it would be on the CPU while the input is on the GPU;
    what is computed from loose tensors alone stays loose; moving one (``.to(device)``,
    ``.to(other)``, ``.type_as``, ``.cuda``) places it. A loose tensor of one dimension or more
    meeting a placed one raises ``DeviceMismatch``, where a GPU would raise its device error (0-d
    CPU tensors mix with GPU tensors there too)."""

    def __init__(self):
        super().__init__()
        self.loose: dict[int, torch.Tensor] = {}  # id -> tensor (kept alive, so ids are not reused)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        tensors = _tensors_in(list(args) + list(kwargs.values()), [])
        loose = [t for t in tensors if id(t) in self.loose]
        placed = [t for t in tensors if id(t) not in self.loose]
        out = func(*args, **kwargs)
        name = getattr(func, "__name__", "")
        if name in _MOVERS and args and isinstance(args[0], torch.Tensor):
            moved = name != "to" or any(
                isinstance(a, (torch.device, str, torch.Tensor)) for a in list(args[1:]) + list(kwargs.values()))
            for t in _tensors_in(out, []):  # .to(device) may return the tensor itself
                if moved:
                    self.loose.pop(id(t), None)
                elif loose:  # .to(dtype) only: still where it was
                    self.loose[id(t)] = t
            return out
        if any(t.dim() > 0 for t in loose) and placed:
            raise DeviceMismatch(tr("a tensor created inside forward without device= met the input's tensors: on a "
                                    "GPU it would be on the CPU and the input on the GPU (create it on the device "
                                    "of the input)"))
        if (func in _CREATORS and kwargs.get("device") is None) or (loose and not placed):
            for t in _tensors_in(out, []):
                self.loose[id(t)] = t
        return out


class OnAnotherDevice(nn.Module):
    """Runs a model's forward as if its input lived on another device than the tensors created
    without one (see ``_AnotherDevice``)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, *args, **kwargs):
        with _AnotherDevice():
            return self.model(*args, **kwargs)


def arguments_after_call(fn, *args):
    """Call ``fn(*args)`` and return the arguments as they are afterwards: a function that changes
    its input in place shows it in what comes back (compared in the grading process with what was sent)."""
    fn(*args)
    return list(args)


# every class of the grader that lives in the worker: the worker's guard restores them after each
# request (engine/worker_ops.Guard), so a submission's patch of one at load time is gone when a check runs
GRADER_CLASSES = (Probe, ProbeHead, ProbeMultiHead, ProbeFeedForward, ProbeBlock, BatchStream, TinyLM, RecordingSGD,
                  EvalModel, _AnotherDevice, OnAnotherDevice)

FACTORIES = {
    "Probe": Probe,
    "ProbeBlock": ProbeBlock,
    "BatchStream": BatchStream,
    "TinyLM": TinyLM,
    "RecordingSGD": RecordingSGD,
    "EvalModel": EvalModel,
    "EvalBatches": eval_batches,
    "LayerNorm": nn.LayerNorm,
    "oracle_model": oracle_model,
    "OnAnotherDevice": OnAnotherDevice,
    "arguments_after_call": arguments_after_call,
}
