"""Hidden checks of part feedforward: FeedForward with the reference's weights gives the reference's output.

Never in the student handout and never visible to the worker (see ``autograder/checks/hidden/__init__.py``);
each compares the submission with the reference solution, running in the grading process.
"""

import torch

from autograder.checks.verdicts import close, expect, need, tensor
from autograder.i18n import tr


def test_feedforward_matches_reference(sub, ref):
    """The reference's weights written into the student's two Linear layers (found by shape, any
    names): the same output as the reference (atol 1e-5)."""
    from autograder.checks.test_feedforward import C, layer_names

    need(sub, "FeedForward")
    f = sub.new("FeedForward", C, 0.0, _seed=23).eval()
    r = ref.new("FeedForward", C, 0.0).eval()
    names, theirs = layer_names(f.state_dict()), r.state_dict()
    expect(names is not None, tr("not measured: FeedForward's layers are not two Linear layers of the expected "
                                 "sizes; the check 'layers' reports the cause (fix it first)"))
    f.load_state_dict({n: theirs[m] for n, m in zip(names, layer_names(theirs))})
    x = torch.randn(2, 5, C, generator=torch.Generator().manual_seed(2))
    close(tensor(f(x), "FeedForward.forward", shape=(2, 5, C)), r(x), tr("FeedForward output"), atol=1e-5)
