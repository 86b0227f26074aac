"""The figures that the lab's text quotes agree with the notebook's own configuration cell, with
what its code computes (parameter counts, ln of the vocabulary size), and with the last measured
run (solutions/measured.json, written by benchmarks/notebook_figures.py). A figure typed by hand
cannot go stale, and the Spanish edition (issue 17), made from the same source, is held to the
same figures.
"""

from __future__ import annotations

import json
import math
import re

import pytest
import torch

from tests.conftest import REFERENCE, code_cell, read_reference

MEASURED = REFERENCE.parent / "measured.json"
VOCAB_SIZE = 65  # tiny Shakespeare's distinct characters (the lab contract's data; tests/test_data.py checks it)
MODEL_CELLS = ("head_code", "multihead_code", "feedforward_code", "decoder_block_code", "gpt_code")
# the lecture's GPU configuration, as the text's table gives it (vocabulary, n_embd, n_head, n_layer, block)
LECTURE = dict(n_embd=384, n_head=6, n_layer=6, block_size=256)


def _config(nb) -> dict:
    """The variables of the configuration cell (plain assignments, run on their own)."""
    cell = next(c for c in nb.cells if c.cell_type == "code" and "training configuration" in c.source)
    ns: dict = {}
    exec(cell.source, ns)  # noqa: S102 - the instructor's own configuration cell
    return {k: v for k, v in ns.items() if not k.startswith("__")}


def _model_classes(nb) -> dict:
    ns = {"torch": torch, "nn": torch.nn, "F": torch.nn.functional}
    for grade_id in MODEL_CELLS:
        exec(code_cell(nb, grade_id).source, ns)  # noqa: S102 - the reference's own classes
    return ns


def _n_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def _text(nb) -> str:
    """Every markdown cell, and every code comment (figures in comments are text too)."""
    parts = [c.source for c in nb.cells if c.cell_type == "markdown"]
    parts += [line.split("#", 1)[1] for c in nb.cells if c.cell_type == "code" for line in c.source.splitlines() if "#" in line]
    return "\n".join(parts)


def _row(text: str, name: str) -> str:
    """The CPU column of the configuration table's row ``name``."""
    m = re.search(rf"^\|\s*`?{re.escape(name)}`?[^|]*\|\s*([^|]+?)\s*\|", text, re.M)
    assert m, f"the configuration table has no row {name!r}"
    return m.group(1)


