"""Part bigram (bonus): ``BigramLanguageModel`` forward (logits are rows of the table) and generate."""

import torch
import torch.nn.functional as F

from autograder.checks import sampling
from autograder.checks.verdicts import close, expect, fails, need, number, owned_by, tensor
from autograder.i18n import tr

V = 11


def _model(sub):
    need(sub, "BigramLanguageModel")
    model = sub.new("BigramLanguageModel", V, _seed=3)
    state = model.state_dict()
    w = state.get("token_embedding_table.weight")
    expect(w is not None and tuple(w.shape) == (V, V),
           tr("expected token_embedding_table = nn.Embedding(vocab_size, vocab_size) with "
             "weight ({V}, {V}), got {got}")
            .format(V=V, got=None if w is None else tuple(w.shape)))
    return model, w


def test_bigram_logits_are_table_rows(sub):
    """Without targets: logits (B, T, V) are the table's rows for each token, and loss is None."""
    model, w = _model(sub)
    idx = torch.randint(V, (3, 5), generator=torch.Generator().manual_seed(0))
    out = model(idx)
    expect(isinstance(out, tuple) and len(out) == 2, tr("forward should return (logits, loss)"))
    logits, loss = out
    close(tensor(logits, "logits", shape=(3, 5, V)), w[idx], tr("bigram logits"), atol=1e-6,
          hint=tr("the logits for token i are row i of token_embedding_table"))
    expect(loss is None, tr("with targets=None the loss should be None, got {got!r}").format(got=loss))


def test_bigram_loss_is_mean_cross_entropy(sub):
    """With targets: loss = mean cross-entropy over B*T positions (atol 1e-5: float32 rounding)."""
    model, w = _model(sub)
    g = torch.Generator().manual_seed(1)
    idx, targets = torch.randint(V, (3, 5), generator=g), torch.randint(V, (3, 5), generator=g)
    logits, loss = model(idx, targets)
    expected = F.cross_entropy(w[idx].view(-1, V), targets.view(-1))
    close(torch.tensor(number(loss, "loss")), expected, tr("bigram loss"), atol=1e-5,
          hint=tr("F.cross_entropy wants (B*T, C) logits and (B*T,) targets: reshape both"))


def test_bigram_generate_keeps_prompt(sub):
    need(sub, "BigramLanguageModel")
    sampling.check_keeps_prompt(sub, "BigramLanguageModel", 10**6)


def test_bigram_generate_samples_softmax(sub):
    need(sub, "BigramLanguageModel")
    sampling.check_distribution(sub, "BigramLanguageModel", 10**6)


def test_bigram_generate_samples_one_row(sub):
    need(sub, "BigramLanguageModel")
    with owned_by(sub, ("generate samples softmax", fails(test_bigram_generate_samples_softmax,
                                                          tr("the generated tokens follow another distribution")))):
        sampling.check_distribution_one_row(sub, "BigramLanguageModel", 10**6)
