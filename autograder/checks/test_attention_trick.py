"""Part attention_trick: the mathematical trick of self-attention, as two functions.

``causal_average(x)``: (B, T, C) -> (B, T, C), position t the mean of positions 0..t (one matrix
product with a normalised lower-triangular matrix). ``causal_softmax(scores)``: (..., T, T) ->
(..., T, T), the future masked to -inf, then a softmax over each row.

Properties only (shapes for every T, the running mean, no weight on the future, rows that sum to
1, the masked softmax), checked on inputs drawn by hypothesis; never the reference's numbers. One
failure per cause: the value checks say "not measured" when the shape check or the two weight
properties already report what is wrong.
"""

import torch
from hypothesis import given
from hypothesis import strategies as st

from autograder.checks.verdicts import fail, fails, need, owned_by, tensor
from autograder.engine.wire import Global
from autograder.i18n import N_, tr

# T both below and above the lab's block_size (8): nothing here may depend on it
SIZES = dict(b=st.integers(1, 3), t=st.integers(1, 12), c=st.integers(1, 5))


def _x(b, t, c, seed=0):
    return torch.randn(b, t, c, generator=torch.Generator().manual_seed(seed * 1000 + b * 100 + t * 10 + c))


def _average(sub, x):
    need(sub, "causal_average", "function")
    what = tr("causal_average(x of shape {shape})").format(shape=tuple(x.shape))
    return tensor(sub.call("causal_average", x), what, shape=tuple(x.shape), dtype=x.dtype)


def _softmax(sub, scores):
    need(sub, "causal_softmax", "function")
    what = tr("causal_softmax(scores of shape {shape})").format(shape=tuple(scores.shape))
    return tensor(sub.call("causal_softmax", scores), what, shape=tuple(scores.shape), finite=False)


# -- causal_average ---------------------------------------------------------------------------------

@given(**SIZES)
def test_attention_trick_average_shape(sub, b, t, c):
    """(B, T, C) -> (B, T, C) for every T from 1 to 12 (shorter and longer than the lab's block_size)."""
    _average(sub, _x(b, t, c))


def _average_shape(sub):
    for b, t, c in ((2, 1, 3), (2, 5, 3), (1, 12, 2)):
        _average(sub, _x(b, t, c))


@given(**SIZES, seed=st.integers(0, 10**6))
def test_attention_trick_average_is_running_mean(sub, b, t, c, seed):
    """Position t is the mean of positions 0..t of its own sequence (atol 1e-5: float32 sums)."""
    x = _x(b, t, c, seed)
    with owned_by(sub, ("average shape", fails(_average_shape, N_("causal_average fails on some shapes")))):
        got = _average(sub, x)
        counts = torch.arange(1, t + 1, dtype=x.dtype).view(1, t, 1)
        expected = x.cumsum(dim=1) / counts
        if (got - expected).abs().max() <= 1e-5:
            return
        where = tr("causal_average(x of shape {shape})").format(shape=(b, t, c))
        if t > 1 and (got - x.mean(dim=1, keepdim=True).expand_as(x)).abs().max() <= 1e-5:
            fail(tr("{where}: every position holds the mean of ALL T positions, the future included. Hint: position "
                    "t may only average positions 0..t: the weights above the diagonal of the (T, T) matrix must be 0 "
                    "(a lower-triangular matrix)").format(where=where))
        if (got - x.cumsum(dim=1)).abs().max() <= 1e-4:
            fail(tr("{where}: position t holds the sum of positions 0..t, not their mean. Hint: the rows of the (T, T) "
                    "matrix are not normalised: each row must sum to 1 (row t gives 1/(t+1) to each of positions 0..t)")
                 .format(where=where))
        diff = (got - expected).abs()
        i = tuple(int(k) for k in torch.unravel_index(diff.argmax(), diff.shape))
        fail(tr("{where}: at index {index} expected the mean of positions 0..{last}, {expected:.6g}, got "
                "{got:.6g}. Hint: one (T, T) matrix of weights, row t spreading its weight evenly over positions "
                "0..t, times x (a (T, T) @ (B, T, C) product works on each sequence)")
             .format(where=where, index=i, last=i[1], expected=expected[i].item(), got=got[i].item()))


# -- causal_softmax ---------------------------------------------------------------------------------

def _scores(shape, seed=0):
    return 3.0 * torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@given(t=st.integers(1, 12), batched=st.booleans())
def test_attention_trick_softmax_shape(sub, t, batched):
    """(T, T) -> (T, T) and (B, T, T) -> (B, T, T), for every T from 1 to 12."""
    _softmax(sub, _scores((2, t, t) if batched else (t, t), t))


def _softmax_shape(sub):
    for shape in ((1, 1), (5, 5), (2, 12, 12)):
        _softmax(sub, _scores(shape))