def disagreements(nb, measured: dict) -> list[str]:
    """Every figure of the text that disagrees with the configuration, the code, or the measured run."""
    text, cfg, classes, bad = _text(nb), _config(nb), _model_classes(nb), []

    def check(what: str, quoted: float, true: float, tol: float) -> None:
        if abs(quoted - true) > tol:
            bad.append(f"{what}: the text says {quoted:g}, the notebook gives {true:g}")

    # the configuration table against the configuration cell (exact: the table copies the cell)
    for name in ("n_embd", "n_layer", "block_size", "batch_size", "dropout", "max_iters"):
        check(f"table row {name}", _number(_row(text, name).split()[0]), cfg[name], 0)
    head = re.match(r"(\d+) \(head size (\d+)\)", _row(text, "n_head"))
    assert head, "the n_head row reads 'N (head size H)'"
    check("table row n_head", int(head.group(1)), cfg["n_head"], 0)
    check("table row n_head, head size", int(head.group(2)), cfg["n_embd"] // cfg["n_head"], 0)
    lr = re.match(r"([\d.e-]+), (\d+) warm-up steps, cosine decay to ([\d.e-]+)", _row(text, "learning_rate"))
    assert lr, "the learning_rate row reads 'LR, N warm-up steps, cosine decay to MIN'"
    check("learning rate", float(lr.group(1)), cfg["learning_rate"], 0)
    check("warm-up steps", int(lr.group(2)), cfg["warmup_iters"], 0)
    check("minimum learning rate", float(lr.group(3)), cfg["min_lr"], 0)
    # parameter counts: computed by the reference's own classes (exact)
    gpt = classes["GPTLanguageModel"]
    ours = _n_params(gpt(VOCAB_SIZE, cfg["n_embd"], cfg["n_head"], cfg["n_layer"], cfg["block_size"]))
    lecture = _n_params(gpt(VOCAB_SIZE, **LECTURE))
    cpu_params, gpu_params = (_number(v) for v in re.search(r"^\|\s*parameters\s*\|\s*([\d,]+)\s*\|\s*([\d,]+)", text, re.M).groups())
    check("parameters of the CPU configuration", cpu_params, ours, 0)
    check("parameters of the lecture configuration", gpu_params, lecture, 0)
    # n_embd = n_head x head_size, wherever the text writes "A = B × C"
    for a, b, c in re.findall(r"(\d+) = (\d+) × (\d+)", text):
        check(f"{a} = {b} × {c}", int(a), int(b) * int(c), 0)
    m = re.search(r"(\d+) = (\d+) × (\d+) in this notebook's configuration", text)
    assert m, "the heads answer names this notebook's n_embd = n_head × head_size"
    check("n_embd in the heads answer", int(m.group(1)), cfg["n_embd"], 0)
    check("n_head in the heads answer", int(m.group(2)), cfg["n_head"], 0)
    # ln(vocab_size): quoted to 2 decimals (tolerance: half the last digit)
    for quoted in re.findall(r"(?:ln 65|ln\(65\)|-\\ln\(1/65\))[^0-9]{0,20}?(\d\.\d+)", text):
        check("ln 65", float(quoted), math.log(VOCAB_SIZE), 0.5 * 10 ** -len(quoted.split(".")[1]) + 1e-9)
    # the measured run: losses to the digits quoted (half the last digit), the time to 10% (the
    # text rounds it to 5 s; runs on one machine vary by a few %)
    run = measured["training_run"]
    val = re.search(r"^\|\s*validation loss\s*\|\s*about ([\d.]+)", text, re.M).group(1)
    check("validation loss of the CPU configuration", float(val), run["final_val_loss"], 0.5 * 10 ** -len(val.split(".")[1]) + 1e-9)
    secs = re.search(r"about (\d+) s of\s+training", text)
    assert secs, "the training section says 'about N s of training'"
    check("training time (s)", int(secs.group(1)), run["train_seconds"], 0.1 * run["train_seconds"])
    init = re.search(r"loss is a\s+little higher, about ([\d.]+)", text).group(1)
    check("bigram loss at initialisation", float(init), measured["bigram_init_loss"], 0.5 * 10 ** -len(init.split(".")[1]) + 1e-9)
    first, last = re.search(r"The loss should go from about ([\d.]+) to about ([\d.]+)", text).groups()
    check("bigram training, first loss", float(first), measured["bigram_first_loss"], 0.05 + 1e-9)
    check("bigram training, last loss", float(last), measured["bigram_last_loss"], 0.05 + 1e-9)
    # the quiz's parameter-count question: the key's option is Head(32, 16, 8)'s count
    key = eval(code_cell(nb, "quiz_code").source.split("\n", 1)[1].split("### END")[0].strip().split("=", 1)[1])  # noqa: S307
    q2 = re.search(r"\*\*q2\.\*\*.*?(?=\*\*q3)", text, re.S).group(0)
    option = re.search(rf"\({key['q2']}\) ([\d,]+)", q2).group(1)
    check("quiz q2's right answer", _number(option), _n_params(classes["Head"](32, 16, 8)), 0)
    return bad


@pytest.fixture(scope="module")
def measured() -> dict:
    return json.loads(MEASURED.read_text())


def test_text_figures_agree_with_configuration_and_measured_run(measured):
    bad = disagreements(read_reference(), measured)
    assert not bad, "figures of the text disagree:\n" + "\n".join(bad)


@pytest.mark.parametrize("old,new", [
    ("| validation loss | about 1.84 |", "| validation loss | about 1.85 |"),
    ("about 85 s of\ntraining", "about 30 s of\ntraining"),
    ("| `n_embd` | 128 |", "| `n_embd` | 64 |"),
    ("| parameters | 416,833 |", "| parameters | 416,000 |"),
    ("128 = 4 × 32 in this notebook", "64 = 4 × 16 in this notebook"),
    ("little higher, about 4.41", "little higher, about 4.17"),
    ("$-\\ln(1/65) = \\ln 65 \\approx 4.17$", "$-\\ln(1/65) = \\ln 65 \\approx 4.41$"),
    ("(c) 1,536", "(c) 1,600"),
], ids=["val-loss", "time", "config", "parameters", "heads-answer", "bigram-init", "ln65", "quiz"])
def test_text_figures_fail_when_a_figure_disagrees(measured, old, new):
    nb = read_reference()
    hits = [c for c in nb.cells if old in c.source]
    assert len(hits) == 1, f"{old!r} is not in the text once"
    hits[0].source = hits[0].source.replace(old, new)
    assert disagreements(nb, measured), f"changing {old!r} to {new!r} went unnoticed"


def test_text_figures_follow_a_new_measured_run(measured):
    changed = {**measured, "training_run": {**measured["training_run"], "final_val_loss": 1.90, "train_seconds": 40.0}}
    bad = disagreements(read_reference(), changed)
    assert any("validation loss" in b for b in bad) and any("training time" in b for b in bad), bad
