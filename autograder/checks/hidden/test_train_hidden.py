"""Hidden checks of part train: the loop's parameters and losses equal a correct loop's, replayed in the grading process.

Never in the student handout and never visible to the worker (see ``autograder/checks/hidden/__init__.py``);
each compares the submission with the reference solution, running in the grading process.
"""

import torch

from autograder.checks.verdicts import close, expect
from autograder.i18n import tr


def test_train_matches_a_correct_loop(sub, ref):
    """Over 9 steps (not the visible checks' 6): the parameters, read through nn.Module's own tables,
    and the returned losses equal a correct loop's on the same batches (atol 1e-5)."""
    from autograder.checks.test_train import replay, run

    iters = 9
    model, _, losses = run(sub, iters)
    expected, want = replay(iters=iters)
    state = model.state_dict()
    for name, value in expected.items():
        expect(name in state, tr("the model lost its parameter {name}").format(name=name))
        close(state[name], value, tr("parameter {name} after {ITERS} steps").format(name=name, ITERS=iters), atol=1e-5)
    got = torch.tensor([float(v) for v in losses], dtype=torch.float64) if isinstance(losses, list) else None
    expect(got is not None and len(got) == iters, tr("train should return one loss per step"))
    close(got, torch.tensor(want, dtype=torch.float64), tr("returned losses"), atol=1e-5)
