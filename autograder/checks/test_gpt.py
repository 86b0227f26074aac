"""Part gpt: ``GPTLanguageModel.forward`` (embeddings, blocks, final LayerNorm, head, loss).

Blocks are the grader's stand-ins (``x + tanh(x W + b)``), so a broken DecoderBlock, Head or
FeedForward costs nothing here.
"""

import torch
import torch.nn.functional as F

from autograder.checks.verdicts import close, expect, fail, fails, need, number, owned_by, tensor, their_lines
from autograder.engine.submission import SubmissionFailure
from autograder.checks.standins import ProbeBlock
from autograder.i18n import N_, tr, translate

V, C, NH, NL, BLOCK = 13, 8, 2, 2, 6
STUBS = {"DecoderBlock": "ProbeBlock"}


def _gpt(sub):
    """The model with stand-in blocks, and the known weights the grader wrote into it (through
    nn.Module's own tables: what the model says about itself decides nothing)."""
    need(sub, "GPTLanguageModel")
    model = sub.new("GPTLanguageModel", V, C, NH, NL, BLOCK, 0.0, _seed=4, _stubs=STUBS).eval()
    have = model.state_dict()
    expected = {"token_embedding_table.weight": (V, C), "position_embedding_table.weight": (BLOCK, C),
                "ln_f.weight": (C,), "ln_f.bias": (C,), "lm_head.weight": (V, C)}
    for name, shape in expected.items():
        got = tuple(have[name].shape) if name in have else None
        expect(got == shape, tr("{name}: expected shape {expected}, got {got}")
                              .format(name=name, expected=shape, got=got))
    blocks = {k.split(".")[1] for k in have if k.startswith("blocks.")}
    expect(len(blocks) == NL, tr("expected {expected} blocks in self.blocks, got {got}")
                               .format(expected=NL, got=len(blocks)))
    g = torch.Generator().manual_seed(5)
    state = {name: torch.randn(*shape, generator=g) for name, shape in expected.items()}
    state["ln_f.weight"] = 1 + 0.5 * state["ln_f.weight"]
    state["ln_f.bias"] = 0.5 * state["ln_f.bias"]
    state["lm_head.weight"] = state["lm_head.weight"] / C**0.5
    if "lm_head.bias" in have and tuple(have["lm_head.bias"].shape) == (V,):
        state["lm_head.bias"] = 0.5 * torch.randn(V, generator=g)
    for i in sorted(blocks):
        if f"blocks.{i}.lin.weight" not in have:
            fail(tr("self.blocks does not hold the blocks the model's own __init__ builds from DecoderBlock"))
        state[f"blocks.{i}.lin.weight"] = torch.randn(C, C, generator=g) / C**0.5
        state[f"blocks.{i}.lin.bias"] = 0.5 * torch.randn(C, generator=g)
    model.load_state_dict(state)
    return model, state


def _expected_logits(state, idx):
    T = idx.shape[1]
    x = state["token_embedding_table.weight"][idx] + state["position_embedding_table.weight"][:T]  # (B, T, C)
    for i in range(NL):
        x = ProbeBlock.compute(state, x, f"blocks.{i}.")
    x = F.layer_norm(x, (C,), state["ln_f.weight"], state["ln_f.bias"])
    return F.linear(x, state["lm_head.weight"], state.get("lm_head.bias"))  # (B, T, V)


def _cause(state, idx, logits) -> str:
    """The one cause a wrong forward's logits show, in the student's terms, or a pointer."""
    T = idx.shape[1]
    tok, pos = state["token_embedding_table.weight"][idx], state["position_embedding_table.weight"]
    head = lambda x: F.linear(F.layer_norm(x, (C,), state["ln_f.weight"], state["ln_f.bias"]),  # noqa: E731
                              state["lm_head.weight"], state.get("lm_head.bias"))

    def blocks(x):
        for i in range(NL):
            x = ProbeBlock.compute(state, x, f"blocks.{i}.")
        return x

    tries = (
        (N_("the position embeddings are not added to the token embeddings"), head(blocks(tok))),
        (N_("every position reads the same row of the position table: position t must read row t"),
         head(blocks(tok + pos[0]))),
        (N_("the position rows are taken from the end of the table: position t must read row t, for any T"),
         head(blocks(tok + pos[-T:]))),
        (N_("the blocks are never applied to the embeddings"), head(tok + pos[:T])),
        (N_("the final LayerNorm ln_f is not applied before lm_head"),
         F.linear(blocks(tok + pos[:T]), state["lm_head.weight"], state.get("lm_head.bias"))),
    )
    for why, value in tries:
        if tuple(value.shape) == tuple(logits.shape) and torch.allclose(logits, value, atol=1e-5):
            return translate(why)
    return tr("the logits differ from the contract's model with the same weights: check each step of "
              "GPTLanguageModel.forward, from the embeddings to lm_head")


