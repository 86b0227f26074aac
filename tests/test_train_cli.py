"""instructor.train: the command line's train and sample paths, on a tiny model and a tiny text.

No GPU here: ``--device auto`` must pick the CPU, and the lecture's GPU configuration is checked by
its size (the published 10,788,929 parameters) rather than trained."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from instructor import train as cli

REPO = Path(__file__).resolve().parent.parent
TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\nAll:\nSpeak, speak.\n" * 40


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    (folder / "text.txt").write_text(TEXT)
    out = folder / "tiny.pt"
    proc = subprocess.run(
        [sys.executable, "-m", "instructor.train", "train", "--config", "tiny", "--data", str(folder / "text.txt"),
         "--out", str(out), "--device", "auto", "--sample-tokens", "20"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "on cpu" in proc.stdout, f"expected the CPU to be picked without a GPU, got: {proc.stdout}"
    return out


def _sample(checkpoint, *args):
    return subprocess.run(
        [sys.executable, "-m", "instructor.train", "sample", "--checkpoint", str(checkpoint), "--device", "cpu", *args],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )


def test_train_cli_saves_a_loadable_checkpoint(checkpoint):
    ckpt = torch.load(checkpoint, weights_only=True)
    assert ckpt["config"]["n_embd"] == cli.PRESETS["tiny"].n_embd
    assert "".join(ckpt["chars"]) == "".join(sorted(set(TEXT)))
    assert any(k.startswith("blocks.0.") for k in ckpt["model"])


def test_train_cli_sample_continues_the_prompt(checkpoint):
    proc = _sample(checkpoint, "--prompt", "All:", "--max-new-tokens", "30", "--temperature", "0.8", "--top-k", "5")
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout.rstrip("\n")
    assert text.startswith("All:") and len(text) == len("All:") + 30, f"expected the prompt and 30 tokens, got {text!r}"


def test_train_cli_sample_prompt_longer_than_block_size(checkpoint):
    prompt = "Before we proceed any further, hear me speak."  # 45 characters, block_size 8
    proc = _sample(checkpoint, "--prompt", prompt, "--max-new-tokens", "10")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(prompt)


def test_train_cli_sample_empty_prompt_starts_from_newline(checkpoint):
    proc = _sample(checkpoint, "--prompt", "", "--max-new-tokens", "25")
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.rstrip("\n")) <= 25 and proc.stdout.strip(), f"got {proc.stdout!r}"


def test_train_cli_sample_refuses_unknown_characters(checkpoint):
    proc = _sample(checkpoint, "--prompt", "Speak €!", "--max-new-tokens", "5")
    assert proc.returncode == 2
    assert "outside the vocabulary" in proc.stderr and "€" in proc.stderr, proc.stderr


def test_train_lecture_configuration_has_the_published_size():
    ns = cli.load_definitions()
    cfg = cli.PRESETS["lecture"]
    model = ns["GPTLanguageModel"](65, cfg.n_embd, cfg.n_head, cfg.n_layer, cfg.block_size, cfg.dropout)
    assert sum(p.numel() for p in model.parameters()) == 10_788_929


def test_train_sample_top_k_one_is_greedy():
    """top_k=1 keeps only the most likely token: the same continuation for any seed."""
    ns = cli.load_definitions()
    tok = ns["CharTokenizer"](TEXT)
    torch.manual_seed(0)
    model = ns["GPTLanguageModel"](tok.vocab_size, 16, 2, 1, 8, 0.0)
    outs = set()
    for seed in range(3):
        torch.manual_seed(seed)
        outs.add(cli.sample(model, tok, "All", 12, temperature=1.0, top_k=1))
    assert len(outs) == 1


def _notebook_training_configuration() -> dict:
    """The reference notebook's training configuration: the configuration cell's assignments, and the
    optimizer's betas and the thread count of the cell that builds the model."""
    import ast

    import nbformat

    nb = nbformat.read(REPO / "solutions" / "gpt_lab.ipynb", as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code" and "training configuration" in c.source)
    values = {}
    for node in ast.parse(cell.source).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            values[node.targets[0].id] = ast.literal_eval(node.value)
    model_cell = next(c.source for c in nb.cells if c.cell_type == "code" and "torch.optim.AdamW(model.parameters()" in c.source)
    import re

    values["beta2"] = float(re.search(r"betas=\(0\.9, ([0-9.]+)\)", model_cell).group(1))
    values["threads"] = int(re.search(r"torch\.set_num_threads\((\d+)\)", model_cell).group(1))
    return values


def test_cpu_preset_is_the_notebook_configuration():
    """`--config cpu` trains what the notebook's training cells train: one configuration, tied here."""
    nb = _notebook_training_configuration()
    cfg = cli.PRESETS["cpu"]
    pairs = {"n_embd": "n_embd", "n_head": "n_head", "n_layer": "n_layer", "block_size": "block_size",
             "batch_size": "batch_size", "dropout": "dropout", "learning_rate": "lr", "min_lr": "min_lr",
             "warmup_iters": "warmup_iters", "max_iters": "max_iters", "eval_interval": "eval_interval",
             "eval_iters": "eval_iters", "seed": "seed", "beta2": "beta2", "threads": "threads"}
    assert set(nb) >= set(pairs), f"the notebook's configuration lacks {set(pairs) - set(nb)}"
    differ = {k: (nb[k], getattr(cfg, v)) for k, v in pairs.items() if nb[k] != getattr(cfg, v)}
    assert not differ, f"notebook vs PRESETS['cpu'] (instructor/train.py): {differ}"
