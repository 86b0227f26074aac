"""Hidden checks of part multihead: MultiHeadAttention with the reference's weights (and the grader's stand-in heads) gives the reference's output.

Never in the student handout and never visible to the worker (see ``autograder/checks/hidden/__init__.py``);
each compares the submission with the reference solution, running in the grading process.
"""

import torch

from autograder.checks.verdicts import close, tensor, transplant


def test_multihead_matches_reference(sub, ref):
    """Same weights, same input as the reference's MultiHeadAttention (atol 1e-5), with the
    grader's stand-in heads on both sides (so a wrong Head costs nothing here); a forward that
    reads its heads' internals is compared with its own heads against the composition of those
    heads' outputs through the reference's proj."""
    from autograder.checks.test_multihead import C, HS, NH, BLOCK, STAND_IN, run_forward

    x = torch.randn(2, 6, C, generator=torch.Generator().manual_seed(1))
    mha, got, state, parts = run_forward(sub, x)
    if any(k.startswith("heads.0.lin.") for k in state):
        r = ref.new("MultiHeadAttention", C, NH, HS, BLOCK, 0.0, _stubs=STAND_IN).eval()
        transplant(mha, r, "MultiHeadAttention")
        close(tensor(got, "MultiHeadAttention.forward", shape=(2, 6, C)), r(x), "MultiHeadAttention output", atol=1e-5)
        return
    r = ref.new("MultiHeadAttention", C, NH, HS, BLOCK, 0.0).eval()
    transplant(mha, r, "MultiHeadAttention")
    want = r.get("proj")(torch.cat(parts, dim=-1))
    close(tensor(got, "MultiHeadAttention.forward", shape=(2, 6, C)), want, "MultiHeadAttention output", atol=1e-5)
