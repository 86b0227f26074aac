"""Part estimate_loss: mean loss over eval_iters batches per split, in eval mode, without autograd.

Run on the grader's model, whose loss for each batch is known, so the expected means are exact.
"""

from autograder.checking import expect, fail, need, number

PART = "estimate_loss"
VALUES = {"train": [100, 250, 700, 50], "val": [400, 120, 90, 999]}  # loss of batch k = value / 100
ITERS = 3


def _run(sub):
    need(sub, "estimate_loss", "function")
    model = sub.make("EvalModel").train()
    batches = sub.make("EvalBatches", VALUES)
    out = sub.call("estimate_loss", model, batches, ITERS)
    return model, batches, out


def test_estimate_loss_means_per_split(sub):
    """{'train': mean of eval_iters train losses, 'val': likewise} (rel. 1e-5: float32 losses)."""
    _, batches, out = _run(sub)
    expect(isinstance(out, dict), f"estimate_loss should return a dict, got {type(out).__name__}")
    expect(set(out) >= {"train", "val"}, f"expected keys 'train' and 'val', got {sorted(out)}")
    for split in sorted(VALUES, reverse=True):
        want = sum(VALUES[split][:ITERS]) / 100 / ITERS
        got = number(out[split], f"estimate_loss(...)['{split}']")
        if abs(got - want) > 1e-5 * want:
            calls = batches.get("calls")
            n = sum(1 for c in calls if c == split) if isinstance(calls, list) else "?"
            fail(f"estimate_loss(...)['{split}']: expected {want:.6g} (the mean over eval_iters={ITERS} batches), "
                 f"got {got:.6g}; get_batch_fn('{split}') was called {n} times")


def test_estimate_loss_eval_mode_without_grad(sub):
    """Every forward runs in eval mode (dropout off) with autograd off (torch.no_grad)."""
    model, _, _ = _run(sub)
    log = model.get("log")
    expect(isinstance(log, list) and log, "estimate_loss never called the model")
    expect(all(not training for training, _ in log), "the model was in train mode during evaluation: call model.eval() first")
    expect(all(not grad for _, grad in log), "autograd was recording during evaluation: keep @torch.no_grad() "
           "(or use with torch.no_grad():)")


def test_estimate_loss_restores_train_mode(sub):
    """The model is back in train mode afterwards."""
    model, _, _ = _run(sub)
    expect(model.get("training") is True, "after estimate_loss the model is still in eval mode: call model.train() at the end")