SHAPE = ("softmax shape", fails(_softmax_shape, N_("causal_softmax fails on some shapes")))


def _no_future(sub, t=6, seed=0):
    w = _softmax(sub, _scores((2, t, t), seed))
    future = torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1)
    leak = torch.where(future, w.abs().nan_to_num(nan=1.0), torch.zeros(()))
    if leak.max() > 0:
        b, i, j = (int(k) for k in torch.unravel_index(leak.argmax(), leak.shape))
        fail(tr("causal_softmax(scores of shape {shape}): position {i} gives weight {weight:.3g} to the later "
                "position {j}: the future must get weight exactly 0. Hint: the scores of later positions must be "
                "masked BEFORE the softmax, to a value whose exponential is 0 (a score of 0 still gets weight "
                "exp(0) = 1; lecture: the attention trick, the softmax version)")
             .format(shape=(2, t, t), i=i, weight=w[b, i, j].item(), j=j))


@given(t=st.integers(2, 12), seed=st.integers(0, 10**6))
def test_attention_trick_softmax_no_future(sub, t, seed):
    """Every weight above the diagonal is exactly 0 (masked to -inf before the softmax)."""
    with owned_by(sub, SHAPE):
        _no_future(sub, t, seed)


def _rows_sum_to_one(sub, t=6, seed=0):
    w = _softmax(sub, _scores((2, t, t), seed))
    sums = w.sum(dim=-1)
    if not torch.isfinite(sums).all() or (sums - 1).abs().max() > 1e-5:
        bad = (sums - 1).abs().nan_to_num(nan=float("inf"))
        b, i = (int(k) for k in torch.unravel_index(bad.argmax(), bad.shape))
        cols = w.sum(dim=-2)
        by_column = bool(torch.isfinite(cols).all() and (cols - 1).abs().max() <= 1e-5)
        fail(tr("causal_softmax(scores of shape {shape}): row {i} of the weights sums to {total:.4g}, "
                "not 1{columns}. Hint: each row t is a distribution over "
                "the positions s it looks at: the softmax runs over the last dimension (dim=-1), after the mask")
             .format(shape=(2, t, t), i=i, total=sums[b, i].item(),
                     columns=tr(" (the COLUMNS sum to 1)") if by_column else ""))


@given(t=st.integers(1, 12), seed=st.integers(0, 10**6))
def test_attention_trick_softmax_rows_sum_to_one(sub, t, seed):
    """Each row of the weights sums to 1 (atol 1e-5), for a (B, T, T) batch of scores."""
    with owned_by(sub, SHAPE):
        _rows_sum_to_one(sub, t, seed)


@given(t=st.integers(1, 12), seed=st.integers(0, 10**6))
def test_attention_trick_softmax_is_masked_softmax(sub, t, seed):
    """Row t is the softmax of scores[t, :t+1] over positions 0..t (atol 1e-6), 0 after: the
    weights follow the scores, not only the mask."""
    scores = _scores((2, t, t), seed)
    with owned_by(sub, SHAPE, ("softmax no future", fails(_no_future, N_("weight on the future"))),
                  ("softmax rows sum to one", fails(_rows_sum_to_one, N_("rows that do not sum to 1")))):
        w = _softmax(sub, scores)
        for i in range(t):
            want = torch.softmax(scores[:, i, : i + 1], dim=-1)
            got = w[:, i, : i + 1]
            if (got - want).abs().max() > 1e-6:
                fail(tr("causal_softmax(scores of shape {shape}): row {i} over positions 0..{i} is "
                        "{got}, expected the softmax of those scores, "
                        "{expected}. Hint: the weights are exp(score) / sum of exp(score) "
                        "over the positions the row may see: the softmax must receive the masked scores themselves, "
                        "not a mask or a copy made before the masking")
                     .format(shape=(2, t, t), i=i, got=[round(v, 4) for v in got[0].tolist()],
                             expected=[round(v, 4) for v in want[0].tolist()]))


def test_attention_trick_softmax_leaves_scores_unchanged(sub):
    """scores itself is left unchanged: the weights are a new tensor (no in-place masking of the input)."""
    scores = _scores((2, 6, 6), 5)
    with owned_by(sub, SHAPE):
        need(sub, "causal_softmax", "function")
        after = sub.make("arguments_after_call", Global("causal_softmax"), scores)[0]
        changed = tensor(after, "scores", shape=tuple(scores.shape), finite=False)
        if not torch.equal(changed, scores):
            fail(tr("causal_softmax(scores of shape {shape}) changed scores itself (an in-place operation on the "
                    "input, such as a method ending in _): the caller's scores must stay as they were; mask a "
                    "new tensor instead").format(shape=tuple(scores.shape)))
