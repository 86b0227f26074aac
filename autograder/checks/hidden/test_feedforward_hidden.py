"""Hidden checks of part feedforward: FeedForward with the reference's weights gives the reference's output.

Never in the student handout and never visible to the worker (see ``autograder/checks/hidden/__init__.py``);
each compares the submission with the reference solution, running in the grading process.
"""

import torch

from autograder.checks.verdicts import close, need, tensor, transplant


def test_feedforward_matches_reference(sub, ref):
    need(sub, "FeedForward")
    f = sub.new("FeedForward", 8, 0.0, _seed=23).eval()
    r = ref.new("FeedForward", 8, 0.0).eval()
    transplant(f, r, "FeedForward")
    x = torch.randn(2, 5, 8, generator=torch.Generator().manual_seed(2))
    close(tensor(f(x), "FeedForward.forward", shape=(2, 5, 8)), r(x), "FeedForward output", atol=1e-5)
