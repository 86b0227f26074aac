"""Valid alternative implementations of the reference: each must get full marks in every part."""

from __future__ import annotations

from tests.bank import EL_BODY as _EL_BODY
from tests.bank import MHA_FORWARD as _MHA_FORWARD
from tests.bank import Alternative, Rewrite

_A = Alternative

# The same computation as the heads in a batch, with the right split (view(B, T, H, hs) then
# transpose); each head's dropout is folded into one nn.Dropout on the batched weights.
_MHA_BATCHED = """B, T, C = x.shape
        H = len(self.heads)
        hs = self.heads[0].key.weight.shape[0]
        wk = torch.cat([h.key.weight for h in self.heads], dim=0)  # (H*hs, C)
        wq = torch.cat([h.query.weight for h in self.heads], dim=0)
        wv = torch.cat([h.value.weight for h in self.heads], dim=0)
        k = (x @ wk.T).view(B, T, H, hs).transpose(1, 2)  # (B, H, T, hs)
        q = (x @ wq.T).view(B, T, H, hs).transpose(1, 2)
        v = (x @ wv.T).view(B, T, H, hs).transpose(1, 2)
        wei = q @ k.transpose(-2, -1) * hs ** -0.5  # (B, H, T, T)
        wei = wei.masked_fill(self.heads[0].tril[:T, :T] == 0, float("-inf"))
        wei = self.heads[0].dropout(F.softmax(wei, dim=-1))
        out = (wei @ v).transpose(1, 2).reshape(B, T, H * hs)
        return self.dropout(self.proj(out))"""
_GPT_LOSS = (
    "if targets is None:\n"
    "            return logits, None\n"
    "        V = logits.shape[-1]\n"
    "        loss = F.cross_entropy(logits.reshape(B * T, V), targets.reshape(B * T))\n"
    "        return logits, loss"
)
_GPT_LOSS_LECTURE = """if targets is None:
            loss = None
        else:
            B, T, V = logits.shape
            logits = logits.view(B * T, V)
            targets = targets.view(B * T)
            loss = F.cross_entropy(logits, targets)
        return logits, loss"""
_TRAIN_STEP = "optimizer.zero_grad(set_to_none=True)\n        loss.backward()\n        optimizer.step()"
_GB_STACK = (
    "x = torch.stack([data[i:i + block_size] for i in ix])  # (B, T)\n"
    "    y = torch.stack([data[i + 1:i + block_size + 1] for i in ix])  # (B, T)"
)

