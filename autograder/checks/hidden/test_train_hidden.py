"""Hidden checks of part train: the loop's parameters and losses equal a correct loop's, replayed in the grading process.

Never in the student handout and never visible to the worker (see ``autograder/checks/hidden/__init__.py``);
each compares the submission with the reference solution, running in the grading process.
"""

import torch

from autograder.checks.verdicts import close, expect


def _replay_training(stream, iters: int):
    """A correct loop over the grader's objects, in the grading process: (final state, losses)."""
    from autograder.checks.standins import RecordingSGD, TinyLM
    from autograder.checks.test_train import LR, SEED, V

    model = TinyLM(V, SEED)
    opt = RecordingSGD(model, LR, events=[])
    losses = []
    for _ in range(iters):
        x, y = stream("train")
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return {k: v.detach().clone() for k, v in model.state_dict().items()}, losses


def test_train_matches_a_correct_loop(sub, ref):
    """The parameters after max_iters steps and the returned losses equal a correct loop's on the
    same batches (atol 1e-5: float32 SGD over 6 steps)."""
    from autograder.checks.standins import BatchStream
    from autograder.checks.test_train import ITERS, STREAM, diagnose, run

    model, _, losses = run(sub)
    expected, want = _replay_training(BatchStream(*STREAM), ITERS)
    hint = diagnose(model.get("events"))
    state = model.state_dict()
    for name, value in expected.items():
        close(state[name], value, f"parameter {name} after {ITERS} steps", atol=1e-5, hint=hint)
    got = torch.tensor([float(v) for v in losses], dtype=torch.float64) if isinstance(losses, list) else None
    expect(got is not None and len(got) == ITERS, "train should return one loss per step")
    close(got, torch.tensor(want, dtype=torch.float64), "returned losses", atol=1e-5)
