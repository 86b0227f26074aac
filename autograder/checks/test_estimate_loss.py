"""Part estimate_loss: mean loss over eval_iters batches per split, in eval mode, without autograd.

Run on the grader's model, whose loss for each batch is known, so the expected means are exact.
The mode and autograd state of each forward come back inside the losses themselves (offsets the
grader's model adds, drawn afresh in the grading process for every run, so no constant of the
grader's code says what to subtract), so every verdict here is computed in the grading process
from the result alone: nothing recorded in the submission's process is read.
"""

import random


from autograder.checks.verdicts import expect, fail, fails, need, number, owned_by
from autograder.i18n import N_, tr

VALUES = {"train": [100, 250, 700, 50], "val": [400, 120, 90, 999]}  # loss of batch k = value / 100
ITERS = 3
# |got - want| tolerance: the losses are float64 in the model, but a loop may store them in a
# float32 tensor (torch.zeros(eval_iters)); with offsets below 6500 float32 keeps 1e-3, and the
# offsets' means are more than 160 apart (grad > 3 * train + 500), so 0.01 tells them apart and
# still catches any wrong batch (the batches' values differ by at least 0.3).
DECODE_TOL = 0.01


def _offsets() -> tuple[float, float]:
    """(train-mode offset, autograd offset), drawn for this run: t * train + g * grad (t, g <= 3)
    are at least 500 apart, and never a constant a submission could read in the grader's code."""
    draw = random.SystemRandom()
    return round(draw.uniform(1000, 1500), 3), round(draw.uniform(5000, 6000), 3)


def _run(sub):
    need(sub, "estimate_loss", "function")
    offsets = _offsets()
    model = sub.make("EvalModel", *offsets).train()
    batches = sub.make("EvalBatches", VALUES)
    out = sub.call("estimate_loss", model, batches, ITERS)
    expect(isinstance(out, dict), tr("estimate_loss should return a dict, got {got}")
                                   .format(got=type(out).__name__))
    expect(set(out) >= {"train", "val"}, tr("expected keys 'train' and 'val', got {got}").format(got=sorted(out)))
    return model, out, offsets


def _decode(got: float, want: float, offsets):
    """(forwards in train mode, forwards with autograd) if got = want + their offsets' mean."""
    for grad in range(ITERS + 1):
        for train in range(ITERS + 1):
            offset = (train * offsets[0] + grad * offsets[1]) / ITERS
            tol = 1e-5 * want if train == grad == 0 else DECODE_TOL  # rel. 1e-5 without offsets
            if abs(got - want - offset) <= tol:
                return train, grad
    return None


def _splits(out, offsets):
    for split in sorted(VALUES, reverse=True):
        want = sum(VALUES[split][:ITERS]) / 100 / ITERS
        got = number(out[split], f"estimate_loss(...)['{split}']")
        yield split, want, got, _decode(got, want, offsets)


def test_estimate_loss_means_per_split(sub):
    """{'train': mean of eval_iters train losses, 'val': likewise} (rel. 1e-5: float32 losses)."""
    _, out, offsets = _run(sub)
    for split, want, got, decoded in _splits(out, offsets):
        if decoded is None:
            fail(tr("estimate_loss(...)['{split}']: expected {expected:.6g} (the mean loss of "
                   "eval_iters={ITERS} batches of get_batch_fn('{split}')), got {got:.6g}. Hint: "
                   "call get_batch_fn(split) once per iteration, average the losses of that split "
                   "only")
                  .format(split=split, expected=want, ITERS=ITERS, got=got))


_MEANS = ("means per split", fails(test_estimate_loss_means_per_split, N_("a split's result is off")))


def test_estimate_loss_eval_mode_without_grad(sub):
    """Every forward runs in eval mode (dropout off) with autograd off (torch.no_grad); read from
    the means, so a wrong mean leaves it unmeasured (charged once, by 'means per split')."""
    _, out, offsets = _run(sub)
    decoded_all = [d for _, _, _, d in _splits(out, offsets)]
    with owned_by(sub, _MEANS):
        expect(all(d is not None for d in decoded_all), tr("a split's result is off"))
    in_train = [train for train, _ in decoded_all]
    if any(in_train) and not all(t == ITERS for t in in_train):
        # some batches in eval mode, later ones in train mode: model.train() comes too early
        fail(tr("only the first batches were evaluated in eval mode, later ones in train mode: the model goes back "
             "to train mode before the evaluation of both splits ends (inside a loop?)"))
    for train, grad in decoded_all:
        expect(train == 0, tr("the model was in train mode during evaluation: dropout was active while the losses were measured; "
                              "the model must be in evaluation mode for the whole evaluation"))
        expect(grad == 0, tr("autograd was recording during evaluation: the losses were computed with gradients on, "
               "which estimate_loss never needs (look at how the function is decorated or wrapped)"))


def test_estimate_loss_restores_train_mode(sub):
    """The model is back in train mode afterwards."""
    model, _, _ = _run(sub)
    expect(model.training() is True, tr("after estimate_loss the model is still in eval mode: it must be back in train mode when "
                                             "estimate_loss returns"))


def test_estimate_loss_returns_floats(sub):
    """Each mean is a Python float, not a tensor (a 0-d tensor prints as tensor(...) and keeps its
    device's memory)."""
    _, out, _ = _run(sub)
    kinds = sorted({type(out[s]).__name__ for s in ("train", "val") if type(out[s]) is not float})
    expect(not kinds, tr("estimate_loss returned means of type {kinds}, not Python floats: turn each mean into a "
                         "Python number").format(kinds=", ".join(kinds)))
