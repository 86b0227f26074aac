"""Validation loss against training wall time: the lab's CPU configuration vs nanoGPT's.

    python benchmarks/train_speed.py                   # both curves, the times to reach 1.88, their ratio
    python benchmarks/train_speed.py --configs cpu     # one configuration

Both configurations train the lab's own reference model (``instructor.train``, the reference
notebook's definitions) on tiny Shakespeare, so the comparison is of configurations on one code
base. nanoGPT's published CPU configuration (``--device=cpu --compile=False --eval_iters=20
--block_size=64 --batch_size=12 --n_layer=4 --n_head=4 --n_embd=128 --max_iters=2000
--lr_decay_iters=2000 --dropout=0.0``, with its defaults lr 1e-3, min_lr 1e-4, warmup 100,
beta2 0.99, weight decay 0.1) is the ``nanogpt-cpu`` preset.

Seconds are training time only (evaluation excluded, and the same estimator for both:
``estimate_loss`` over ``--eval-batches`` batches of each split, of the configuration's own shape).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from data import load_text  # noqa: E402
from instructor.train import PRESETS, load_definitions, train  # noqa: E402


def run(name: str, ns: dict, text: str, target: float, eval_batches: int, stop_at_target: bool):
    cfg = dataclasses.replace(PRESETS[name], eval_iters=eval_batches)
    reached = None
    print(f"\n== {name}: {cfg}")
    print(f"{'step':>6} {'train s':>8} {'train loss':>10} {'val loss':>9}")
    start = time.perf_counter()

    class Reached(Exception):
        pass

    def on_eval(step, seconds, tr, va):
        nonlocal reached
        print(f"{step:6d} {seconds:8.1f} {tr:10.4f} {va:9.4f}", flush=True)
        if reached is None and va <= target:
            reached = (step, seconds)
            if stop_at_target:
                raise Reached

    try:
        train(cfg, ns, text, "cpu", on_eval=on_eval, progress=False)
    except Reached:
        pass
    total = time.perf_counter() - start
    if reached:
        print(f"{name}: val <= {target} at step {reached[0]} after {reached[1]:.1f} s of training "
              f"({total:.1f} s with evaluation and start-up)")
    else:
        print(f"{name}: did not reach val {target} ({total:.1f} s)")
    return reached


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", nargs="+", default=["cpu", "nanogpt-cpu"], choices=sorted(PRESETS))
    parser.add_argument("--target", type=float, default=1.88)
    parser.add_argument("--eval-batches", type=int, default=50)
    parser.add_argument("--full", action="store_true", help="train to max_iters instead of stopping at the target")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {torch.backends.cpu.get_cpu_capability()}")
    ns = load_definitions()
    text = load_text()
    results = {name: run(name, ns, text, args.target, args.eval_batches, not args.full) for name in args.configs}
    if len(results) == 2 and all(results.values()):
        (a, ra), (b, rb) = results.items()
        print(f"\ntime to reach {args.target}: {a} {ra[1]:.1f} s, {b} {rb[1]:.1f} s; ratio {b}/{a} = {rb[1] / ra[1]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