ALTERNATIVES: list[Alternative] = [
    _A("head_einsum", "head", "head_code",
       "wei = q @ k.transpose(-2, -1) * k.shape[-1] ** -0.5",
       'wei = torch.einsum("btd,bsd->bts", q, k) * k.shape[-1] ** -0.5',
       "attention scores with einsum"),
    _A("head_einsum_values", "head", "head_code",
       "out = wei @ v", 'out = torch.einsum("bts,bsd->btd", wei, v)',
       "weighted values with einsum"),
    _A("head_torch_where", "head", "head_code",
       'wei = wei.masked_fill(self.tril[:T, :T] == 0, float("-inf"))',
       'wei = torch.where(self.tril[:T, :T] == 0, torch.full_like(wei, float("-inf")), wei)',
       "masking with torch.where"),
    _A("head_manual_softmax", "head", "head_code",
       "wei = F.softmax(wei, dim=-1)",
       "wei = torch.exp(wei - wei.amax(dim=-1, keepdim=True))\n"
       "        wei = wei / wei.sum(dim=-1, keepdim=True)",
       "softmax by hand: exp(x - max) / sum"),
    _A("head_scale_query_first", "head", "head_code",
       "wei = q @ k.transpose(-2, -1) * k.shape[-1] ** -0.5",
       "wei = (q * q.size(-1) ** -0.5) @ k.transpose(-2, -1)",
       "the queries scaled before the product"),
    _A("mha_batched", "multihead", "multihead_code",
       _MHA_FORWARD, _MHA_BATCHED,
       "batched multi-head attention from the heads' own weights, split correctly"),
    _A("tok_itos_list", "tokenizer", "tokenizer_code",
       "self.itos = {i: ch for i, ch in enumerate(self.chars)}", "self.itos = list(self.chars)",
       "itos as a list"),
    _A("gb_arange_indexing", "get_batch", "get_batch_code",
       _GB_STACK,
       "offsets = ix[:, None] + torch.arange(block_size)  # (B, T)\n"
       "    x = data[offsets]\n"
       "    y = data[offsets + 1]",
       "windows by advanced indexing with an arange instead of torch.stack"),
    _A("gpt_reshape", "gpt", "gpt_code",
       "loss = F.cross_entropy(logits.reshape(B * T, V), targets.reshape(B * T))",
       "loss = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1))",
       "reshape instead of view"),
    _A("gpt_flat_logits", "gpt", "gpt_code",
       _GPT_LOSS, _GPT_LOSS_LECTURE,
       "lecture style: logits returned flattened (B*T, V) when targets are given"),
    _A("gpt_pos_emb_weight_slice", "gpt", "gpt_code",
       "pos_emb = self.position_embedding_table(torch.arange(T, device=idx.device))",
       "pos_emb = self.position_embedding_table.weight[:T]",
       "position embeddings by slicing the table's weight"),
    _A("gen_categorical", "generate", "gpt_code",
       "idx_next = torch.multinomial(probs, num_samples=1)",
       "idx_next = torch.distributions.Categorical(probs=probs).sample().unsqueeze(-1)",
       "sampling with torch.distributions.Categorical"),
    _A("bigram_ce_class_dim", "bigram", "bigram_code",
       "loss = F.cross_entropy(logits.reshape(B * T, C), targets.reshape(B * T))",
       "loss = F.cross_entropy(logits.transpose(1, 2), targets)",
       "cross-entropy with the classes on dim 1: (B, C, T) logits, (B, T) targets"),
    _A("block_named_residual", "decoder_block", "decoder_block_code",
       "x = x + self.sa(self.ln1(x))  # (B, T, C) communicate\n"
       "        x = x + self.ffwd(self.ln2(x))  # (B, T, C) compute\n"
       "        return x",
       "h = x + self.sa(self.ln1(x))\n        return h + self.ffwd(self.ln2(h))",
       "the residual stream in a new variable"),
    _A("el_inference_mode", "estimate_loss", "estimate_loss_code",
       "@torch.no_grad()", "@torch.inference_mode()", "inference_mode instead of no_grad"),
    _A("train_zero_grad_after_step", "train", "train_code",
       _TRAIN_STEP, "loss.backward()\n        optimizer.step()\n        optimizer.zero_grad()",
       "gradients reset after the step instead of before the backward"),
    _A("train_model_zero_grad", "train", "train_code",
       "optimizer.zero_grad(set_to_none=True)", "model.zero_grad(set_to_none=True)",
       "model.zero_grad instead of the optimizer's"),
]

# -- the ways real code is written: whole-submission rewrites (several cells, other file forms) --

