"""Part gpt: ``GPTLanguageModel.forward`` (embeddings, blocks, final LayerNorm, head, loss).

Blocks are the grader's stand-ins (``x + tanh(x W + b)``), so a broken DecoderBlock, Head or
FeedForward costs nothing here.
"""

import torch
import torch.nn.functional as F

from autograder.checks.verdicts import close, expect, need, number, tensor
from autograder.checks.standins import ProbeBlock

V, C, NH, NL, BLOCK = 13, 8, 2, 2, 6
STUBS = {"DecoderBlock": "ProbeBlock"}


def _gpt(sub):
    need(sub, "GPTLanguageModel")
    model = sub.new("GPTLanguageModel", V, C, NH, NL, BLOCK, 0.0, _seed=4, _stubs=STUBS).eval()
    state = model.state_dict()
    expected = {"token_embedding_table.weight": (V, C), "position_embedding_table.weight": (BLOCK, C),
                "ln_f.weight": (C,), "ln_f.bias": (C,), "lm_head.weight": (V, C)}
    for name, shape in expected.items():
        got = tuple(state[name].shape) if name in state else None
        expect(got == shape, f"{name}: expected shape {shape}, got {got}")
    blocks = {k.split(".")[1] for k in state if k.startswith("blocks.")}
    expect(len(blocks) == NL, f"expected {NL} blocks in self.blocks, got {len(blocks)}")
    g = torch.Generator().manual_seed(5)
    state["ln_f.weight"] = 1 + 0.5 * torch.randn(C, generator=g)
    state["ln_f.bias"] = 0.5 * torch.randn(C, generator=g)
    model.load_state_dict(state)
    return model, state


def _expected_logits(state, idx):
    T = idx.shape[1]
    x = state["token_embedding_table.weight"][idx] + state["position_embedding_table.weight"][:T]  # (B, T, C)
    for i in range(NL):
        x = ProbeBlock.compute(state, x, f"blocks.{i}.")
    x = F.layer_norm(x, (C,), state["ln_f.weight"], state["ln_f.bias"])
    return F.linear(x, state["lm_head.weight"], state.get("lm_head.bias"))  # (B, T, V)


def test_gpt_logits(sub):
    """Without targets: logits (B, T, vocab) from token + position embeddings, the blocks, ln_f and
    lm_head; loss None. Checked for T = block_size, T < block_size and T = 1 (atol 1e-5: float32)."""
    model, state = _gpt(sub)
    for T in (BLOCK, 3, 1):
        idx = torch.randint(V, (2, T), generator=torch.Generator().manual_seed(T))
        out = model(idx)
        expect(isinstance(out, tuple) and len(out) == 2, "forward should return (logits, loss)")
        logits, loss = out
        tensor(logits, f"logits for T={T}", shape=(2, T, V))
        expect(loss is None, f"with targets=None the loss should be None, got {loss!r}")
        close(logits, _expected_logits(state, idx), f"logits for T={T}", atol=1e-5,
              hint="x = tok_emb(idx) + pos_emb(torch.arange(T, device=idx.device)); blocks; ln_f; lm_head")


def test_gpt_loss(sub):
    """With targets: loss = mean cross-entropy over B*T of the logits the model itself returns
    ((B, T, V), or flattened (B*T, V)), so a wrong logit (test_gpt_logits) is not counted twice;
    for B = 2 and B = 1 (atol 1e-5: float32)."""
    model, _ = _gpt(sub)
    g = torch.Generator().manual_seed(8)
    for B in (2, 1):
        idx, targets = torch.randint(V, (B, BLOCK), generator=g), torch.randint(V, (B, BLOCK), generator=g)
        out = model(idx, targets)
        expect(isinstance(out, tuple) and len(out) == 2, "forward should return (logits, loss)")
        logits, loss = out
        logits = tensor(logits, "logits with targets")
        expect(tuple(logits.shape) in ((B, BLOCK, V), (B * BLOCK, V)),
               f"logits with targets: expected shape {(B, BLOCK, V)} (or flattened {(B * BLOCK, V)}), "
               f"got {tuple(logits.shape)}")
        want = F.cross_entropy(logits.reshape(B * BLOCK, V).double(), targets.view(-1))
        close(torch.tensor(number(loss, "loss")), want.float(), f"loss (batch of {B})", atol=1e-5,
              hint="the mean cross-entropy of the logits against the targets: "
                   "F.cross_entropy(logits.view(B*T, C), targets.view(B*T))")
