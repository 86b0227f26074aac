"""Part get_batch: random windows of the data, targets shifted by one."""

import torch
from hypothesis import given
from hypothesis import strategies as st

from autograder.checks.verdicts import chi_square_p, expect, fail, fails, need, owned_by, tensor
from autograder.i18n import N_, tr


def _batch(sub, data, block_size, batch_size, seed=0):
    x, y = _pair(sub.call("get_batch", data, block_size, batch_size, _seed=seed))
    x = tensor(x, "get_batch's x", shape=(batch_size, block_size), dtype=torch.int64)
    if isinstance(y, torch.Tensor) and isinstance(x, torch.Tensor) and y.shape != x.shape:
        fail(tr("get_batch(data of length {length}, block_size={block_size}, "
               "batch_size={batch_size}): x has shape {x_shape} but y has shape {y_shape}. Hint: y "
               "is the same window shifted by one, data[i+1:i+block_size+1]: as long as x")
              .format(length=len(data), block_size=block_size, batch_size=batch_size, x_shape=tuple(x.shape), y_shape=tuple(y.shape)))
    y = tensor(y, "get_batch's y", shape=(batch_size, block_size), dtype=torch.int64)
    return x, y


def _pair(value):
    expect(isinstance(value, (tuple, list)) and len(value) == 2,
           tr("get_batch should return a pair (x, y), got {got}").format(got=type(value).__name__))
    return value


@given(n=st.integers(12, 60), block_size=st.integers(1, 10), batch_size=st.integers(1, 6))
def test_get_batch_windows_and_shifted_targets(sub, n, block_size, batch_size):
    """Each row of x is a window ``data[i:i+T]`` and y the same window shifted by one."""
    need(sub, "get_batch", "function")
    data = torch.arange(100, 100 + n)  # distinct values: a window tells its start
    x, y = _batch(sub, data, block_size, batch_size)
    for row_x, row_y in zip(x, y):
        i = int(row_x[0]) - 100
        expect(0 <= i <= n - block_size - 1,
               tr("a window starts at index {i}, outside 0..{last} (len(data)={n}, "
                 "block_size={block_size})")
                .format(i=i, last=n - block_size - 1, n=n, block_size=block_size))
        expect(torch.equal(row_x, data[i:i + block_size]),
               tr("x row {row} is not a contiguous window of the data").format(row=row_x.tolist()))
        expect(torch.equal(row_y, data[i + 1:i + block_size + 1]),
               tr("for x = {x} expected y = {expected}, got {got}. Hint: y is x shifted one "
                 "position to the right (the next token at each position)")
                .format(x=row_x.tolist(), expected=data[i + 1:i + block_size + 1].tolist(), got=row_y.tolist()))


def test_get_batch_uniform_starts(sub):
    """Starts are uniform over 0 .. len(data)-block_size-1: a chi-square test on 3,000 draws
    (p < 1e-6 fails; a correct sampler fails this with probability below one in a million)."""
    need(sub, "get_batch", "function")
    with owned_by(sub, _WINDOWS, _RNG):
        n, block_size = 20, 4
        data = torch.arange(n)
        x, _ = _batch(sub, data, block_size, 3000, seed=5)
        starts = x[:, 0]
        counts = torch.bincount(starts, minlength=n).double()
        last = n - block_size - 1
        expect(counts[last] > 0, tr("no window ever starts at the last valid index {last} (len(data)={n}, "
                                   "block_size={block_size}). Hint: an off-by-one in the range of starts")
                                  .format(last=last, n=n, block_size=block_size))
        probs = torch.zeros(n, dtype=torch.float64)
        probs[: last + 1] = 1.0 / (last + 1)
        p = chi_square_p(counts, probs)
        expect(p > 1e-6, tr("window starts are not uniform over 0..{last}: counts {counts} (chi-square p = "
                           "{p:.2g})")
                          .format(last=last, counts=counts[:last + 1].int().tolist(), p=p))


def test_get_batch_uses_torch_rng(sub):
    """Draws come from torch's global RNG: the same seed gives the same batch, another seed another."""
    need(sub, "get_batch", "function")
    with owned_by(sub, _WINDOWS):
        _rng_measure(sub)


def _rng_measure(sub):
    data = torch.arange(1000)
    a, _ = _batch(sub, data, 8, 16, seed=1)
    b, _ = _batch(sub, data, 8, 16, seed=1)
    c, _ = _batch(sub, data, 8, 16, seed=2)
    expect(torch.equal(a, b), tr("two calls after torch.manual_seed(1) gave different batches: "
           "draw the starts with torch.randint (torch's global RNG), not Python's random or numpy"))
    expect(not torch.equal(a, c), tr("different torch seeds gave the same batch: the starts are not random"))


# one failure per cause: a window or target wrong (or get_batch raising) is reported by 'windows and
# shifted targets', starts that ignore torch's RNG by 'uses torch rng'; the others say "not measured"
_WINDOWS = ("windows and shifted targets", fails(test_get_batch_windows_and_shifted_targets,
                                                 N_("the windows or their targets are wrong")))
_RNG = ("uses torch rng", fails(_rng_measure, N_("the starts do not come from torch's RNG")))
