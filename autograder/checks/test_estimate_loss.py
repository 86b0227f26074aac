"""Part estimate_loss: mean loss over eval_iters batches per split, in eval mode, without autograd.

Run on the grader's model, whose loss for each batch is known, so the expected means are exact.
The mode and autograd state of each forward come back inside the losses themselves (offsets the
grader's model adds, ``objects.TRAIN_MODE_OFFSET`` / ``GRAD_OFFSET``), so every verdict here is
computed in the grading process from the result alone: nothing recorded in the submission's
process is read, and nothing there can be forged to pass.
"""

from autograder.checks.verdicts import expect, fail, need, number
from autograder.checks.standins import GRAD_OFFSET, TRAIN_MODE_OFFSET

VALUES = {"train": [100, 250, 700, 50], "val": [400, 120, 90, 999]}  # loss of batch k = value / 100
ITERS = 3
# |got - want| tolerance: the losses are float64 in the model, but a loop may store them in a
# float32 tensor (torch.zeros(eval_iters)); with offsets up to 5000 float32 keeps 5e-4, and the
# offsets' means are 333 apart, so 0.01 tells them apart and still catches any wrong batch
# (the batches' values differ by at least 0.3).
DECODE_TOL = 0.01


def _run(sub):
    need(sub, "estimate_loss", "function")
    model = sub.make("EvalModel").train()
    batches = sub.make("EvalBatches", VALUES)
    out = sub.call("estimate_loss", model, batches, ITERS)
    expect(isinstance(out, dict), f"estimate_loss should return a dict, got {type(out).__name__}")
    expect(set(out) >= {"train", "val"}, f"expected keys 'train' and 'val', got {sorted(out)}")
    return model, out


def _decode(got: float, want: float):
    """(forwards in train mode, forwards with autograd) if got = want + their offsets' mean."""
    for grad in range(ITERS + 1):
        for train in range(ITERS + 1):
            offset = (train * TRAIN_MODE_OFFSET + grad * GRAD_OFFSET) / ITERS
            tol = 1e-5 * want if train == grad == 0 else DECODE_TOL  # rel. 1e-5 without offsets
            if abs(got - want - offset) <= tol:
                return train, grad
    return None


def _splits(out):
    for split in sorted(VALUES, reverse=True):
        want = sum(VALUES[split][:ITERS]) / 100 / ITERS
        got = number(out[split], f"estimate_loss(...)['{split}']")
        yield split, want, got, _decode(got, want)


def test_estimate_loss_means_per_split(sub):
    """{'train': mean of eval_iters train losses, 'val': likewise} (rel. 1e-5: float32 losses)."""
    _, out = _run(sub)
    for split, want, got, decoded in _splits(out):
        if decoded is None:
            fail(f"estimate_loss(...)['{split}']: expected {want:.6g} (the mean loss of eval_iters={ITERS} batches "
                 f"of get_batch_fn('{split}')), got {got:.6g}. Hint: call get_batch_fn(split) once per iteration, "
                 "average the losses of that split only")


def test_estimate_loss_eval_mode_without_grad(sub):
    """Every forward runs in eval mode (dropout off) with autograd off (torch.no_grad)."""
    _, out = _run(sub)
    decoded_all = [d for _, _, _, d in _splits(out) if d is not None]
    in_train = [train for train, _ in decoded_all]
    if any(in_train) and not all(t == ITERS for t in in_train):
        # some batches in eval mode, later ones in train mode: model.train() comes too early
        fail("only the first batches were evaluated in eval mode, later ones in train mode: model.train() is "
             "called before the evaluation ends (inside a loop?); call model.eval() once before the loops and "
             "model.train() once after both splits")
    for split, want, got, decoded in _splits(out):
        if decoded is None:  # the means check reports a wrong mean; the mode cannot be read from it
            continue
        train, grad = decoded
        expect(train == 0, "the model was in train mode during evaluation: call model.eval() before the loop")
        expect(grad == 0, "autograd was recording during evaluation: keep @torch.no_grad() "
               "(or use with torch.no_grad():)")


def test_estimate_loss_restores_train_mode(sub):
    """The model is back in train mode afterwards."""
    model, _ = _run(sub)
    expect(model.get("training") is True, "after estimate_loss the model is still in eval mode: call model.train() at the end")
