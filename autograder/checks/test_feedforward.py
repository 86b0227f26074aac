"""Part feedforward: the position-wise MLP.

The weights a check needs are written into the module's registered parameters by the grader
(through nn.Module's own tables, never the module's methods) and the expected output is computed
here, in the grading process: what the module says about itself decides nothing. The layers may
be named (an ``OrderedDict``): they are found by their order and shapes, not their names.
"""

import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from autograder.checks.verdicts import expect, fail, fails, need, owned_by, tensor
from autograder.i18n import N_, tr, translate

C = 8
SHAPES = ((4 * C, C), (4 * C,), (C, 4 * C), (C,))  # first Linear (weight, bias), second Linear (weight, bias)


def _ff(sub, dropout=0.0, seed=0):
    need(sub, "FeedForward")
    return sub.new("FeedForward", C, dropout, _seed=seed).eval()


def layer_names(state) -> list[str] | None:
    """The names of the two Linear layers' weights and biases (in SHAPES' order), found by their
    shapes, which tell the four apart whatever the layers are called; None unless there are exactly
    these four tensors."""
    by_shape = {tuple(v.shape): k for k, v in state.items()}
    if len(state) != len(SHAPES) or set(by_shape) != set(SHAPES):
        return None
    return [by_shape[shape] for shape in SHAPES]


def test_feedforward_layers(sub):
    """Two Linear layers with biases, n_embd -> 4 * n_embd -> n_embd (their names are the student's)."""
    state = _ff(sub).state_dict()
    shapes = [tuple(v.shape) for v in state.values()]
    expect(layer_names(state) is not None,
           tr("FeedForward(n_embd={C})'s parameters have shapes {got}; expected a first Linear layer from n_embd "
              "to 4 * n_embd and then a second one back to n_embd, both with a bias (look at the layers built in "
              "FeedForward.__init__)").format(C=C, got=shapes))


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
    expect(s.abs().max() > 1e-4, tr("the network is linear: a ReLU belongs between the two Linear layers"))


def test_feedforward_dropout_only_in_train_mode(sub):
    x = torch.randn(2, 4, C, generator=torch.Generator().manual_seed(2))
    plain = tensor(_ff(sub, 0.0, seed=3)(x), "FeedForward.forward", shape=(2, 4, C))
    ff = _ff(sub, 0.5, seed=3)
    expect(torch.allclose(ff.call(None, x, _seed=1), plain, atol=1e-6),
           tr("in eval mode the output differs from dropout=0: the dropout must be a Dropout layer, which is off in eval mode"))
    ff.train()
    expect(not torch.allclose(ff.call(None, x, _seed=1), plain, atol=1e-6),
           tr("in train mode with dropout 0.5 nothing is dropped: the network's last layer is a Dropout with the given probability"))


_NONLINEAR = ("nonlinear", fails(lambda sub: test_feedforward_nonlinear(sub), N_("the network is linear")))


def test_feedforward_computes_linear_relu_linear(sub):
    """forward(x) = Linear2(ReLU(Linear1(x))), nothing added: the grader writes known weights into the
    module's two Linear layers and compares with the formula computed here (atol 1e-5: float32
    sums of 32 products of unit-size numbers)."""
    ff = _ff(sub, seed=6)
    names = layer_names(ff.state_dict())
    expect(names is not None, tr("not measured: FeedForward's layers are not two Linear layers of the expected "
                                 "sizes; the check 'layers' reports the cause (fix it first)"))
    g = torch.Generator().manual_seed(7)
    w1, b1, w2, b2 = (torch.randn(*shape, generator=g) / (shape[-1] ** 0.5 if len(shape) == 2 else 2.0)
                      for shape in SHAPES)
    ff.load_state_dict(dict(zip(names, (w1, b1, w2, b2))))
    x = torch.randn(2, 3, C, generator=g)
    hidden = F.linear(x, w1, b1)
    want = F.linear(F.relu(hidden), w2, b2)
    got = tensor(ff(x), tr("FeedForward(n_embd={C}) on x of shape (2, 3, {C})").format(C=C), shape=(2, 3, C))
    if torch.allclose(got, want, atol=1e-5):
        return
    causes = {
        N_("GELU (or another activation) instead of ReLU between the layers: the contract's network uses ReLU"):
            F.linear(F.gelu(hidden), w2, b2),
        N_("the input is added to the output: the residual connection belongs in DecoderBlock.forward, not in FeedForward"):
            want + x,
    }
    named = [translate(why) for why, value in causes.items() if torch.allclose(got, value, atol=1e-5)]
    with owned_by(sub, _NONLINEAR):  # a network without its activation: 'nonlinear' names the cause
        expect(named or not torch.allclose(got, F.linear(hidden, w2, b2), atol=1e-5),
               tr("no activation between the two Linear layers"))
    fail(tr("FeedForward(n_embd={C}) does not compute Linear -> ReLU -> Linear with its own "
            "layers' weights (max difference {max:.3g})")
         .format(C=C, max=(got - want).abs().max().item())
         + (f": {named[0]}" if named else tr(": check the order of the layers and that forward applies them all "
                                            "to x and returns their result")))
