"""Part head: one head of causal scaled dot-product self-attention.

These visible checks test properties from the contract (shapes, causality, independence of batch
elements, the attention weights, the scale), never the reference's numbers; the hidden checks
compare with the reference through a weight transplant.
"""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from autograder.checks.verdicts import CheckFailed, close, expect, fail, need, tensor, their_lines
from autograder.checks.verdicts import owned_by as _owned_by
from autograder.engine.submission import SubmissionFailure
from autograder.i18n import N_, tr, translate

C, HS, BLOCK = 16, 8, 8


def _head(sub, dropout=0.0, n_embd=C, head_size=HS, block=BLOCK, seed=0):
    need(sub, "Head")
    head = sub.new("Head", n_embd, head_size, block, dropout, _seed=seed)
    return head.eval()


def test_head_structure(sub):
    """key, query, value: Linear(n_embd, head_size, bias=False). The causal mask is checked by
    behaviour (test_head_causal), so any buffer name, or a non-persistent buffer, or none at all
    (F.scaled_dot_product_attention(is_causal=True)) is accepted: see docs/accepted_variants.md."""
    state = _head(sub).state_dict()
    for name in ("key", "query", "value"):
        w = state.get(f"{name}.weight")
        expect(w is not None, tr("Head has no {name} layer (expected self.{name} = nn.Linear(n_embd, head_size, "
                                "bias=False))")
                               .format(name=name))
        expect(tuple(w.shape) == (HS, C), tr("Head.{name}.weight: expected shape {expected}, got {got}")
                                           .format(name=name, expected=(HS, C), got=tuple(w.shape)))
        expect(f"{name}.bias" not in state, tr("Head.{name} should have no bias (bias=False)").format(name=name))


# One failure per cause: each cause below is reported by ONE check (its owner). Another check that
# fails where an owner's cause is present says "not measured" and names the owner; it still fails
# (a check that cannot measure never passes), so a wrong Head earns exactly what it earned before.
SHORT_OWNER = "output shape"
ROWS_OWNER = "attention rows average the past"
MASK_HINT = N_("x has T <= block_size positions but the mask is (block_size, block_size): slice it to the first T rows "
             "and columns of self.tril (look at the masked_fill line of Head.forward)")

# the idea and the place, not the line (issue 26)
FUTURE_HINT = N_("the scores of later positions must be masked BEFORE the softmax, so that they get weight exactly "
                 "0 (the lower-triangular buffer, cut to the T positions of x, says which positions a row may see), "
                 "and the softmax must receive the masked scores: masked_fill returns a new tensor (lecture: "
                 "self-attention, the masking step)")


