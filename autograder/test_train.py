"""Part train: the optimisation loop.

Run on the grader's tiny model, batches and SGD; the grading process replays a correct loop
with the same objects and compares the losses and the final parameters.
"""

import torch

from autograder.checking import close, expect, fail, need, number
from autograder.objects import BatchStream, replay_training

PART = "train"
V, SEED, LR, ITERS = 7, 3, 0.5, 6
STREAM = (V, 4, 5, 11)  # vocab, batch, block, seed


def _run(sub):
    need(sub, "train", "function")
    model = sub.make("TinyLM", V, SEED)
    opt = sub.make("RecordingSGD", model, LR)
    stream = sub.make("BatchStream", *STREAM)
    losses = sub.call("train", model, opt, stream, ITERS)
    return model, stream, losses


def _diagnose(events) -> str:
    if not isinstance(events, list):
        return ""
    if "backward" not in events:
        return "loss.backward() is never called"
    if "step" not in events:
        return "optimizer.step() is never called"
    if "zero_grad" not in events:
        return "gradients are never reset (optimizer.zero_grad()), so they add up across steps"
    first_step, first_backward = events.index("step"), events.index("backward")
    if first_step < first_backward:
        return "optimizer.step() runs before loss.backward() in a step"
    return ""


def test_train_updates_parameters(sub):
    """After max_iters steps the parameters equal those of a correct loop (zero_grad, forward,
    backward, step) on the same batches (atol 1e-5: float32 SGD over 6 steps)."""
    model, _, _ = _run(sub)
    expected, _ = replay_training(V, SEED, BatchStream(*STREAM), LR, ITERS)
    state = model.state_dict()
    hint = _diagnose(model.get("events"))
    for name, want in expected.items():
        close(state[name], want, f"parameter {name} after {ITERS} steps", atol=1e-5,
              hint=hint or "each step: optimizer.zero_grad(); logits, loss = model(x, y); loss.backward(); optimizer.step()")


def test_train_returns_step_losses(sub):
    """A list of max_iters floats: the training loss of each step, in order (atol 1e-5)."""
    _, _, losses = _run(sub)
    _, want = replay_training(V, SEED, BatchStream(*STREAM), LR, ITERS)
    expect(isinstance(losses, list), f"train should return a list of losses, got {type(losses).__name__}")
    expect(len(losses) == ITERS, f"expected {ITERS} losses (one per step), got {len(losses)}")
    got = torch.tensor([number(v, f"loss {i}") for i, v in enumerate(losses)], dtype=torch.float64)
    close(got, torch.tensor(want, dtype=torch.float64), "returned losses", atol=1e-5,
          hint="append loss.item() of each step's forward pass")


def test_train_draws_train_batches(sub):
    """One get_batch_fn('train') per step, and never the validation split."""
    _, stream, _ = _run(sub)
    calls = stream.get("calls")
    expect(isinstance(calls, list), "could not read the batch calls")
    expect(all(c == "train" for c in calls), "train drew validation batches: use get_batch_fn('train')")
    expect(len(calls) == ITERS, f"expected {ITERS} calls of get_batch_fn('train') (one per step), got {len(calls)}")
