"""Part decoder_block: ``DecoderBlock.forward``, the pre-LayerNorm residual block.

Checked with the grader's stand-ins for ``sa`` and ``ffwd`` (simple position-wise maps), so that
the block's wiring is checked alone: a broken Head or FeedForward costs nothing here. The grader
writes known weights into the stand-ins and the two LayerNorms (through nn.Module's own tables)
and computes, in the grading process, what every arrangement of the four sub-layers gives: with
or without each residual, the LayerNorm before each sub-layer, after each add, or none, the
feed-forward fed the attention's result or the block's input. The output must match one of them;
each check then judges one property of that arrangement, so partial work earns partial points
and each check names one cause.
"""

import itertools

import torch
import torch.nn.functional as F

from autograder.checks.standins import Probe
from autograder.checks.verdicts import expect, fail, need, tensor
from autograder.i18n import tr

C, NH, BLOCK = 8, 2, 8
STUBS = {"MultiHeadAttention": "ProbeMultiHead", "FeedForward": "ProbeFeedForward"}
NORMS = ("pre", "post", "none")


def _known_state():
    """The weights the grader writes in: non-trivial LayerNorm affines, so each LayerNorm matters."""
    g = torch.Generator().manual_seed(3)
    state = {}
    for ln in ("ln1", "ln2"):
        state[f"{ln}.weight"] = 1 + 0.5 * torch.randn(C, generator=g)
        state[f"{ln}.bias"] = 0.5 * torch.randn(C, generator=g)
    for sub_layer in ("sa", "ffwd"):
        state[f"{sub_layer}.lin.weight"] = torch.randn(C, C, generator=g) / C**0.5
        state[f"{sub_layer}.lin.bias"] = 0.5 * torch.randn(C, generator=g)
    return state


def _block(sub):
    need(sub, "DecoderBlock")
    block = sub.new("DecoderBlock", C, NH, BLOCK, 0.0, _seed=2, _stubs=STUBS).eval()
    have = block.state_dict()
    state = _known_state()
    for ln in ("ln1", "ln2"):
        if f"{ln}.weight" not in have:
            fail(tr("DecoderBlock has no {ln} (expected nn.LayerNorm(n_embd))").format(ln=ln))
    for name in ("sa", "ffwd"):
        if f"{name}.lin.weight" not in have:
            fail(tr("DecoderBlock.{name} is not the module its __init__ builds (the given __init__ "
                    "builds it from the lab's class): keep __init__ as given").format(name=name))
    block.load_state_dict(state)
    return block, state


def _ln(state, name, x):
    return F.layer_norm(x, (C,), state[f"{name}.weight"], state[f"{name}.bias"])


def _sublayer(state, x, name, ln, residual, norm):
    f = lambda h: Probe.compute(state, h, f"{name}.")  # noqa: E731
    if norm == "pre":
        y = f(_ln(state, ln, x))
        return x + y if residual else y
    y = f(x)
    out = x + y if residual else y
    return _ln(state, ln, out) if norm == "post" else out


def arrangements(state, x):
    """(residual around sa, residual around ffwd, where the LayerNorms are, ffwd fed sa's result,
    the LayerNorm of the feed-forward) -> the block's output with that arrangement."""
    for r1, r2, norm, chained, ln, ln_sa in itertools.product((True, False), (True, False), NORMS, (True, False),
                                                              ("ln2", "ln1"), ("ln1", "ln2")):
        if norm == "none" and (ln, ln_sa) != ("ln2", "ln1"):
            continue  # the same output as with ln1, ln2
        h1 = _sublayer(state, x, "sa", ln_sa, r1, norm)
        if chained:
            out = _sublayer(state, h1, "ffwd", ln, r2, norm)
        else:  # the feed-forward reads the block's input; its output still joins the stream h1
            y = _sublayer(state, x, "ffwd", ln, False, norm)
            out = h1 + y if r2 else y
        yield (r1, r2, norm, chained, ln, ln_sa), out


def wiring(sub):
    """The arrangement the student's block computes, or None when it computes none of them."""
    block, state = _block(sub)
    x = torch.randn(2, 5, C, generator=torch.Generator().manual_seed(4))
    got = tensor(block(x), "DecoderBlock.forward", shape=(2, 5, C))
    for key, value in arrangements(state, x):
        if torch.allclose(got, value, atol=1e-5):
            return key
    return None


def _wiring(sub):
    found = wiring(sub)
    expect(found is not None, tr("DecoderBlock's output is not any arrangement of ln1, sa, ln2, ffwd and residual "
                                 "additions: forward must pass x through the four sub-layers of the block and "
                                 "add the sub-layers' results to the residual stream"))
    return found


def test_decoder_block_residual_around_attention(sub):
    """The attention's result is added to the residual stream (x plus it), not returned alone."""
    r1 = _wiring(sub)[0]
    expect(r1, tr("the attention sub-layer's result replaces the residual stream instead of being added to it "
                  "(the first sub-layer of DecoderBlock.forward)"))


def test_decoder_block_residual_around_feedforward(sub):
    """The feed-forward's result is added to the residual stream, not returned alone."""
    r2 = _wiring(sub)[1]
    expect(r2, tr("the feed-forward sub-layer's result replaces the residual stream instead of being added to it "
                  "(the second sub-layer of DecoderBlock.forward)"))


def test_decoder_block_pre_layernorm(sub):
    """Each LayerNorm normalises its sub-layer's input (pre-LN); the residual stream itself is never normalised."""
    _, _, norm, _, ln, ln_sa = _wiring(sub)
    expect(norm != "post", tr("the LayerNorms are applied after the residual additions (post-LN): this lab's block "
                              "normalises each sub-layer's input and leaves the residual stream as it is"))
    expect(norm != "none", tr("ln1 and ln2 are never applied: each normalises the input of its sub-layer"))
    expect((ln_sa, ln) != ("ln2", "ln1"), tr("ln1 and ln2 are swapped: each sub-layer has a LayerNorm of its own "
                                             "(ln1 for the attention, ln2 for the feed-forward)"))
    expect(ln == "ln2" and ln_sa == "ln1", tr("ln1 also normalises the feed-forward's input: the block has a LayerNorm of its own for "
                           "each sub-layer (ln2 for the feed-forward)"))


def test_decoder_block_order(sub):
    """The feed-forward works on the stream after the attention has been added to it."""
    chained = _wiring(sub)[3]
    expect(chained, tr("the feed-forward sub-layer reads the block's input x instead of the stream after the "
                       "attention sub-layer: the second sub-layer must see the first one's result"))
