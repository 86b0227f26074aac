"""Part multihead: ``MultiHeadAttention`` (given complete in the student notebook; still checked).

Checked with the grader's stand-in ``Head`` (a simple position-wise map with Head's constructor
signature): the output must be proj(concat of its heads' outputs), whatever those heads compute,
so this part's score never depends on the submission's Head (the untouched student notebook,
whose Head still raises NotImplementedError, keeps every multihead point). A forward that reads
the heads' internals (a batched forward from their key/query/value weights) cannot run on
stand-ins: it is checked with its own heads, against the composition of those heads' outputs.
"""

import torch
import torch.nn.functional as F

from autograder.checks.verdicts import close, expect, need, tensor
from autograder.checks.standins import Probe
from autograder.engine.submission import SubmissionFailure

C, NH, HS, BLOCK = 12, 3, 5, 8  # NH * HS = 15 != C, so a projection sized n_embd is caught
STAND_IN = {"Head": "ProbeHead"}


def _build(sub, stand_in: bool = True):
    need(sub, "MultiHeadAttention")
    try:
        return sub.new("MultiHeadAttention", C, NH, HS, BLOCK, 0.0, _seed=1, _stubs=STAND_IN if stand_in else None).eval()
    except SubmissionFailure as exc:
        if not stand_in or exc.not_implemented:
            raise
        try:  # an __init__ that reads its heads' internals: its own heads, if they can be built
            return sub.new("MultiHeadAttention", C, NH, HS, BLOCK, 0.0, _seed=1).eval()
        except SubmissionFailure:
            raise exc from None


def _x(seed: int, T: int = 6) -> torch.Tensor:
    return torch.randn(2, T, C, generator=torch.Generator().manual_seed(seed))


def run_forward(sub, x):
    """(module, its output on x, its state dict, the outputs of its heads on x): with stand-in
    heads when its forward runs on them (their outputs computed here, in the grading process),
    else with its own heads (their outputs asked of them)."""
    mha = _build(sub)
    try:
        got = mha(x)
        state = mha.state_dict()
        if any(k.startswith("heads.0.lin.") for k in state):  # built on the stand-ins
            parts = [Probe.compute(state, x, f"heads.{i}.") for i in range(NH)]
            return mha, got, state, parts
    except SubmissionFailure as exc:
        if exc.kind not in ("AttributeError", "TypeError"):  # only head internals need the real heads
            raise
        first = exc
        try:
            mha = _build(sub, stand_in=False)
            got = mha(x)
        except SubmissionFailure as own:
            raise (first if own.not_implemented else own) from None
    state = mha.state_dict()
    parts = [tensor(mha.get(f"heads.{i}")(x), f"heads[{i}]", shape=(2, x.shape[1], HS)) for i in range(NH)]
    return mha, got, state, parts


def test_multihead_heads_are_a_module_list(sub):
    """``heads`` is an nn.ModuleList of num_heads distinct modules (registered, so they train)."""
    mha = _build(sub)
    attrs = mha.attrs()
    modules = {name: (kind, ident) for name, kind, ident in mha.modules()}
    kind = modules.get("heads", (attrs.get("heads"), None))[0]
    expect(kind == "ModuleList", f"self.heads should be an nn.ModuleList, got {kind}: a Python list hides the "
           "heads' parameters from the optimiser and from state_dict")
    heads = [ident for name, (k, ident) in modules.items() if name.count(".") == 1 and name.startswith("heads.")]
    expect(len(heads) == NH, f"expected {NH} heads, got {len(heads)}")
    expect(len(set(heads)) == NH, "the heads are the same module repeated: build a new Head for each "
           "(a list comprehension), or they share their weights")


def test_multihead_projection_shape(sub):
    """proj: Linear(num_heads * head_size, n_embd)."""
    mha = _build(sub)
    w = mha.state_dict().get("proj.weight")
    expect(w is not None, "MultiHeadAttention has no proj layer")
    expect(tuple(w.shape) == (C, NH * HS), f"proj.weight: expected shape {(C, NH * HS)} "
           f"(Linear(num_heads * head_size, n_embd)), got {tuple(w.shape)}")


def test_multihead_concatenates_heads_then_projects(sub):
    """out = proj(cat([h(x) for h in heads], dim=-1)), in eval mode (atol 1e-5: float32 matmuls),
    for T = 6 and T = 1. Assessed when proj has the contract's shape (the projection check
    reports it otherwise: one cause, one failure)."""
    w = _build(sub).state_dict().get("proj.weight")
    if w is None or tuple(w.shape) != (C, NH * HS):
        return
    for T in (6, 1):
        x = _x(2, T)
        _, got, state, parts = run_forward(sub, x)
        expected = F.linear(torch.cat(parts, dim=-1), state["proj.weight"], state.get("proj.bias"))
        got = tensor(got, "MultiHeadAttention.forward", shape=(2, T, C))
        close(got, expected, f"MultiHeadAttention output (T={T})", atol=1e-5,
              hint="concatenate the heads' outputs on the last dim (channels), then apply proj and dropout")
