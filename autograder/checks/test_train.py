"""Part train: the optimisation loop.

Run on the grader's tiny model, batches and SGD. The verdicts come from what the loop did to the
model, read through nn.Module's own tables, and from what it returned: the grading process replays
the loop on the same batches (a correct one, and the usual wrong ones: gradients never reset,
no update at all, the validation split) and compares the parameters. What the grader's objects
record in the worker (their call lists) is never a verdict: a loop could write to them. It only
helps name the cause of a failure that the parameters already show.
"""

import torch

from autograder.checks.verdicts import expect, fail, need, number, owned_by, fails
from autograder.i18n import N_, tr, translate

V, SEED, LR, ITERS = 7, 3, 0.5, 6
STREAM = (V, 4, 5, 11)  # vocab, batch, block, seed


def run(sub, iters=ITERS):
    need(sub, "train", "function")
    model = sub.make("TinyLM", V, SEED)
    opt = sub.make("RecordingSGD", model, LR)
    stream = sub.make("BatchStream", *STREAM)
    losses = sub.call("train", model, opt, stream, iters)
    return model, stream, losses


def replay(loop: str = "correct", split: str = "train", iters: int = ITERS):
    """What the grader's objects hold after ``iters`` steps of a loop, computed in the grading process
    with plain SGD written out (p <- p - lr * g, the update RecordingSGD makes), not as a student's
    loop would be: (final parameters, step losses). ``loop``: "correct"; "accumulate" (gradients never
    reset: each step applies the sum of every gradient so far); "frozen" (no update reaches the
    parameters). The handout ships this file: it must teach nothing a student's loop could copy."""
    from autograder.checks.standins import BatchStream, TinyLM

    stream = BatchStream(*STREAM)
    model = TinyLM(V, SEED)
    params = list(model.parameters())
    summed = [torch.zeros_like(p) for p in params]
    step_losses = []
    for _ in range(iters):
        inputs, targets = stream(split)
        objective = model(inputs, targets)[1]
        grads = torch.autograd.grad(objective, params)
        step_losses.append(objective.item())
        if loop == "frozen":
            continue
        summed = [s + g for s, g in zip(summed, grads)] if loop == "accumulate" else list(grads)
        with torch.no_grad():
            for p, g in zip(params, summed):
                p.sub_(LR * g)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}, step_losses


WRONG_LOOPS = (
    (("accumulate", "train"), N_("the gradients are never reset between steps, so each step adds up all the "
                                 "earlier gradients")),
    (("frozen", "train"), N_("the parameters did not change: no gradient of the loss reached them through the "
                             "optimizer")),
    (("correct", "val"), N_("the model was trained on validation batches: the loop must draw training batches")),
)


def _same(state, expected) -> bool:
    return set(state) == set(expected) and all(
        tuple(state[k].shape) == tuple(v.shape) and torch.allclose(state[k], v, atol=1e-5)
        for k, v in expected.items())


def which_loop(state):
    """(loop, split) of the replay whose parameters the student's loop left, or None."""
    if _same(state, replay()[0]):
        return ("correct", "train")
    for key, _ in WRONG_LOOPS:
        if _same(state, replay(*key)[0]):
            return key
    return None


def diagnose(events) -> str:
    """What the grader's call record says is wrong with a loop's steps, or "" (for messages only:
    a loop can write to the record, so it never decides a verdict)."""
    if not isinstance(events, list):
        return ""
    events = [e for e in events if e in ("forward", "backward", "step", "zero_grad")]
    if events.count("backward") == 0:
        return tr("the backward pass never runs")
    if events.count("step") == 0:
        return tr("the optimizer never takes a step")
    since_step, stepped, backwards = [], False, 0
    for e in events:
        if e == "backward":
            backwards += 1
            since_step, stepped = [], False
        elif e == "step":
            if backwards == 0 or stepped:
                return tr("the optimizer's step comes before the backward pass in an iteration")
            if "zero_grad" in since_step:
                return tr("the gradients are reset between the backward pass and the step, so the step "
                          "does nothing")
            stepped, since_step = True, []
        else:
            since_step.append(e)
    return ""


def test_train_updates_parameters(sub):
    """After max_iters steps the parameters are exactly those of a correct loop on the same
    training batches (atol 1e-5: float32 SGD over 6 steps): the loop's core."""
    model, _, _ = run(sub)
    state = model.state_dict()
    key = which_loop(state)
    if key == ("correct", "train"):
        return
    why = dict(WRONG_LOOPS).get(key)
    if why is None:
        fail(tr("after {ITERS} steps the parameters differ from a correct training loop's on the same batches: "
                "each step takes one training batch, computes the loss, and updates the parameters once from "
                "that loss's gradients alone").format(ITERS=ITERS))
    hint = diagnose(model.get("events")) if key == ("frozen", "train") else ""
    fail(tr("after {ITERS} steps: {why}").format(ITERS=ITERS, why=translate(why)) + (f" ({hint})" if hint else ""))


_UPDATES = ("updates parameters", fails(test_train_updates_parameters, N_("the loop's updates are wrong")))


def test_train_returns_step_losses(sub):
    """A list of max_iters losses: the loss of each step's forward pass, in order (atol 1e-5).
    Judged against the loop the parameters show it ran (a wrong update is charged once, by
    'updates parameters')."""
    with owned_by(sub, _UPDATES):
        model, _, losses = run(sub)
        key = which_loop(model.state_dict())
        expect(key is not None, tr("the loop's updates are wrong"))
    expect(isinstance(losses, list), tr("train should return a list of losses, got {got}")
                                      .format(got=type(losses).__name__))
    expect(len(losses) == ITERS, tr("expected {expected} losses (one per step), got {got}")
                                  .format(expected=ITERS, got=len(losses)))
    got = [number(v, f"loss {i}") for i, v in enumerate(losses)]
    want = replay(*key)[1]
    for i, (g, w) in enumerate(zip(got, want)):
        if abs(g - w) > 1e-5:
            fail(tr("loss {i}: the model's loss in that step was {w:.6g} but train returned {g:.6g}: return the "
                    "loss of each step's own forward pass, in order").format(i=i, w=w, g=g))


def test_train_losses_are_floats(sub):
    """The losses are Python floats: a tensor keeps its step's whole graph alive (memory grows with
    every step) and cannot be plotted or printed as a number."""
    with owned_by(sub, _UPDATES):  # a loop that raises: 'updates parameters' reports it
        _, _, losses = run(sub)
    expect(isinstance(losses, list), tr("train should return a list of losses, got {got}")
                                      .format(got=type(losses).__name__))
    kinds = sorted({type(v).__name__ for v in losses if type(v) is not float})
    expect(not kinds, tr("train returned losses of type {kinds}, not Python floats: a tensor loss keeps the "
                         "graph of its step alive; turn each step's loss into a Python number")
                       .format(kinds=", ".join(kinds)))
