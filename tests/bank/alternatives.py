"""Valid alternative implementations of the reference: each must get full marks in every part."""

from __future__ import annotations

from tests.bank import MHA_FORWARD as _MHA_FORWARD
from tests.bank import Alternative

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
    "        loss = F.cross_entropy(logits.view(B * T, V), targets.view(B * T))\n"
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
       "loss = F.cross_entropy(logits.view(B * T, V), targets.view(B * T))",
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
       "loss = F.cross_entropy(logits.view(B * T, C), targets.view(B * T))",
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

# Further alternatives, graded only when GPTLAB_BANK=full.
_EXTRA_IDS = {'head_einsum_values', 'gpt_pos_emb_weight_slice', 'block_named_residual', 'head_scale_query_first'}
EXTRA_ALTERNATIVES = [a for a in ALTERNATIVES if a.id in _EXTRA_IDS]
ALL_ALTERNATIVES = ALTERNATIVES
ALTERNATIVES = [a for a in ALL_ALTERNATIVES if a.id not in _EXTRA_IDS]

assert len({a.id for a in ALL_ALTERNATIVES}) == len(ALL_ALTERNATIVES), "alternative ids must be unique"
assert len(EXTRA_ALTERNATIVES) == len(_EXTRA_IDS), "an extra id names no alternative"
