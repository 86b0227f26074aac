"""Part decoder_block: ``DecoderBlock.forward``, the pre-LayerNorm residual block.

Checked with the grader's stand-ins for ``sa`` and ``ffwd`` (simple position-wise maps), so that
the block's wiring is checked alone: a broken Head or FeedForward costs nothing here.
"""

import torch
import torch.nn.functional as F

from autograder.checks.verdicts import close, fail, need, tensor
from autograder.checks.standins import Probe

C, NH, BLOCK = 8, 2, 8
STUBS = {"MultiHeadAttention": "ProbeMultiHead", "FeedForward": "ProbeFeedForward"}


def _block(sub):
    need(sub, "DecoderBlock")
    block = sub.new("DecoderBlock", C, NH, BLOCK, 0.0, _seed=2, _stubs=STUBS).eval()
    state = block.state_dict()
    g = torch.Generator().manual_seed(3)
    for ln in ("ln1", "ln2"):  # non-trivial LayerNorm affine parameters, so each one matters
        if f"{ln}.weight" not in state:
            fail(f"DecoderBlock has no {ln} (expected nn.LayerNorm(n_embd))")
        state[f"{ln}.weight"] = 1 + 0.5 * torch.randn(C, generator=g)
        state[f"{ln}.bias"] = 0.5 * torch.randn(C, generator=g)
    block.load_state_dict(state)
    return block, state


def _ln(state, name, x):
    return F.layer_norm(x, (C,), state[f"{name}.weight"], state[f"{name}.bias"])


def _variants(state, x):
    sa = lambda h: Probe.compute(state, h, "sa.")  # noqa: E731
    ff = lambda h: Probe.compute(state, h, "ffwd.")  # noqa: E731
    x1 = x + sa(_ln(state, "ln1", x))
    yield "expected", x1 + ff(_ln(state, "ln2", x1))
    p1 = _ln(state, "ln1", x + sa(x))
    yield "post-LN (LayerNorm after the residual add)", _ln(state, "ln2", p1 + ff(p1))
    yield "no residual around the attention", sa(_ln(state, "ln1", x)) + ff(_ln(state, "ln2", sa(_ln(state, "ln1", x))))
    yield "no residual around the feed-forward", ff(_ln(state, "ln2", x1))
    yield "the feed-forward applied to x instead of the attention's result", x1 + ff(_ln(state, "ln2", x))


def test_decoder_block_pre_layernorm_residuals(sub):
    """x = x + sa(ln1(x)); x = x + ffwd(ln2(x)) (atol 1e-5: float32 LayerNorm and matmuls)."""
    block, state = _block(sub)
    x = torch.randn(2, 5, C, generator=torch.Generator().manual_seed(4))
    got = tensor(block(x), "DecoderBlock.forward", shape=(2, 5, C))
    variants = dict(_variants(state, x))
    expected = variants.pop("expected")
    hint = next((f"the output matches a block with {name}" for name, v in variants.items()
                 if torch.allclose(got, v, atol=1e-5)), "")
    close(got, expected, "DecoderBlock output", atol=1e-5,
          hint=(hint + "; " if hint else "") + "pre-LayerNorm: x = x + self.sa(self.ln1(x)); x = x + self.ffwd(self.ln2(x))")