_R = Rewrite
_TRIL = 'self.register_buffer("tril", torch.tril(torch.ones(block_size, block_size)))\n        self.dropout'
_MASK_USE = 'wei = wei.masked_fill(self.tril[:T, :T] == 0, float("-inf"))'
_GPT_BLOCK_ATTR = "self.block_size = block_size\n"
_GEN_CROP = "idx_cond = idx[:, -self.block_size:]"
_GPT_ASSERT = 'assert T <= self.block_size, f"sequence length {T} exceeds block_size {self.block_size}"'
_DECODER_BUILD = (
    "self.sa = MultiHeadAttention(n_embd, n_head, head_size, block_size, dropout)\n"
    "        self.ffwd = FeedForward(n_embd, dropout)\n"
    "        self.ln1 = nn.LayerNorm(n_embd)\n"
    "        self.ln2 = nn.LayerNorm(n_embd)"
)
_GPT_BLOCKS = "self.blocks = nn.Sequential(*[DecoderBlock(n_embd, n_head, block_size, dropout) for _ in range(n_layer)])"
_CONFIG = """from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class GPTConfig:
    vocab_size: int
    n_embd: int
    n_head: int
    n_layer: int
    block_size: int
    dropout: float = 0.0
    tags: list[str] = field(default_factory=list)
"""
_CONFIG_EDITS = (
    ("gpt_code", _GPT_BLOCK_ATTR,
     "self.config = GPTConfig(vocab_size, n_embd, n_head, n_layer, block_size, dropout)\n"),
    ("gpt_code", _GPT_ASSERT, "assert T <= self.config.block_size"),
    ("gpt_code", _GEN_CROP, "idx_cond = idx[:, -self.config.block_size:]"),
)
_LAYERNORM = """class LayerNorm(nn.Module):
    \"\"\"LayerNorm written out (as in nanoGPT): normalise over the last dim, then scale and shift.\"\"\"

    def __init__(self, ndim: int, eps: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ndim))
        self.bias = nn.Parameter(torch.zeros(ndim))
        self.eps = eps

    def forward(self, x):
        mean = x.mean(dim=-1, keepdim=True)
        var = x.var(dim=-1, keepdim=True, unbiased=False)
        return (x - mean) / torch.sqrt(var + self.eps) * self.weight + self.bias
"""
_SDPA = (
    "out = F.scaled_dot_product_attention(q, k, v, is_causal=True,\n"
    "                                             dropout_p=self.dropout.p if self.training else 0.0)\n"
    "        return out"
)
_HEAD_BODY = (
    "wei = q @ k.transpose(-2, -1) * k.shape[-1] ** -0.5  # (B, T, hs) @ (B, hs, T) -> (B, T, T)\n"
    '        wei = wei.masked_fill(self.tril[:T, :T] == 0, float("-inf"))  # (B, T, T) causal mask\n'
    "        wei = F.softmax(wei, dim=-1)  # (B, T, T) each row sums to 1\n"
    "        wei = self.dropout(wei)\n"
    "        out = wei @ v  # (B, T, T) @ (B, T, hs) -> (B, T, hs)\n"
    "        return out"
)
_TRAIN_BODY = (
    "    losses = []\n    for _ in range(max_iters):\n        x, y = get_batch_fn(\"train\")\n"
    "        _, loss = model(x, y)\n        optimizer.zero_grad(set_to_none=True)\n        loss.backward()\n"
    "        optimizer.step()\n        losses.append(loss.item())\n    return losses"
)
_GB_BODY = (
    "ix = torch.randint(len(data) - block_size, (batch_size,))  # (B,) start positions\n"
    "    x = torch.stack([data[i:i + block_size] for i in ix])  # (B, T)\n"
    "    y = torch.stack([data[i + 1:i + block_size + 1] for i in ix])  # (B, T)"
)

