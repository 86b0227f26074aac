"""Part multihead: ``MultiHeadAttention`` (given complete in the student notebook; still checked).

Checked by composition: the output must be proj(concat of its own heads' outputs), whatever
those heads compute, so a wrong Head costs nothing here. A Head that crashes is replaced by the
grader's stand-in heads; a Head still raising NotImplementedError leaves this part "not
implemented yet" too (the module cannot run without heads).
"""

import torch
import torch.nn.functional as F

from autograder.checking import close, expect, fail, need, tensor
from autograder.objects import Probe
from autograder.submission import SubmissionFailure

PART = "multihead"
C, NH, HS, BLOCK = 12, 3, 5, 8  # NH * HS = 15 != C, so a projection sized n_embd is caught


def _mha(sub):
    """The module, and whether the grader's stand-in heads replace the submission's Head (when
    its Head crashes or returns a wrong shape / non-finite values, so that a bug there costs
    nothing here)."""
    need(sub, "MultiHeadAttention")
    x = torch.randn(2, 6, C, generator=torch.Generator().manual_seed(0))
    try:
        mha = sub.new("MultiHeadAttention", C, NH, HS, BLOCK, 0.0, _seed=1).eval()
        mha(x)
        for i in range(NH):
            out = mha.get(f"heads.{i}")(x)
            if not (isinstance(out, torch.Tensor) and tuple(out.shape) == (2, 6, HS) and torch.isfinite(out).all()):
                raise ValueError("unusable head")
        return mha, False
    except SubmissionFailure as exc:
        if exc.not_implemented:
            raise
    except (ValueError, AttributeError, TypeError):
        pass
    mha = sub.new("MultiHeadAttention", C, NH, HS, BLOCK, 0.0, _seed=1, _stubs={"Head": "ProbeHead"}).eval()
    return mha, True


def test_multihead_heads_are_a_module_list(sub):
    """``heads`` is an nn.ModuleList of num_heads distinct modules (registered, so they train)."""
    mha, _ = _mha(sub)
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
    mha, _ = _mha(sub)
    w = mha.state_dict().get("proj.weight")
    expect(w is not None, "MultiHeadAttention has no proj layer")
    expect(tuple(w.shape) == (C, NH * HS), f"proj.weight: expected shape {(C, NH * HS)} "
           f"(Linear(num_heads * head_size, n_embd)), got {tuple(w.shape)}")


def test_multihead_concatenates_heads_then_projects(sub):
    """out = proj(cat([h(x) for h in heads], dim=-1)), in eval mode (atol 1e-5: float32 matmuls)."""
    mha, stubbed = _mha(sub)
    state = mha.state_dict()
    x = torch.randn(2, 6, C, generator=torch.Generator().manual_seed(2))
    if stubbed:
        parts = [Probe.compute(state, x, f"heads.{i}.") for i in range(NH)]
    else:
        parts = [tensor(mha.get(f"heads.{i}")(x), f"heads[{i}]", shape=(2, 6, HS)) for i in range(NH)]
    expected = F.linear(torch.cat(parts, dim=-1), state["proj.weight"], state.get("proj.bias"))
    got = tensor(mha(x), "MultiHeadAttention.forward", shape=(2, 6, C))
    close(got, expected, "MultiHeadAttention output", atol=1e-5,
          hint="concatenate the heads' outputs on the last dim (channels), then apply proj and dropout")