def test_gpt_logits(sub):
    """Without targets: logits (B, T, vocab) from token + position embeddings, the blocks, ln_f and
    lm_head; loss None. Checked for T = block_size, T < block_size and T = 1 (atol 1e-5: float32)."""
    model, state = _gpt(sub)
    for T in (BLOCK, 3, 1):
        idx = torch.randint(V, (2, T), generator=torch.Generator().manual_seed(T))
        out = model(idx)
        expect(isinstance(out, tuple) and len(out) == 2, tr("forward should return (logits, loss)"))
        logits, loss = out
        tensor(logits, tr("logits for T={T}").format(T=T), shape=(2, T, V))
        logits = logits.float()  # the contract fixes values, not dtype: float64 logits are judged by their values
        expect(loss is None, tr("with targets=None the loss should be None, got {got!r}").format(got=loss))
        close(logits, _expected_logits(state, idx), tr("logits for T={T}").format(T=T), atol=1e-5,
              hint=_cause(state, idx, logits))


def test_gpt_loss(sub):
    """With targets: loss = mean cross-entropy over B*T of the logits the model itself returns
    ((B, T, V), or flattened (B*T, V)), so a wrong logit (test_gpt_logits) is not counted twice;
    for B = 2 and B = 1 (atol 1e-5: float32)."""
    model, _ = _gpt(sub)
    g = torch.Generator().manual_seed(8)
    for B in (2, 1):
        idx, targets = torch.randint(V, (B, BLOCK), generator=g), torch.randint(V, (B, BLOCK), generator=g)
        out = model(idx, targets)
        expect(isinstance(out, tuple) and len(out) == 2, tr("forward should return (logits, loss)"))
        logits, loss = out
        logits = tensor(logits, tr("logits with targets"))
        expect(tuple(logits.shape) in ((B, BLOCK, V), (B * BLOCK, V)),
               tr("logits with targets: expected shape {expected} (or flattened {shape}), got {got}")
                .format(expected=(B, BLOCK, V), shape=(B * BLOCK, V), got=tuple(logits.shape)))
        want = F.cross_entropy(logits.reshape(B * BLOCK, V).double(), targets.view(-1))
        close(torch.tensor(number(loss, "loss")), want.float(), tr("loss (batch of {B})").format(B=B), atol=1e-5,
              hint=tr("the loss is the mean cross-entropy of the B*T rows of logits against the B*T targets, "
                      "each row matched with its own target"))


_LOGITS = ("logits", fails(lambda sub: test_gpt_logits(sub), N_("the logits are wrong")))


def test_gpt_tensors_on_the_input_device(sub):
    """Tensors that forward creates (the position ids) live on idx's device: run as if idx were on
    a GPU, a tensor made without a device must not meet it (the model must run on CPU and CUDA alike)."""
    model, _ = _gpt(sub)
    idx = torch.randint(V, (2, 4), generator=torch.Generator().manual_seed(9))
    try:
        with owned_by(sub, _LOGITS):  # a forward that fails anyway: 'logits' reports it
            sub.make("OnAnotherDevice", model)(idx)
    except SubmissionFailure as exc:
        if exc.kind != "DeviceMismatch":
            raise
        fail(tr("GPTLanguageModel.forward creates a tensor (the position ids?) without giving it the device of idx: "
                "it passes on a CPU, but on a GPU the model fails with a device error. Create tensors inside "
                "forward on idx's device{where}").format(where=their_lines(exc)))
