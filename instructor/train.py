"""Train the reference GPT and sample from it, from the command line.

    python -m instructor.train train --config cpu --out runs/cpu.pt
    python -m instructor.train sample --checkpoint runs/cpu.pt --prompt "ROMEO:" --temperature 0.8 --top-k 40

The model code is the reference notebook's own (``solutions/gpt_lab.ipynb``, its definitions
only), so the command line and the notebook train the same model. ``--notebook`` points at
another notebook, e.g. a student's finished ``assignment/gpt_lab.ipynb``.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "solutions" / "gpt_lab.ipynb"


@dataclasses.dataclass
class Config:
    n_embd: int = 64
    n_head: int = 4
    n_layer: int = 4
    block_size: int = 32
    batch_size: int = 16
    dropout: float = 0.0
    lr: float = 1e-3
    min_lr: float | None = None  # cosine decay to min_lr over max_iters (None: constant lr)
    warmup_iters: int = 0
    beta2: float = 0.999
    weight_decay: float = 0.01
    max_iters: int = 5000
    eval_interval: int = 500
    eval_iters: int = 100
    seed: int = 1337
    threads: int = 1  # torch threads on the CPU (0: torch's default). One: these models are too small
    # to gain from a second thread, and two threads slow down badly when anything else runs


# Presets. "cpu" is the lab's default, chosen by measurement (benchmarks/train_speed.py): it is the
# fastest found here to reach validation loss 1.88 on 2 CPU cores. "lecture" is the lecture's GPU
# configuration (10,788,929 parameters). "nanogpt-cpu" re-implements nanoGPT's published CPU
# configuration on this model. "tiny" is for tests.
PRESETS = {
    "cpu": Config(n_embd=128, n_head=4, n_layer=2, block_size=32, batch_size=48, lr=4e-3, min_lr=2e-4,
                  warmup_iters=50, beta2=0.99, max_iters=700, eval_interval=140, eval_iters=50, threads=2),
    "lecture": Config(n_embd=384, n_head=6, n_layer=6, block_size=256, batch_size=64, dropout=0.2, lr=3e-4,
                      max_iters=5000, eval_interval=500, eval_iters=200),
    "lecture-small": Config(threads=1),
    "nanogpt-cpu": Config(n_embd=128, n_head=4, n_layer=4, block_size=64, batch_size=12, dropout=0.0, lr=1e-3,
                          min_lr=1e-4, warmup_iters=100, beta2=0.99, weight_decay=0.1, max_iters=2000,
                          eval_interval=250, eval_iters=20, threads=2),
    "tiny": Config(n_embd=16, n_head=2, n_layer=1, block_size=8, batch_size=4, max_iters=20, eval_interval=10,
                   eval_iters=2),
}


def load_definitions(notebook: Path = REFERENCE) -> dict:
    """The lab's classes and functions from a notebook (definitions only: no demo, no training)."""
    from autograder.engine.load import definitions_only, read_submission
    from autograder.engine.submission import LocalSubmission

    sub = LocalSubmission.from_program(definitions_only(read_submission(notebook)))
    ns = sub.runtime.ns
    missing = [n for n in ("CharTokenizer", "get_batch", "GPTLanguageModel", "estimate_loss") if n not in ns]
    if missing:
        raise SystemExit(f"{notebook} does not define {', '.join(missing)}")
    return ns


def pick_device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA GPU is available here")
    return name


def lr_at(cfg: Config, step: int) -> float:
    if cfg.warmup_iters and step < cfg.warmup_iters:
        return cfg.lr * (step + 1) / cfg.warmup_iters
    if cfg.min_lr is None:
        return cfg.lr
    progress = min(1.0, (step - cfg.warmup_iters) / max(1, cfg.max_iters - cfg.warmup_iters))
    return cfg.min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (cfg.lr - cfg.min_lr)


