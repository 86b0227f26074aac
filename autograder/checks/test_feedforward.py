"""Part feedforward: the position-wise MLP."""

import torch
from hypothesis import given
from hypothesis import strategies as st

from autograder.checks.verdicts import expect, fail, need, tensor
from autograder.i18n import tr

C = 8


def _ff(sub, dropout=0.0, seed=0):
    need(sub, "FeedForward")
    return sub.new("FeedForward", C, dropout, _seed=seed).eval()


def test_feedforward_layers(sub):
    """net = Sequential(Linear(C, 4C), ReLU, Linear(4C, C), Dropout)."""
    state = _ff(sub).state_dict()
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    expected = {"net.0.weight": (4 * C, C), "net.0.bias": (4 * C,), "net.2.weight": (C, 4 * C), "net.2.bias": (C,)}
    expect(shapes == expected, tr("FeedForward parameters: expected {expected}, got {got}. Hint: "
                                 "nn.Sequential(nn.Linear(n_embd, 4 * n_embd), nn.ReLU(), nn.Linear(4 * n_embd, "
                                 "n_embd), nn.Dropout(dropout))")
                                .format(expected=expected, got=shapes))


@given(t=st.integers(2, 6), pos=st.integers(0, 5))
def test_feedforward_position_wise(sub, t, pos):
    """Each position is transformed on its own: changing position p changes only output p, exactly."""
    pos = min(pos, t - 1)
    ff = _ff(sub)
    g = torch.Generator().manual_seed(t * 7 + pos)
    x = torch.randn(2, t, C, generator=g)
    x2 = x.clone()
    x2[:, pos] = torch.randn(2, C, generator=g)
    a = tensor(ff(x), "FeedForward.forward", shape=(2, t, C))
    b = tensor(ff(x2), "FeedForward.forward", shape=(2, t, C))
    others = [i for i in range(t) if i != pos]
    expect(torch.equal(a[:, others], b[:, others]), tr("changing one position changed the output at another: "
           "the feed-forward network must act on each position independently"))
    expect(not torch.equal(a[:, pos], b[:, pos]), tr("changing a position's input did not change its output"))


def test_feedforward_nonlinear(sub):
    """ReLU between the layers: f(x) + f(-x) is not affine in x (a purely linear net would be)."""
    ff = _ff(sub)
    x = torch.randn(1, 4, C, generator=torch.Generator().manual_seed(1))
    zero = ff(torch.zeros(1, 4, C))
    s = tensor(ff(x), "FeedForward.forward", shape=(1, 4, C)) + ff(-x) - 2 * zero
    expect(s.abs().max() > 1e-4, tr("the network is linear: put nn.ReLU() between the two Linear layers"))


def test_feedforward_dropout_only_in_train_mode(sub):
    x = torch.randn(2, 4, C, generator=torch.Generator().manual_seed(2))
    plain = tensor(_ff(sub, 0.0, seed=3)(x), "FeedForward.forward", shape=(2, 4, C))
    ff = _ff(sub, 0.5, seed=3)
    expect(torch.allclose(ff.call(None, x, _seed=1), plain, atol=1e-6),
           tr("in eval mode the output differs from dropout=0: use nn.Dropout as the last layer"))
    ff.train()
    expect(not torch.allclose(ff.call(None, x, _seed=1), plain, atol=1e-6),
           tr("in train mode with dropout 0.5 nothing is dropped: end net with nn.Dropout(dropout)"))


def test_feedforward_computes_linear_relu_linear(sub):
    """forward(x) = Linear2(ReLU(Linear1(x))) with the module's own weights, nothing added: the
    formula the contract fixes, computed here from the student's state dict (atol 1e-5: float32
    sums of 32 products of unit-size numbers)."""
    import torch.nn.functional as F

    ff = _ff(sub, seed=6)
    state = ff.state_dict()
    for key in ("net.0.weight", "net.0.bias", "net.2.weight", "net.2.bias"):
        expect(key in state, tr("FeedForward has no {key}: the layers are checked by 'layers'").format(key=key))
    x = torch.randn(2, 3, C, generator=torch.Generator().manual_seed(7))
    hidden = F.linear(x, state["net.0.weight"], state["net.0.bias"])
    want = F.linear(F.relu(hidden), state["net.2.weight"], state["net.2.bias"])
    got = tensor(ff(x), tr("FeedForward(n_embd={C}) on x of shape (2, 3, {C})").format(C=C), shape=(2, 3, C))
    if torch.allclose(got, want, atol=1e-5):
        return
    causes = {
        "GELU (or another activation) instead of ReLU: the contract's net uses nn.ReLU()":
            F.linear(F.gelu(hidden), state["net.2.weight"], state["net.2.bias"]),
        "the input is added to the output: the residual connection belongs in DecoderBlock.forward, not in FeedForward":
            want + x,
    }
    if torch.allclose(got, F.linear(hidden, state["net.2.weight"], state["net.2.bias"]), atol=1e-5):
        return  # no activation at all: 'nonlinear' says so (one failure per cause)
    named = [why for why, value in causes.items() if torch.allclose(got, value, atol=1e-5)]
    fail(tr("FeedForward(n_embd={C}) does not compute Linear -> ReLU -> Linear with its own "
           "weights (max difference {max:.3g})")
          .format(C=C, max=(got - want).abs().max().item())
         + (f": {named[0]}" if named else tr(": check the order of the layers in self.net and that forward returns self.net(x)")))
