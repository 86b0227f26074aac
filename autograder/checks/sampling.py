"""Checks shared by ``GPTLanguageModel.generate`` and ``BigramLanguageModel.generate``.

The model under ``generate`` is the grader's oracle (``objects.oracle_model``): a subclass of the
submission's class whose forward gives the logits of a known Markov chain, so sampling is tested
statistically against known probabilities, never by matching the reference's tokens.
"""

from __future__ import annotations

import torch

from autograder.checks.verdicts import expect, fail, tensor
from autograder.checks.standins import markov_table
from autograder.engine.wire import Global
from autograder.i18n import tr

VOCAB = 6
SEED = 7


# The submission's own class is built with these arguments (its own __init__, the grader's
# stand-in blocks), then its forward is replaced by the oracle's: generate then finds every
# attribute a correct model may read (self.block_size, a config, the position table's size).
N_EMBD, N_HEAD, N_LAYER = 8, 2, 1
STAND_INS = {"DecoderBlock": "ProbeBlock"}


def init_args(cls: str, block_size: int) -> list:
    if cls == "BigramLanguageModel":
        return [VOCAB]
    return [VOCAB, N_EMBD, N_HEAD, N_LAYER, block_size, 0.0]


def oracle(sub, cls: str, block_size: int, mode: str = "markov"):
    model = sub.make("oracle_model", Global(cls), VOCAB, block_size, SEED, init_args=init_args(cls, block_size),
                     stand_ins=STAND_INS, mode=mode)
    model.what = cls  # the student's generate, on the grader's model: messages read "GPTLanguageModel.generate(idx=...)"
    return model


def prompt(batch: int, length: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(VOCAB, (batch, length), generator=g)


def generate(sub, cls, block_size, idx, new, seed=0, mode="markov"):
    model = oracle(sub, cls, block_size, mode)
    out = model.call("generate", idx, new, _seed=seed, _values={"block_size": block_size})
    B, T = idx.shape
    out = tensor(out, tr("{cls}.generate(idx of shape {shape}, max_new_tokens={new})")
                       .format(cls=cls, shape=tuple(idx.shape), new=new),
                 shape=(B, T + new), dtype=torch.int64)
    expect(bool(((out >= 0) & (out < VOCAB)).all()), tr("generate produced token ids outside 0..{last}")
                                                      .format(last=VOCAB - 1))
    return model, out


def check_keeps_prompt(sub, cls, block_size):
    idx = prompt(3, 2, seed=1)
    _, out = generate(sub, cls, block_size, idx, 5)
    expect(torch.equal(out[:, :2], idx), tr("the first T columns of generate's output should be the prompt {prompt}, got "
                                           "{got}. Hint: append the new tokens (torch.cat on dim 1)")
                                          .format(prompt=idx.tolist(), got=out[:, :2].tolist()))


def transition_p_value(out: torch.Tensor, start: int) -> tuple[float, str]:
    """Pearson chi-square over every generated token, given the token before it."""
    log_p = markov_table(VOCAB, SEED)
    probs = log_p.exp().double()
    prev, nxt = out[:, start - 1 : -1].reshape(-1), out[:, start:].reshape(-1)
    counts = torch.zeros(VOCAB, VOCAB, dtype=torch.float64)
    counts.index_put_((prev, nxt), torch.ones(len(prev), dtype=torch.float64), accumulate=True)
    stat, dof, worst = 0.0, 0, (0.0, 0)
    for a in range(VOCAB):
        n = counts[a].sum()
        if n == 0:
            continue
        expected = probs[a] * n
        row = float(((counts[a] - expected) ** 2 / expected).sum())
        stat += row
        dof += VOCAB - 1
        worst = max(worst, (row, a))
    p = float(torch.special.gammaincc(torch.tensor(dof / 2.0, dtype=torch.float64), torch.tensor(stat / 2.0)))
    a = worst[1]
    detail = (tr("after token {token} the sampled frequencies were {sampled}, the softmax of the logits gives {softmax}")
              .format(token=a, sampled=[round(float(c), 2) for c in counts[a] / counts[a].sum()],
                      softmax=[round(float(q), 2) for q in probs[a]]))
    return p, detail


def check_distribution(sub, cls, block_size):
    """Tokens follow softmax(logits of the last position): chi-square, p < 1e-6 fails (a correct
    sampler fails with probability below one in a million; the seed is fixed, so the grade is too)."""
    idx = prompt(300, 3, seed=2)
    _, out = generate(sub, cls, block_size, idx, 6, seed=3)
    p, detail = transition_p_value(out, 3)
    if p < 1e-6:
        fail(tr("the generated tokens do not follow softmax(logits[:, -1, :]) (chi-square p = "
               "{p:.2g}): {detail}. Hint: take the logits of the LAST position, apply softmax "
               "over the vocabulary (dim=-1), then sample with torch.multinomial; argmax or raw "
               "logits give the wrong distribution")
              .format(p=p, detail=detail))


def check_distribution_one_row(sub, cls, block_size):
    """The same with a batch of ONE row and a long run (longer than block_size): 600 tokens, so
    a generate that is greedy (or otherwise special) for B == 1 fails; p < 1e-6 as above."""
    idx = prompt(1, 1, seed=6)
    _, out = generate(sub, cls, block_size, idx, 600, seed=8)
    p, detail = transition_p_value(out, 1)
    if p < 1e-6:
        fail(tr("with a batch of one row the generated tokens do not follow softmax(logits[:, "
               "-1, :]) (chi-square p = {p:.2g}): {detail}. Hint: sample with torch.multinomial "
               "for every batch size")
              .format(p=p, detail=detail))


def check_crop(sub, cls, block_size, length, new):
    """Every step feeds exactly the last block_size tokens: the grader's model predicts (with
    certainty) a token that hashes the whole context it is fed, so the output alone shows which
    context each step fed; recomputed here, in the grading process."""
    from autograder.checks.standins import window_next

    idx = prompt(2, length, seed=5)
    _, out = generate(sub, cls, block_size, idx, new, mode="window")
    for step in range(new):
        end = length + step
        context = out[:, max(0, end - block_size):end]
        want = window_next(context, VOCAB)
        if not torch.equal(out[:, end], want):
            fail(tr("with a prompt of {length} tokens and block_size={block_size}, new token {step} "
                   "is not the one that the last block_size tokens {context} predict: each step must "
                   "feed the model only the last block_size tokens of the sequence so far (the position table "
                   "has block_size rows) and sample from the logits of the last position")
                  .format(length=length, block_size=block_size, step=step, context=context.tolist()))


def check_rng(sub, cls, block_size):
    idx = prompt(4, 2, seed=4)
    _, a = generate(sub, cls, block_size, idx, 8, seed=11)
    _, b = generate(sub, cls, block_size, idx, 8, seed=11)
    _, c = generate(sub, cls, block_size, idx, 8, seed=12)
    expect(torch.equal(a, b), tr("two generate calls after the same torch.manual_seed gave different tokens: "
           "sample with torch's global RNG (torch.multinomial)"))
    expect(not torch.equal(a, c), tr("generate gave the same tokens for two different seeds: it does not sample "
           "(argmax is greedy decoding, not sampling)"))


def check_single_token_prompt(sub, cls, block_size):
    idx = torch.zeros(2, 1, dtype=torch.long)
    _, out = generate(sub, cls, block_size, idx, 4)
    expect(torch.equal(out[:, :1], idx), tr("generate from a one-token prompt changed the prompt"))
