"""Objects the grader places around a part so that the part is checked through its own behaviour.

They live in the submission's worker (created there by name) and, where a check needs to predict
an outcome, in the grading process too. None of them implements a lab part: a probe stands in
for a submodule with a simple position-wise map, so that a bug in one part (a broken ``Head``,
say) cannot cost points in another (``DecoderBlock``, ``GPTLanguageModel``).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

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

    def forward(self, x):
        return torch.tanh(self.lin(x))

    @staticmethod
    def compute(state: dict, x: torch.Tensor, prefix: str = "") -> torch.Tensor:
        """The same map computed from a state dict, in the grading process."""
        return torch.tanh(F.linear(x, state[prefix + "lin.weight"], state[prefix + "lin.bias"]))


def _arg(args, kwargs, index: int, name: str):
    return kwargs[name] if name in kwargs else args[index]


class ProbeHead(Probe):
    """Stands in for ``Head(n_embd, head_size, block_size, dropout)``."""

    def __init__(self, *args, **kwargs):
        super().__init__(_arg(args, kwargs, 0, "n_embd"), _arg(args, kwargs, 1, "head_size"))


class ProbeMultiHead(Probe):
    """Stands in for ``MultiHeadAttention(n_embd, num_heads, head_size, block_size, dropout)``."""

    def __init__(self, *args, **kwargs):
        n_embd = _arg(args, kwargs, 0, "n_embd")
        super().__init__(n_embd, n_embd)


class ProbeFeedForward(Probe):
    """Stands in for ``FeedForward(n_embd, dropout)``."""

    def __init__(self, *args, **kwargs):
        n_embd = _arg(args, kwargs, 0, "n_embd")
        super().__init__(n_embd, n_embd)


class ProbeBlock(Probe):
    """Stands in for ``DecoderBlock(n_embd, n_head, block_size, dropout)``: x -> x + tanh(x W^T + b)."""

    def __init__(self, *args, **kwargs):
        n_embd = _arg(args, kwargs, 0, "n_embd")
        super().__init__(n_embd, n_embd)

    def forward(self, x):
        return x + torch.tanh(self.lin(x))

    @staticmethod
    def compute(state: dict, x: torch.Tensor, prefix: str = "") -> torch.Tensor:
        return x + Probe.compute(state, x, prefix)


# stand-ins by name, for ``Submission.new(..., _stubs={'Head': 'ProbeHead'})``
STUBS = {cls.__name__: cls for cls in (ProbeHead, ProbeMultiHead, ProbeFeedForward, ProbeBlock)}

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


def oracle_model(base: type, vocab_size: int, block_size: int, seed: int, shift: float = 4.0):
    """An instance of a subclass of the submission's model class (so its own ``generate`` and helper
    methods are inherited) whose forward returns logits ``log P[idx] + shift``: the next token after
    token a must be drawn from row a of the Markov table. It records every input it is fed.
    The shift keeps every logit positive, so sampling from raw logits gives a wrong distribution
    rather than a crash."""

    class Oracle(base):
        def __init__(self):
            nn.Module.__init__(self)
            self.block_size = block_size
            self.vocab_size = vocab_size
            self.register_buffer("log_probs", markov_table(vocab_size, seed) + shift)
            self.anchor = nn.Parameter(torch.zeros(()))  # so .parameters() / .device lookups work
            self.fed = []

        def forward(self, idx, targets=None):
            self.fed.append(idx.detach().to("cpu", copy=True))
            if idx.shape[1] > self.block_size:
                raise ContextTooLong(
                    f"the model was fed {idx.shape[1]} positions but its block_size is {self.block_size}: "
                    "crop the context to its last block_size tokens"
                )
            logits = self.log_probs[idx] + 0 * self.anchor  # (B, T, V)
            loss = None
            if targets is not None:
                loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))
            return logits, loss

    Oracle.__name__ = Oracle.__qualname__ = base.__name__
    return Oracle()


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
            raise ValueError(f"get_batch_fn takes 'train' or 'val', got {split!r}")
        k = sum(1 for s in self.calls if s == split)
        self.calls.append(split)
        return self.batch(split, k)


class TinyLM(nn.Module):
    """A bigram table plus a bias: small enough to replay exactly in the grading process."""

    def __init__(self, vocab_size: int, seed: int):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.table = nn.Parameter(torch.randn(vocab_size, vocab_size, generator=g) * 0.5)
        self.bias = nn.Parameter(torch.zeros(vocab_size))
        self.events: list[str] = []
        self.losses: list[float] = []  # the loss of every forward with targets
        self._hook = self.table.register_post_accumulate_grad_hook(lambda p: self.events.append("backward"))

    def forward(self, idx, targets=None):
        self.events.append("forward" if self.training else "forward(eval)")
        logits = self.table[idx] + self.bias  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
            self.losses.append(float(loss.detach()))
        return logits, loss

    def zero_grad(self, set_to_none: bool = True):
        self.events.append("zero_grad")
        super().zero_grad(set_to_none)


class RecordingSGD:
    """Plain SGD (p -= lr * grad) that records its calls.

    Not torch.optim.SGD: constructing any torch.optim optimiser imports torch._dynamo, about
    1.5 s of every grading run; a training loop only needs zero_grad() and step()."""

    def __init__(self, model: nn.Module, lr: float, events: list | None = None):
        self.params = list(model.parameters())
        self.param_groups = [{"params": self.params, "lr": lr}]
        self.lr = lr
        self._events = events if events is not None else getattr(model, "events", [])

    def zero_grad(self, set_to_none: bool = True):
        self._events.append("zero_grad")
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    @torch.no_grad()
    def step(self, closure=None):
        self._events.append("step")
        for p in self.params:
            if p.grad is not None:
                p.add_(p.grad, alpha=-self.lr)


class EvalModel(nn.Module):
    """For estimate_loss: the loss of a batch is read off its targets (``y[0, 0] / 100``), so the
    expected means are known exactly; records mode and autograd state at every forward."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(()))
        self.log: list[list] = []

    def forward(self, idx, targets=None):
        self.log.append([bool(self.training), bool(torch.is_grad_enabled())])
        logits = torch.zeros(*idx.shape, 4, device=idx.device)  # (B, T, 4)
        loss = None
        if targets is not None:
            loss = self.weight * (targets[0, 0].float() / 100.0)
        return logits, loss


class EvalBatches:
    """``get_batch_fn(split)`` for estimate_loss: batch k of a split has loss ``values[split][k]``."""

    def __init__(self, values: dict):
        self.values = {s: [int(v) for v in values[s]] for s in ("train", "val")}
        self.calls: list[str] = []

    def __call__(self, split):
        if split not in ("train", "val"):
            raise ValueError(f"get_batch_fn takes 'train' or 'val', got {split!r}")
        k = sum(1 for s in self.calls if s == split)
        self.calls.append(split)
        values = self.values[split]
        x = torch.zeros(2, 3, dtype=torch.long)
        y = torch.full((2, 3), values[k % len(values)], dtype=torch.long)
        return x, y


FACTORIES = {
    "Probe": Probe,
    "ProbeBlock": ProbeBlock,
    "BatchStream": BatchStream,
    "TinyLM": TinyLM,
    "RecordingSGD": RecordingSGD,
    "EvalModel": EvalModel,
    "EvalBatches": EvalBatches,
    "LayerNorm": nn.LayerNorm,
    "oracle_model": oracle_model,
}
