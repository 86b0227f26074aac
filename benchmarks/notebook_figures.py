"""Measure the figures that the lab's text quotes, by running the reference notebook's own cells.

    python benchmarks/notebook_figures.py              # runs the notebook up to the trained model (minutes)
    python benchmarks/notebook_figures.py --no-train   # the quick figures only; keeps the stored training run

Measure the training on an otherwise idle machine: with other jobs on its cores the two torch
threads of the training cell wait for each other and the time says nothing about the lab.

Runs every code cell of solutions/gpt_lab.ipynb in order, in one namespace, up to and including
the training cell (check cells, plots and the slow experiments after it are skipped), and writes
solutions/measured.json: the machine (CPU cores, torch threads, torch version), the training
cell's wall time, the final validation loss, the bigram demo's loss at initialisation and the
bigram training's first and last logged losses. tests/test_text_figures.py compares the text with
these figures (and with the configuration cell), so a figure in the text cannot go stale.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import sys
import time
from pathlib import Path

import nbformat
import torch

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "solutions" / "gpt_lab.ipynb"
OUT = ROOT / "solutions" / "measured.json"


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-train", action="store_true", help="stop before the training cell")
    args = parser.parse_args()
    nb = nbformat.read(NOTEBOOK, as_version=4)
    ns: dict = {"__name__": "__main__"}
    stored = json.loads(OUT.read_text()) if OUT.exists() else {}
    figures: dict = {}
    os.chdir(NOTEBOOK.parent)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        src = cell.source
        if "check(" in src or "plt." in src:
            continue
        if args.no_train and "trained {max_iters} steps" in src:
            figures["training_run"] = stored.get("training_run", {})
            break
        out = io.StringIO()
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(out):
            exec(compile(src, "<cell>", "exec"), ns)  # noqa: S102 - the instructor's own reference notebook
        seconds = time.perf_counter() - t0
        text = out.getvalue()
        if "uniform guessing" in src:
            figures["bigram_init_loss"] = round(ns["loss"].item(), 4)
        if "bigram_optimizer" in src:
            logged = [float(v) for v in re.findall(r"train loss ([0-9.]+)", text)]
            figures["bigram_first_loss"], figures["bigram_last_loss"] = logged[0], logged[-1]
        if "tiny_get_batch" in src and "estimate_loss" in src and "def tiny_get_batch" in src:
            est = eval(text.strip().splitlines()[-1])  # noqa: S307 - the dict the cell printed
            figures["untrained_gpt_loss"] = round((est["train"] + est["val"]) / 2, 4)
        if "trained {max_iters} steps" in src:
            figures["training_run"] = {
                "train_seconds": round(seconds, 1), "final_val_loss": round(ns["final_val_loss"], 4),
                "cpu_cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                "load_average_1min": round(os.getloadavg()[0], 2), "source": "benchmarks/notebook_figures.py"}
            break
        print(text, end="", file=sys.stderr)
    figures["machine"] = {"cpu_cores": os.cpu_count(), "torch": torch.__version__, "device": ns.get("device", "cpu")}
    OUT.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
