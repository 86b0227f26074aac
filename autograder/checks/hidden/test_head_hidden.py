"""Hidden checks of part head: the submission's Head with the reference's weights gives the reference's output.

Never in the student handout and never visible to the worker (see ``autograder/checks/hidden/__init__.py``);
each compares the submission with the reference solution, running in the grading process.
"""

import pytest
import torch

from autograder.checks.verdicts import close, need, tensor, transplant
from autograder.i18n import tr


@pytest.mark.parametrize("T", [8, 5])
def test_head_matches_reference(sub, ref, T):
    """Same weights, same input: outputs equal to atol 1e-5 (float32 matmul and softmax rounding).
    A Head that raises on T < block_size is reported by the visible 'output shape' check only."""
    from autograder.checks.test_head import SHORT_OWNER, owned_by

    need(sub, "Head")
    with owned_by(sub, SHORT_OWNER):
        h = sub.new("Head", 16, 8, 8, 0.0, _seed=21).eval()
        r = ref.new("Head", 16, 8, 8, 0.0).eval()
        transplant(h, r, "Head")
        x = torch.randn(3, T, 16, generator=torch.Generator().manual_seed(T))
        close(tensor(h(x), "Head.forward", shape=(3, T, 8)), r(x), tr("Head output (T={T})").format(T=T), atol=1e-5)