REWRITES: list[Rewrite] = [
    _R("py_dataclass_config", "generate", "a .py module with `from __future__ import annotations` and a config "
       "@dataclass (with a list field); generate reads self.config.block_size",
       edits=_CONFIG_EDITS, form="py", prelude=_CONFIG),
    _R("py_bom_crlf", "tokenizer", "a .py module saved on Windows: UTF-8 with a BOM and CRLF line ends",
       form="py-bom-crlf", prelude="# \u00c9tudiant: Zo\u00eb \u2014 \u201cLet's build GPT\u201d\n"),
    _R("py_latin1_coding", "tokenizer", "a .py module in latin-1 with a PEP 263 coding line and accented text",
       form="py-latin1", prelude="# \u00c9l\u00e8ve: Fran\u00e7ois\nAUTEUR = 'H\u00e9l\u00e8ne M\u00fcller'\n",
       edits=(("tokenizer_code", "self.vocab_size = len(self.chars)",
               "self.vocab_size = len(self.chars)  # taille du vocabulaire (caract\u00e8res distincts)"),)),
    _R("py_percent_cells_reordered", "decoder_block", "a jupytext percent-format .py whose building blocks come "
       "after the classes that use them (names resolved at call time)",
       form="py", reverse=("head_code", "multihead_code", "feedforward_code", "decoder_block_code"),
       prelude="# %% [markdown]\n# My GPT lab\n\n# %%\n"),
    _R("head_mask_buffer_named_mask", "head", "the causal mask registered under another name",
       edits=(("head_code", _TRIL, 'self.register_buffer("mask", torch.tril(torch.ones(block_size, block_size)))\n'
               '        self.dropout'),
              ("head_code", _MASK_USE, 'wei = wei.masked_fill(self.mask[:T, :T] == 0, float("-inf"))'))),
    _R("head_mask_nonpersistent", "head", "the causal mask as a non-persistent boolean buffer",
       edits=(("head_code", _TRIL, 'self.register_buffer("tril", torch.ones(block_size, block_size, dtype=torch.bool)'
               '.tril(), persistent=False)\n        self.dropout'),
              ("head_code", _MASK_USE, 'wei = wei.masked_fill(~self.tril[:T, :T], float("-inf"))'))),
    _R("head_sdpa", "head", "F.scaled_dot_product_attention(is_causal=True), no mask buffer at all",
       edits=(("head_code", _TRIL, "self.dropout"), ("head_code", _HEAD_BODY, _SDPA))),
    _R("own_layernorm_module", "decoder_block", "its own LayerNorm module (nanoGPT style) for ln1, ln2 and ln_f",
       prelude=_LAYERNORM,
       edits=(("decoder_block_code", "self.ln1 = nn.LayerNorm(n_embd)\n        self.ln2 = nn.LayerNorm(n_embd)",
               "self.ln1 = LayerNorm(n_embd)\n        self.ln2 = LayerNorm(n_embd)"),
              ("gpt_code", "self.ln_f = nn.LayerNorm(n_embd)", "self.ln_f = LayerNorm(n_embd)"))),
    _R("keyword_calls", "decoder_block", "every submodule built with keyword arguments",
       edits=(("decoder_block_code", _DECODER_BUILD,
               "self.sa = MultiHeadAttention(n_embd=n_embd, num_heads=n_head, head_size=head_size,\n"
               "                                     block_size=block_size, dropout=dropout)\n"
               "        self.ffwd = FeedForward(n_embd=n_embd, dropout=dropout)\n"
               "        self.ln1 = nn.LayerNorm(normalized_shape=n_embd)\n"
               "        self.ln2 = nn.LayerNorm(normalized_shape=n_embd)"),
              ("gpt_code", _GPT_BLOCKS,
               "self.blocks = nn.Sequential(*[DecoderBlock(n_embd=n_embd, n_head=n_head, block_size=block_size,\n"
               "                                                  dropout=dropout) for _ in range(n_layer)])"),
              ("multihead_code", "Head(n_embd, head_size, block_size, dropout)",
               "Head(n_embd=n_embd, head_size=head_size, block_size=block_size, dropout=dropout)"))),
    _R("tok_map_and_list_style", "tokenizer", "vocabulary with sorted(list(set())), itos by dict(enumerate()), "
       "encode through map, decode through a list of characters",
       edits=(("tokenizer_code", "self.chars = sorted(set(text))", "self.chars = sorted(list(set(text)))"),
              ("tokenizer_code", "self.itos = {i: ch for i, ch in enumerate(self.chars)}", "self.itos = dict(enumerate(self.chars))"),
              ("tokenizer_code", "return [self.stoi[ch] for ch in s]", "return list(map(self.stoi.__getitem__, s))"),
              ("tokenizer_code", 'return "".join(self.itos[int(i)] for i in ids)',
               'return "".join([self.itos[i] for i in list(map(int, ids))])'))),
    _R("el_no_grad_context_python_list", "estimate_loss", "torch.no_grad() as a context manager, losses in a "
       "Python list, the mode restored with model.train(mode=True)",
       edits=(("estimate_loss_code", "@torch.no_grad()\n", ""),
              ("estimate_loss_code", _EL_BODY,
               "    out = {}\n    model.eval()\n    with torch.no_grad():\n        for split in [\"train\", \"val\"]:\n"
               "            losses = []\n            for _ in range(eval_iters):\n"
               "                xb, yb = get_batch_fn(split)\n                logits, loss = model(xb, yb)\n"
               "                losses.append(loss.item())\n            out[split] = sum(losses) / len(losses)\n"
               "    model.train(mode=True)\n    return out"))),
    _R("gen_block_from_position_table", "generate", "no self.block_size: generate and forward read the context "
       "length off the position table",
       edits=(("gpt_code", _GPT_BLOCK_ATTR + "        ", ""),
              ("gpt_code", _GPT_ASSERT, "assert T <= self.position_embedding_table.num_embeddings"),
              ("gpt_code", _GEN_CROP, "idx_cond = idx[:, -self.position_embedding_table.weight.shape[0]:]"))),
    _R("gen_global_block_size", "generate", "lecture style: generate crops with the notebook's global block_size",
       edits=(("gpt_code", _GEN_CROP, "idx_cond = idx[:, -block_size:]"),)),
    _R("nb_extra_cells_magics", "head", "a notebook with extra cells: magics, a shell line, a helper defined in a "
       "cell after the class that calls it, a demo cell",
       extra_cells=(("head_code", "%matplotlib inline\n!echo hello\ndef causal_mask(T, device=None):\n"
                     "    return torch.tril(torch.ones(T, T, device=device))\nprint(causal_mask(3))\n"),
                    ("tokenizer_code", "tok = CharTokenizer('hello world')\nprint(tok.encode('hello'))\n")),
       edits=(("head_code", _MASK_USE, 'wei = wei.masked_fill(causal_mask(T, x.device) == 0, float("-inf"))'),)),
    _R("train_lecture_loop", "train", "the lecture's loop: xb, yb names, zero_grad() without arguments, "
       "float(loss), a loop counter",
       edits=(("train_code", _TRAIN_BODY,
               "    lossi = []\n    for it in range(max_iters):\n        xb, yb = get_batch_fn('train')\n"
               "        logits, loss = model(xb, yb)\n        optimizer.zero_grad()\n        loss.backward()\n"
               "        optimizer.step()\n        lossi.append(float(loss))\n    return lossi"),)),
    _R("gb_randint_low_high_unfold", "get_batch", "starts drawn with torch.randint(0, high, size), windows by unfold",
       edits=(("get_batch_code", _GB_BODY,
               "ix = torch.randint(0, len(data) - block_size, size=(batch_size,))\n"
               "    windows = data.unfold(0, block_size + 1, 1)[ix]  # (B, T + 1)\n"
               "    x, y = windows[:, :-1], windows[:, 1:]"),)),
]

# Further alternatives, graded only when GPTLAB_BANK=full.
_EXTRA_IDS = {'head_einsum_values', 'gpt_pos_emb_weight_slice', 'block_named_residual', 'head_scale_query_first'}
EXTRA_ALTERNATIVES = [a for a in ALTERNATIVES if a.id in _EXTRA_IDS]
ALL_ALTERNATIVES = ALTERNATIVES + REWRITES
ALTERNATIVES = [a for a in ALL_ALTERNATIVES if a.id not in _EXTRA_IDS]

assert len({a.id for a in ALL_ALTERNATIVES}) == len(ALL_ALTERNATIVES), "alternative ids must be unique"
assert len(EXTRA_ALTERNATIVES) == len(_EXTRA_IDS), "an extra id names no alternative"