SHORT_TS = (BLOCK // 2, 1, BLOCK - 1)  # tried in this order by every message: one T per failure


def _short_failure(sub):
    """(T, the failure) for the first T < block_size (of SHORT_TS) the Head raises on while it runs on
    T = block_size (the mask not sliced to the input's T, the usual cause); None if there is none.
    T = block_size // 2 comes first: at T = 1 the (T, T) mask broadcasts and the error shows later."""
    head = _head(sub)
    try:
        head(torch.zeros(1, BLOCK, C))
    except SubmissionFailure:
        return None  # it fails on every T: not this cause
    for t in SHORT_TS:
        try:
            head(torch.zeros(1, t, C))
        except SubmissionFailure as exc:
            if not exc.not_implemented:
                return t, exc
    return None


def _short_inputs_break(sub) -> str:
    """Why the Head cannot be measured on T < block_size, or "" (see _short_failure)."""
    found = _short_failure(sub)
    return tr("Head raises on inputs shorter than block_size (T = {t})").format(t=found[0]) if found else ""


def _rows_wrong(sub) -> str:
    """Why the attention weights (read through the probe) are not a causal average, or ""."""
    try:
        wei = _attention_probe(sub, scale_q=0.0)
    except (CheckFailed, SubmissionFailure):
        return tr("the attention weights could not be read")
    T = wei.shape[0]
    expected = torch.tril(torch.ones(T, T)) / torch.arange(1, T + 1).unsqueeze(1)
    return "" if (wei - expected).abs().max() <= 1e-6 else tr("the attention weights are not a causal average")


VALUES_OWNER = "values come from value layer"


def _values_wrong(sub) -> str:
    """Why the output is not a weighted sum of self.value(x), or "": with the value layer zeroed
    (key and query kept) the output must be exactly zero."""
    head = _head(sub)
    state = head.state_dict()
    if state.get("value.weight") is None:
        return tr("the Head has no value layer")
    state["value.weight"] = torch.zeros_like(state["value.weight"])
    head.load_state_dict(state)
    try:
        out = head(torch.randn(2, BLOCK, C, generator=torch.Generator().manual_seed(8)))
    except SubmissionFailure:
        return ""
    wrong = isinstance(out, torch.Tensor) and out.abs().max() > 0
    return tr("the output does not come from the value layer") if wrong else ""


_OWNERS = {SHORT_OWNER: _short_inputs_break, ROWS_OWNER: _rows_wrong, VALUES_OWNER: _values_wrong}


def owned_by(sub, *owners):
    """The head's causes by the name of their owner check (see checking.owned_by)."""
    return _owned_by(sub, *((owner, _OWNERS[owner]) for owner in owners))


@given(t=st.integers(1, BLOCK), b=st.integers(1, 3))
def test_head_output_shape(sub, t, b):
    """(B, T, n_embd) -> (B, T, head_size) for every T <= block_size. Owns the cause "the Head
    raises on T < block_size" (the mask not sliced): its message says so whatever PyTorch's error."""
    head = _head(sub)
    x = torch.randn(b, t, C, generator=torch.Generator().manual_seed(t * 10 + b))
    try:
        out = head(x)
    except SubmissionFailure as exc:
        found = None if exc.not_implemented or t == BLOCK else _short_failure(sub)
        if found is None:
            raise
        t, exc = found  # the T (and its error) that every message of this failure names
        fail(tr("Head(n_embd={C}, head_size={HS}, block_size={BLOCK}) runs on x of T = block_size = {BLOCK} but raised "
                "{kind} on x of shape {shape} (T = {t} < block_size): {message}. Hint: {hint}")
             .format(C=C, HS=HS, BLOCK=BLOCK, kind=exc.kind, shape=(1, t, C), t=t, message=exc.message.rstrip('.'),
                     hint=translate(MASK_HINT))
             + their_lines(exc))
    tensor(out, tr("Head.forward(x of shape {shape})").format(shape=(b, t, C)), shape=(b, t, HS))


LONG_BLOCK = 12  # a block_size other than the other checks' 8, so a mask sized 8 by hand fails


@given(t=st.integers(2, LONG_BLOCK), cut=st.integers(0, LONG_BLOCK - 2), seed=st.integers(0, 10**6))
def test_head_causal(sub, t, cut, seed):
    """Changing the inputs after position ``cut`` leaves every output at positions <= cut exactly
    unchanged (masked scores are exactly zero after the softmax, so no tolerance is needed);
    with block_size 12 and every T up to it."""
    with owned_by(sub, SHORT_OWNER, ROWS_OWNER):
        cut = min(cut, t - 2)
        head = _head(sub, block=LONG_BLOCK)
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(2, t, C, generator=g)
        x2 = x.clone()
        x2[:, cut + 1 :] = torch.randn(2, t - cut - 1, C, generator=g)
        a, b = head(x), head(x2)
        a, b = tensor(a, "Head.forward", shape=(2, t, HS)), tensor(b, "Head.forward", shape=(2, t, HS))
        if not torch.equal(a[:, : cut + 1], b[:, : cut + 1]):
            pos = int((a[:, : cut + 1] != b[:, : cut + 1]).any(dim=(0, 2)).nonzero()[0])
            fail(tr("position {pos}'s output changed when only positions after {cut} changed: the "
                   "mask lets a position see the future. Hint: {hint}")
                  .format(pos=pos, cut=cut, hint=translate(FUTURE_HINT)))


def test_head_batch_elements_independent(sub):
    """Changing one batch element leaves the others' outputs unchanged (also in train mode with
    dropout, with the same seed for both calls)."""
    with owned_by(sub, SHORT_OWNER, ROWS_OWNER):
        g = torch.Generator().manual_seed(3)
        x = torch.randn(3, 6, C, generator=g)
        x2 = x.clone()
        x2[1] = torch.randn(6, C, generator=g)
        for dropout, mode in ((0.0, "eval"), (0.3, "train")):
            head = _head(sub, dropout=dropout)
            if mode == "train":
                head.train()
            a = tensor(head.call(None, x, _seed=9), "Head.forward", shape=(3, 6, HS))
            b = tensor(head.call(None, x2, _seed=9), "Head.forward", shape=(3, 6, HS))
            expect(torch.equal(a[0], b[0]) and torch.equal(a[2], b[2]),
                   tr("in {mode} mode, changing batch element 1 changed the output of another batch "
                     "element: attention must stay within each sequence (batched matmul over (B, T, "
                     "T), softmax over the last dim)")
                    .format(mode=mode))


def _attention_probe(sub, scale_q=0.0, n_embd=C, head_size=HS):
    """Weights that expose the attention matrix: value = [I | 0] and one-hot inputs, so
    output[t] is row t of the attention weights; query = scale_q * [I | 0], key = [I | 0].
    The Head's own state dict is loaded back with only these three weights changed, so whatever
    buffers it keeps (named tril or not, persistent or not) stay as they are."""
    head = _head(sub, n_embd=n_embd, head_size=head_size)
    state = head.state_dict()
    for name in ("key", "query", "value"):
        w = state.get(f"{name}.weight")
        expect(w is not None and tuple(w.shape) == (head_size, n_embd),
               tr("Head.{name}.weight: expected shape {expected}, got {got} (self.{name} = "
                 "nn.Linear(n_embd, head_size, bias=False))")
                .format(name=name, expected=(head_size, n_embd), got=None if w is None else tuple(w.shape)))
    eye = torch.zeros(head_size, n_embd)
    eye[:, :head_size] = torch.eye(head_size)
    state.update({"value.weight": eye, "key.weight": eye, "query.weight": scale_q * eye})
    head.load_state_dict(state)
    T = min(6, head_size)
    x = torch.zeros(1, T, n_embd)
    x[0, torch.arange(T), torch.arange(T)] = 1.0
    return tensor(head(x), "Head.forward", shape=(1, T, head_size))[0, :, :T]  # (T, T) attention weights


def test_head_attention_rows_average_the_past(sub):
    """With equal scores, position t averages positions 0..t: weights 1/(t+1) (atol 1e-6: float32).
    Owns the causes that show in the weights themselves (the mask, the softmax, its dimension),
    named from what the weights show: weight on a later position, or rows that do not sum to 1."""
    with owned_by(sub, SHORT_OWNER):
        wei = _attention_probe(sub, scale_q=0.0)
        T = wei.shape[0]
        expected = torch.tril(torch.ones(T, T)) / torch.arange(1, T + 1).unsqueeze(1)
        future = torch.triu(wei.abs(), diagonal=1)
        if future.max() > 1e-6:
            t, s = (int(i) for i in torch.unravel_index(future.argmax(), future.shape))
            fail(tr("attention weights (read through an identity value layer): position {t} gives weight "
                    "{weight:.3g} to the later position {s}: the mask lets a position see the future. Hint: {hint}")
                 .format(t=t, weight=float(wei[t, s]), s=s, hint=translate(FUTURE_HINT)))
        sums = wei.sum(dim=-1)
        if (sums - 1).abs().max() > 1e-5:
            t = int((sums - 1).abs().argmax())
            fail(tr("attention weights (read through an identity value layer): row {t} sums to {total:.4g}, "
                    "not 1. Hint: the weights are the softmax over the keys (dim=-1, the last dimension of the "
                    "(B, T, T) scores) of the masked scores, with the mask applied before the softmax")
                 .format(t=t, total=float(sums[t])))
        close(wei, expected, tr("attention weights (read through an identity value layer)"), atol=1e-6,
              hint=tr("each row must be a softmax over the keys (dim=-1) of the masked scores: weights >= 0, "
                   "zero on future positions, summing to 1"))


@pytest.mark.parametrize("sizes", [(C, HS), (12, 3), (10, 5)], ids=["hs8", "hs3", "hs5"])
def test_head_scales_by_head_size(sub, sizes):
    """Scores are scaled by head_size ** -0.5 (not n_embd ** -0.5, nor a constant that fits one
    head size), for three head sizes. With one-hot inputs and query = a * [I | 0], row t has score
    s = a * scale on the diagonal and 0 elsewhere, so the ratio of the diagonal weight to any other
    nonzero weight of the row is e^s whatever the mask keeps: the scale is measured on its own, and
    a wrong mask is reported by the mask checks only (one failure per cause). s is recovered to
    1e-3 (float32 rounding of weights near 1/6 gives about 1e-6)."""
    with owned_by(sub, SHORT_OWNER, ROWS_OWNER):
        n_embd, head_size = sizes
        a = 2.0
        wei = _attention_probe(sub, scale_q=a, n_embd=n_embd, head_size=head_size)
        expected_s = a * head_size**-0.5
        measured = []
        for t in range(wei.shape[0]):
            others = [j for j in range(wei.shape[1]) if j != t and float(wei[t, j]) > 1e-6]
            if float(wei[t, t]) > 1e-6 and others:
                measured.append(torch.log(torch.tensor(float(wei[t, t]) / float(wei[t, others[0]]), dtype=torch.float64)).item())
        # a check that cannot measure must not pass (an output of zeros would): no row holding two nonzero
        # weights means the output is not a weighted average of the values; the rows check says more
        expect(bool(measured), tr("Head(n_embd={n_embd}, head_size={head_size}): the scale could not be measured: "
                                 "no row of the attention weights (read through an identity value layer) holds "
                                 "two nonzero weights. Fix 'attention rows average the past' first")
                                .format(n_embd=n_embd, head_size=head_size))
        s = max(measured, key=lambda v: abs(v - expected_s))
        if abs(s - expected_s) > 1e-3:
            guesses = {f"head_size ** -0.5 = {head_size ** -0.5:.3f}": a * head_size**-0.5, tr("no scaling"): a,
                       f"n_embd ** -0.5 = {n_embd ** -0.5:.3f}": a * n_embd**-0.5}
            named = [k for k, v in guesses.items() if abs(v - s) < 1e-3]
            fail(tr("Head(n_embd={n_embd}, head_size={head_size}): the scores are scaled by "
                   "{scale:.4f} (looks like {looks_like}); expected head_size ** -0.5 = {expected:.4f}. "
                   "Hint: the scale belongs to this head's own head_size (the last dimension of k), "
                   "applied to q @ k^T before the mask and the softmax")
                  .format(n_embd=n_embd, head_size=head_size, scale=s / a, looks_like=named[0] if named else tr("something else"),
                          expected=head_size ** (-0.5)))


def test_head_queries_look_for_keys(sub):
    """Scores are q_t . k_s (the query of the attending position against the keys of the others),
    not k_t . q_s: with one-hot inputs, query = 4 * [I | 0] and key = a shift (the key of position s
    is e_{s+1}), position t's query matches the key of position t - 1, so every position t >= 1
    gives its largest weight to the previous position (k q^T would look at the future, masked)."""
    with owned_by(sub, SHORT_OWNER, ROWS_OWNER, VALUES_OWNER):
        head = _head(sub)
        state = head.state_dict()
        for name in ("key", "query", "value"):
            expect(state.get(f"{name}.weight") is not None, tr("Head has no {name} layer: checked by 'structure'")
                                                             .format(name=name))
        T = 6
        eye = torch.zeros(HS, C)
        eye[:, :HS] = torch.eye(HS)
        shift = torch.zeros(HS, C)
        shift[torch.arange(1, T), torch.arange(0, T - 1)] = 1.0  # key(e_s) = e_{s+1}
        state.update({"value.weight": eye, "query.weight": 4.0 * eye, "key.weight": shift})
        head.load_state_dict(state)
        x = torch.zeros(1, T, C)
        x[0, torch.arange(T), torch.arange(T)] = 1.0
        wei = tensor(head(x), tr("Head(n_embd={C}, head_size={HS}, block_size={BLOCK}) on x of shape (1, {T}, {C})")
                               .format(C=C, HS=HS, BLOCK=BLOCK, T=T),
                     shape=(1, T, HS))[0, :, :T]
        seen = 0
        for t in range(1, T):
            if float(wei[t, t - 1]) == 0.0:
                continue  # the mask hides the previous position: the mask checks report that (one failure per cause)
            seen += 1
            expect(int(wei[t].argmax()) == t - 1,
                   tr("with queries that look for the key of the previous position, position {t} gave "
                     "its largest weight to position {argmax}, not to the previous position {previous}: "
                     "the scores must be q @ k.transpose(-2, -1) (row t: the query of position t "
                     "against every key), not k @ q^T")
                    .format(t=t, argmax=int(wei[t].argmax()), previous=t - 1))
        expect(seen > 0, tr("no position gave any weight to the previous position: the output is not a weighted average "
               "of the values (an output of zeros?). Fix 'attention rows average the past' first"))


def test_head_values_come_from_value_layer(sub):
    """The output is a weighted sum of self.value(x): it is not zero with the head's own weights, and
    with the value layer zeroed (key and query kept) it is exactly zero."""
    with owned_by(sub, SHORT_OWNER, ROWS_OWNER):
        head = _head(sub)
        state = head.state_dict()
        w = state.get("value.weight")
        expect(w is not None, tr("Head has no value layer (expected self.value = nn.Linear(n_embd, head_size, bias=False))"))
        x = torch.randn(2, 5, C, generator=torch.Generator().manual_seed(8))
        before = tensor(head(x), tr("Head(n_embd={C}, head_size={HS}, block_size={BLOCK}) on x of shape (2, 5, {C})")
                                  .format(C=C, HS=HS, BLOCK=BLOCK),
                        shape=(2, 5, HS))
        # zero output whatever the value layer holds would pass the check below: it must depend on the input first
        expect(before.abs().max() > 0, tr("the output is zero for a random input with random weights: it must be the "
               "attention weights times the values, which the value layer computes from x"))
        state = head.state_dict()
        state["value.weight"] = torch.zeros_like(w)
        head.load_state_dict(state)
        out = tensor(head(x), tr("Head(n_embd={C}, head_size={HS}, block_size={BLOCK}) on x of shape (2, 5, {C})")
                               .format(C=C, HS=HS, BLOCK=BLOCK), shape=(2, 5, HS))
        expect(out.abs().max() == 0, tr("with self.value's weights set to zero the output is not zero: the output must be "
               "the attention weights times the values, which come from self.value applied to x (are they computed with "
               "another layer, e.g. self.key?)"))


def test_head_dropout_only_in_train_mode(sub):
    """With dropout 0.5: eval mode is deterministic and equals dropout 0; train mode drops weights."""
    with owned_by(sub, SHORT_OWNER, ROWS_OWNER):
        x = torch.randn(2, BLOCK, C, generator=torch.Generator().manual_seed(4))
        plain = tensor(_head(sub, dropout=0.0, seed=5)(x), "Head.forward", shape=(2, BLOCK, HS))
        head = _head(sub, dropout=0.5, seed=5)
        a = head.call(None, x, _seed=1)
        b = head.call(None, x, _seed=2)
        expect(torch.equal(a, b) and torch.allclose(a, plain, atol=1e-6),
               tr("in eval mode the output changed between calls or differs from dropout=0: use self.dropout = "
               "nn.Dropout(dropout) (it is off in eval mode), not F.dropout(..., training=True)"))
        head.train()
        c = head.call(None, x, _seed=1)
        expect(not torch.allclose(c, plain, atol=1e-6), tr("in train mode with dropout 0.5 the output equals the "
               "no-dropout output: apply self.dropout to the attention weights"))


def test_head_mask_moves_with_the_module(sub):
    """A tensor the Head keeps (the causal mask) is a registered buffer, not a plain attribute (or it is
    made in forward on x's device): model.to(device) moves buffers, never plain tensor attributes."""
    plain = sorted(k for k, kind in _head(sub).attrs().items() if kind in ("Tensor", "Parameter"))
    if plain:
        fail(tr("Head keeps self.{name} as a plain tensor attribute: model.to(device) does not move it, so on a "
                "GPU it stays on the CPU and forward fails; register it with the module as a buffer")
             .format(name=plain[0]))
