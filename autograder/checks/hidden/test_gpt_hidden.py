"""Hidden checks of part gpt: GPTLanguageModel with the reference's weights (and stand-in blocks) gives the reference's logits and loss.

Never in the student handout and never visible to the worker (see ``autograder/checks/hidden/__init__.py``);
each compares the submission with the reference solution, running in the grading process.
"""

import torch

from autograder.checks.verdicts import close, need, tensor, transplant


def test_gpt_matches_reference(sub, ref):
    """With stand-in blocks on both sides: logits and loss equal to atol 1e-5."""
    need(sub, "GPTLanguageModel")
    stubs = {"DecoderBlock": "ProbeBlock"}
    m = sub.new("GPTLanguageModel", 13, 8, 2, 2, 6, 0.0, _seed=24, _stubs=stubs).eval()
    r = ref.new("GPTLanguageModel", 13, 8, 2, 2, 6, 0.0, _stubs=stubs).eval()
    transplant(m, r, "GPTLanguageModel")
    g = torch.Generator().manual_seed(3)
    idx, targets = torch.randint(13, (2, 4), generator=g), torch.randint(13, (2, 4), generator=g)
    logits, loss = m(idx, targets)
    want_logits, want_loss = r(idx, targets)
    close(tensor(logits, "logits").reshape(want_logits.shape), want_logits, "logits", atol=1e-5)
    close(torch.tensor(float(loss)), torch.tensor(float(want_loss)), "loss", atol=1e-5)
