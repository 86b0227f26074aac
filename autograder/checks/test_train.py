"""Part train: the optimisation loop.

Run on the grader's tiny model, batches and SGD, which record what the loop does with them. The
hidden check replays a correct loop in the grading process and compares the parameters.
"""

import torch

from autograder.checks.verdicts import expect, fail, need, number, owned_by
from autograder.engine.submission import SubmissionFailure
from autograder.i18n import tr

V, SEED, LR, ITERS = 7, 3, 0.5, 6
STREAM = (V, 4, 5, 11)  # vocab, batch, block, seed


def run(sub, iters=ITERS):
    need(sub, "train", "function")
    model = sub.make("TinyLM", V, SEED)
    opt = sub.make("RecordingSGD", model, LR)
    stream = sub.make("BatchStream", *STREAM)
    losses = sub.call("train", model, opt, stream, iters)
    return model, stream, losses


def diagnose(events) -> str:
    """What is wrong with the order of a training loop's calls, or "" when nothing is."""
    if not isinstance(events, list):
        return tr("could not read what the loop did")
    events = [e for e in events if e in ("forward", "backward", "step", "zero_grad")]
    if events.count("backward") == 0:
        return tr("loss.backward() is never called")
    if events.count("step") == 0:
        return tr("optimizer.step() is never called")
    if events.count("backward") != ITERS or events.count("step") != ITERS:
        return (tr("expected one backward and one optimizer step per iteration ({iterations}), got {backwards} "
                   "and {steps}").format(iterations=ITERS, backwards=events.count("backward"), steps=events.count("step")))
    since_step, stepped, backwards = [], False, 0
    for e in events:
        if e == "backward":
            if stepped and "zero_grad" not in since_step:
                return tr("gradients are not reset between steps (optimizer.zero_grad()), so they add up")
            backwards += 1
            since_step, stepped = [], False
        elif e == "step":
            if backwards == 0 or stepped:
                return tr("optimizer.step() runs before loss.backward() in an iteration")
            if "zero_grad" in since_step:
                return tr("the gradients are reset between loss.backward() and optimizer.step(), so the step does nothing")
            stepped, since_step = True, []
        else:
            since_step.append(e)
    return ""


def _raises(sub) -> str:
    try:
        run(sub)
    except SubmissionFailure as exc:
        return "" if exc.not_implemented else tr("train raised an error")
    return ""


def _out_of_order(sub) -> str:
    model, _, _ = run(sub)
    return tr("the calls of a training step are missing or out of order") if diagnose(model.get("events")) else ""


# 'step order' reports an error raised by train and a step's calls out of order; the other checks
# say "not measured" then (one failure per cause)
STEP_ORDER = (("step order", _raises), ("step order", _out_of_order))


def test_train_step_order(sub):
    """Each iteration: forward, backward, step, with the gradients reset between one step and the
    next backward (before the forward or after the step: both are right)."""
    model, _, _ = run(sub)
    problem = diagnose(model.get("events"))
    expect(not problem, problem + tr(". Each step: optimizer.zero_grad(); logits, loss = model(x, y); "
           "loss.backward(); optimizer.step()"))


def test_train_returns_step_losses(sub):
    """A list of max_iters floats: the loss of each step's forward pass, in order (atol 1e-6)."""
    with owned_by(sub, STEP_ORDER[0]):
        model, _, losses = run(sub)
        expect(isinstance(losses, list), tr("train should return a list of losses, got {got}")
                                          .format(got=type(losses).__name__))
        expect(len(losses) == ITERS, tr("expected {expected} losses (one per step), got {got}")
                                      .format(expected=ITERS, got=len(losses)))
        seen = model.get("losses")
        got = [number(v, f"loss {i}") for i, v in enumerate(losses)]
        if isinstance(seen, list) and len(seen) == ITERS:
            for i, (g, s) in enumerate(zip(got, seen)):
                if abs(g - s) > 1e-6:
                    fail(tr("loss {i}: the model computed {s:.6g} in that step but train returned {g:.6g}. "
                           "Hint: append loss.item() of each step's forward pass")
                          .format(i=i, s=s, g=g))


def test_train_draws_train_batches(sub):
    """One get_batch_fn('train') per step, and never the validation split."""
    with owned_by(sub, STEP_ORDER[0]):
        _, stream, _ = run(sub)
        calls = stream.get("calls")
        expect(isinstance(calls, list), tr("could not read the batch calls"))
        expect(all(c == "train" for c in calls), tr("train drew validation batches: use get_batch_fn('train')"))
        expect(len(calls) == ITERS, tr("expected {expected} calls of get_batch_fn('train') (one per step), got {got}")
                                     .format(expected=ITERS, got=len(calls)))


def test_train_changes_parameters(sub):
    with owned_by(sub, *STEP_ORDER):
        model, _, _ = run(sub)
        before = sub.make("TinyLM", V, SEED).state_dict()
        after = model.state_dict()
        expect(any(not torch.equal(before[k], after[k]) for k in before), tr("the parameters did not change: "
               "call loss.backward() and optimizer.step() in every iteration"))