def train(cfg: Config, ns: dict, text: str, device: str = "cpu", on_eval=None, progress: bool = True):
    """Train a model; ``on_eval(step, seconds, train_loss, val_loss)`` after each evaluation.
    Returns (model, tokenizer, evals). Seconds count training only, not evaluation."""
    if cfg.threads and device == "cpu":
        torch.set_num_threads(cfg.threads)
    tok = ns["CharTokenizer"](text)
    data = torch.tensor(tok.encode(text), dtype=torch.long)
    n = int(0.9 * len(data))
    splits = {"train": data[:n], "val": data[n:]}

    def get_batch_fn(split):
        x, y = ns["get_batch"](splits[split], cfg.block_size, cfg.batch_size)
        return x.to(device), y.to(device)

    torch.manual_seed(cfg.seed)
    model = ns["GPTLanguageModel"](tok.vocab_size, cfg.n_embd, cfg.n_head, cfg.n_layer, cfg.block_size, cfg.dropout)
    model.to(device)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr, betas=(0.9, cfg.beta2),
    )
    evals, trained_s = [], 0.0
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.max_iters, desc="training", file=sys.stderr)
    step = 0
    while True:
        if step % cfg.eval_interval == 0 or step == cfg.max_iters:
            est = ns["estimate_loss"](model, get_batch_fn, cfg.eval_iters)
            evals.append((step, trained_s, est["train"], est["val"]))
            if on_eval:
                on_eval(step, trained_s, est["train"], est["val"])
            if bar:
                bar.write(f"step {step:5d}  {trained_s:6.1f} s  train {est['train']:.4f}  val {est['val']:.4f}")
        if step == cfg.max_iters:
            break
        chunk = min(cfg.eval_interval - step % cfg.eval_interval, cfg.max_iters - step)
        t0 = time.perf_counter()
        losses = []
        for i in range(chunk):  # the notebook's train() runs the same loop; here the lr follows a schedule
            for group in optimizer.param_groups:
                group["lr"] = lr_at(cfg, step + i)
            losses += ns["train"](model, optimizer, get_batch_fn, 1) if "train" in ns else []
        if device == "cuda":
            torch.cuda.synchronize()
        trained_s += time.perf_counter() - t0
        step += chunk
        if bar:
            bar.update(chunk)
            bar.set_postfix(loss=f"{sum(losses) / max(1, len(losses)):.3f}")
    if bar:
        bar.close()
    return model, tok, evals


@torch.no_grad()
def sample(model, tok, prompt: str, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
           device: str = "cpu") -> str:
    """Continue ``prompt``: softmax(logits / temperature), restricted to the top_k tokens when given."""
    unknown = sorted(set(prompt) - set(tok.chars))
    if unknown:
        raise ValueError(f"the prompt holds characters outside the vocabulary: {''.join(unknown)!r}")
    if temperature <= 0:
        raise ValueError("temperature must be > 0")
    ids = tok.encode(prompt) if prompt else tok.encode("\n")  # an empty prompt starts from a newline
    idx = torch.tensor([ids], dtype=torch.long, device=device)  # (1, T)
    model.eval()
    for _ in range(max_new_tokens):
        logits, _ = model(idx[:, -model.block_size:])  # any prompt length: keep the last block_size tokens
        logits = logits[:, -1, :] / temperature  # (1, V)
        if top_k is not None:
            kth = torch.topk(logits, min(top_k, logits.shape[-1])).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        nxt = torch.multinomial(F.softmax(logits, dim=-1), num_samples=1)  # (1, 1)
        idx = torch.cat((idx, nxt), dim=1)
    text = tok.decode(idx[0].tolist())
    return text if prompt else text[1:]


def save(path: Path, model, tok, cfg: Config) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.state_dict(), "config": dataclasses.asdict(cfg), "chars": tok.chars}, path)


def load(path: Path, ns: dict, device: str):
    ckpt = torch.load(path, map_location=device, weights_only=True)
    cfg = Config(**ckpt["config"])
    tok = ns["CharTokenizer"]("".join(ckpt["chars"]))
    model = ns["GPTLanguageModel"](tok.vocab_size, cfg.n_embd, cfg.n_head, cfg.n_layer, cfg.block_size, 0.0)
    model.load_state_dict(ckpt["model"])
    return model.to(device), tok, cfg


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m instructor.train", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train and save a checkpoint")
    t.add_argument("--config", choices=sorted(PRESETS), default="cpu")
    t.add_argument("--max-iters", type=int)
    t.add_argument("--out", type=Path, default=Path("runs/model.pt"))
    t.add_argument("--sample-tokens", type=int, default=300, help="tokens to sample after training")
    for p in (t, sub.add_parser("sample", help="sample from a checkpoint")):
        p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
        p.add_argument("--notebook", type=Path, default=REFERENCE)
        p.add_argument("--data", type=Path, help="the text to train on (default: tiny Shakespeare)")
    s = sub.choices["sample"]
    s.add_argument("--checkpoint", type=Path, required=True)
    s.add_argument("--prompt", default="")
    s.add_argument("--max-new-tokens", type=int, default=500)
    s.add_argument("--temperature", type=float, default=1.0)
    s.add_argument("--top-k", type=int)
    s.add_argument("--seed", type=int, default=1337)
    args = parser.parse_args(argv)

    device = pick_device(args.device)
    ns = load_definitions(args.notebook)
    if args.command == "train":
        from data import load_text

        cfg = dataclasses.replace(PRESETS[args.config])
        if args.max_iters is not None:
            cfg.max_iters = args.max_iters
        text = args.data.read_text() if args.data else load_text()
        model, tok, evals = train(cfg, ns, text, device)
        save(args.out, model, tok, cfg)
        step, seconds, tr, va = evals[-1]
        print(f"trained {step} steps in {seconds:.1f} s on {device}: train {tr:.4f}, val {va:.4f}; saved {args.out}")
        if args.sample_tokens:
            print(sample(model, tok, "", args.sample_tokens, device=device))
        return 0
    model, tok, _ = load(args.checkpoint, ns, device)
    torch.manual_seed(args.seed)
    try:
        print(sample(model, tok, args.prompt, args.max_new_tokens, args.temperature, args.top_k, device))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
