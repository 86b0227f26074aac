"""The mutant bank: the reference with one realistic student bug each.

Each mutant must lose points in its own part (the part of the cell it edits; GPT.generate is the
``generate`` part although it lives in the ``gpt_code`` cell) and in no other part.
"""

from __future__ import annotations

from tests.bank import EL_BODY as _EL_BODY
from tests.bank import MHA_FORWARD as _MHA_FORWARD
from tests.bank import Mutant, Rewrite

_M = Mutant

# -- multi-line snippets of the reference, reused below ---------------------------------------

_HEAD_MASK = 'wei = wei.masked_fill(self.tril[:T, :T] == 0, float("-inf"))'
_HEAD_MASK_SOFTMAX = (
    'wei = wei.masked_fill(self.tril[:T, :T] == 0, float("-inf"))  # (B, T, T) causal mask\n'
    "        wei = F.softmax(wei, dim=-1)"
)
# A batched MultiHeadAttention.forward that reads the heads' own weights, but splits the
# projected (B, T, H*hs) tensor into heads with a plain view(B, H, T, hs): that mixes time steps
# and heads (the right split is view(B, T, H, hs).transpose(1, 2)).
_MHA_BATCHED_WRONG = """B, T, C = x.shape
        H = len(self.heads)
        hs = self.heads[0].key.weight.shape[0]
        wk = torch.cat([h.key.weight for h in self.heads], dim=0)  # (H*hs, C)
        wq = torch.cat([h.query.weight for h in self.heads], dim=0)
        wv = torch.cat([h.value.weight for h in self.heads], dim=0)
        k = (x @ wk.T).view(B, H, T, hs)
        q = (x @ wq.T).view(B, H, T, hs)
        v = (x @ wv.T).view(B, H, T, hs)
        wei = q @ k.transpose(-2, -1) * hs ** -0.5  # (B, H, T, T)
        wei = wei.masked_fill(self.heads[0].tril[:T, :T] == 0, float("-inf"))
        wei = F.softmax(wei, dim=-1)
        out = (wei @ v).transpose(1, 2).reshape(B, T, H * hs)
        return self.dropout(self.proj(out))"""
_BLOCK = "x = x + self.sa(self.ln1(x))  # (B, T, C) communicate\n        x = x + self.ffwd(self.ln2(x))  # (B, T, C) compute"
_TRAIN_STEP = "optimizer.zero_grad(set_to_none=True)\n        loss.backward()\n        optimizer.step()"
_GB_START = "ix = torch.randint(len(data) - block_size, (batch_size,))"

MUTANTS: list[Mutant] = [  # the default bank is this list minus _EXTRA_IDS below
    # -- tokenizer ---------------------------------------------------------------------------
    _M("tok_vocab_unsorted", "tokenizer", "tokenizer_code",
       "self.chars = sorted(set(text))", "self.chars = list(dict.fromkeys(text))",
       "vocabulary in order of first appearance, not sorted"),
    _M("tok_decode_drops_last", "tokenizer", "tokenizer_code",
       'return "".join(self.itos[int(i)] for i in ids)', 'return "".join(self.itos[int(i)] for i in ids[:-1])',
       "decode drops the last character"),
    _M("tok_decode_skips_id0", "tokenizer", "tokenizer_code",
       'return "".join(self.itos[int(i)] for i in ids)',
       'return "".join(self.itos[int(i)] for i in ids if int(i) != 0)',
       "decode drops every character with id 0 (the newline)"),
    _M("tok_unknown_silent", "tokenizer", "tokenizer_code",
       "return [self.stoi[ch] for ch in s]", "return [self.stoi.get(ch, 0) for ch in s]",
       "encode maps an unknown character to 0 instead of raising"),
    _M("tok_vocab_size_off", "tokenizer", "tokenizer_code",
       "self.vocab_size = len(self.chars)", "self.vocab_size = len(self.chars) + 1",
       "vocab_size off by one"),
    # -- get_batch ---------------------------------------------------------------------------
    _M("gb_start_range_short", "get_batch", "get_batch_code",
       _GB_START, "ix = torch.randint(len(data) - block_size - 1, (batch_size,))",
       "off by one: the last valid start is never drawn"),
    _M("gb_start_range_long", "get_batch", "get_batch_code",
       _GB_START, "ix = torch.randint(len(data) - block_size + 1, (batch_size,))",
       "off by one: a start past the last valid one (y runs off the data)"),
    _M("gb_targets_not_shifted", "get_batch", "get_batch_code",
       "y = torch.stack([data[i + 1:i + block_size + 1] for i in ix])",
       "y = torch.stack([data[i:i + block_size] for i in ix])",
       "targets not shifted (y == x)"),
    _M("gb_starts_always_zero", "get_batch", "get_batch_code",
       _GB_START, "ix = torch.zeros(batch_size, dtype=torch.long)",
       "every window starts at 0"),
    _M("gb_fixed_stride", "get_batch", "get_batch_code",
       _GB_START, "ix = (torch.arange(batch_size) * block_size) % (len(data) - block_size)",
       "starts on a fixed stride, not random"),
    _M("gb_python_random", "get_batch", "get_batch_code",
       _GB_START,
       "ix = [__import__('random').randint(0, len(data) - block_size - 1) for _ in range(batch_size)]",
       "starts drawn with Python's random, not torch's RNG"),
    # -- bigram (bonus) ----------------------------------------------------------------------
    _M("bigram_ce_unflattened", "bigram", "bigram_code",
       "loss = F.cross_entropy(logits.reshape(B * T, C), targets.reshape(B * T))",
       "loss = F.cross_entropy(logits, targets)",
       "cross-entropy on (B, T, C) logits"),
    _M("bigram_loss_sum", "bigram", "bigram_code",
       "loss = F.cross_entropy(logits.reshape(B * T, C), targets.reshape(B * T))",
       "loss = F.cross_entropy(logits.view(B * T, C), targets.view(B * T), reduction='sum')",
       "summed instead of mean cross-entropy"),
    _M("bigram_argmax", "bigram", "bigram_code",
       "idx_next = torch.multinomial(probs, num_samples=1)  # (B, 1)",
       "idx_next = torch.argmax(probs, dim=-1, keepdim=True)  # (B, 1)",
       "greedy argmax instead of sampling"),
    _M("bigram_first_position", "bigram", "bigram_code",
       "logits = logits[:, -1, :]", "logits = logits[:, 0, :]",
       "generate reads the first position's logits"),
    _M("bigram_drops_prompt", "bigram", "bigram_code",
       "idx = torch.cat((idx, idx_next), dim=1)  # (B, T+1)",
       "idx = torch.cat((idx[:, 1:], idx_next), dim=1)  # (B, T)",
       "generate slides a window: the prompt is dropped"),
    # -- head ----------------------------------------------------------------------------------
    _M("head_scale_n_embd", "head", "head_code",
       "* k.shape[-1] ** -0.5", "* C ** -0.5",
       "scores scaled by n_embd ** -0.5 instead of head_size ** -0.5"),
    _M("head_no_scale", "head", "head_code",
       "wei = q @ k.transpose(-2, -1) * k.shape[-1] ** -0.5", "wei = q @ k.transpose(-2, -1)",
       "scores not scaled"),
    _M("head_mask_not_sliced", "head", "head_code",
       _HEAD_MASK, 'wei = wei.masked_fill(self.tril == 0, float("-inf"))',
       "mask not sliced to T (fails for T < block_size)"),
    _M("head_masked_fill_discarded", "head", "head_code",
       _HEAD_MASK, 'wei.masked_fill(self.tril[:T, :T] == 0, float("-inf"))',
       "masked_fill's result discarded: no mask"),
    _M("head_mask_with_zero", "head", "head_code",
       _HEAD_MASK, "wei = wei.masked_fill(self.tril[:T, :T] == 0, 0.0)",
       "masked with 0 instead of -inf (the future still gets weight)"),
    _M("head_triu_mask", "head", "head_code",
       'self.register_buffer("tril", torch.tril(torch.ones(block_size, block_size)))\n        self.dropout',
       'self.register_buffer("tril", torch.triu(torch.ones(block_size, block_size)))\n        self.dropout',
       "upper-triangular mask: attends to the future"),
    _M("head_inverted_mask", "head", "head_code",
       _HEAD_MASK, 'wei = wei.masked_fill(self.tril[:T, :T] == 1, float("-inf"))',
       "inverted mask (masks the past and present)"),
    _M("head_mask_after_softmax", "head", "head_code",
       _HEAD_MASK_SOFTMAX,
       "wei = F.softmax(wei, dim=-1)\n        wei = wei.masked_fill(self.tril[:T, :T] == 0, 0.0)",
       "masking after the softmax: rows no longer sum to 1"),
    _M("head_softmax_dim1", "head", "head_code",
       "wei = F.softmax(wei, dim=-1)", "wei = F.softmax(wei, dim=1)",
       "softmax over the queries (dim 1), not the keys"),
    _M("head_softmax_no_dim", "head", "head_code",
       "wei = F.softmax(wei, dim=-1)", "wei = F.softmax(wei)",
       "softmax with no dim (implicit dim 0 on a 3-D tensor: over the batch)"),
    _M("head_functional_dropout", "head", "head_code",
       "wei = self.dropout(wei)", "wei = F.dropout(wei, p=self.dropout.p, training=True)",
       "functional dropout that ignores eval mode"),
    _M("head_qk_swapped", "head", "head_code",
       "wei = q @ k.transpose(-2, -1) * k.shape", "wei = k @ q.transpose(-2, -1) * k.shape",
       "scores k q^T (transposed attention) instead of q k^T"),
    _M("head_values_are_keys", "head", "head_code",
       "out = wei @ v", "out = wei @ k",
       "weights applied to the keys instead of the values"),
    # -- multihead -----------------------------------------------------------------------------
    _M("mha_python_list", "multihead", "multihead_code",
       "self.heads = nn.ModuleList([Head(n_embd, head_size, block_size, dropout) for _ in range(num_heads)])",
       "self.heads = [Head(n_embd, head_size, block_size, dropout) for _ in range(num_heads)]",
       "heads kept in a Python list (not registered)"),
    _M("mha_same_head_repeated", "multihead", "multihead_code",
       "nn.ModuleList([Head(n_embd, head_size, block_size, dropout) for _ in range(num_heads)])",
       "nn.ModuleList([Head(n_embd, head_size, block_size, dropout)] * num_heads)",
       "one Head object repeated in the ModuleList"),
    _M("mha_proj_n_embd", "multihead", "multihead_code",
       "self.proj = nn.Linear(num_heads * head_size, n_embd)", "self.proj = nn.Linear(n_embd, n_embd)",
       "projection sized n_embd instead of num_heads * head_size"),
    _M("mha_cat_wrong_dim", "multihead", "multihead_code",
       "out = torch.cat([h(x) for h in self.heads], dim=-1)", "out = torch.cat([h(x) for h in self.heads], dim=1)",
       "heads concatenated on the time dim"),
    _M("mha_batched_wrong_split", "multihead", "multihead_code",
       _MHA_FORWARD, _MHA_BATCHED_WRONG,
       "batched forward from the heads' weights, split into heads with view(B, H, T, hs)"),
    # -- feedforward ---------------------------------------------------------------------------
    _M("ff_no_relu", "feedforward", "feedforward_code",
       "nn.ReLU(),", "nn.Identity(),", "no non-linearity"),
    _M("ff_no_dropout", "feedforward", "feedforward_code",
       "nn.Dropout(dropout),", "nn.Identity(),", "no dropout layer"),
    _M("ff_hidden_n_embd", "feedforward", "feedforward_code",
       "nn.Linear(n_embd, 4 * n_embd),\n            nn.ReLU(),\n            nn.Linear(4 * n_embd, n_embd),",
       "nn.Linear(n_embd, n_embd),\n            nn.ReLU(),\n            nn.Linear(n_embd, n_embd),",
       "hidden layer of n_embd instead of 4 * n_embd"),
    # -- decoder_block -------------------------------------------------------------------------
    _M("block_no_residual_sa", "decoder_block", "decoder_block_code",
       "x = x + self.sa(self.ln1(x))", "x = self.sa(self.ln1(x))", "no residual around the attention"),
    _M("block_no_residual_ffwd", "decoder_block", "decoder_block_code",
       "x = x + self.ffwd(self.ln2(x))", "x = self.ffwd(self.ln2(x))", "no residual around the feed-forward"),
    _M("block_post_ln", "decoder_block", "decoder_block_code",
       _BLOCK, "x = self.ln1(x + self.sa(x))\n        x = self.ln2(x + self.ffwd(x))",
       "post-LN instead of pre-LN"),
    _M("block_shared_ln", "decoder_block", "decoder_block_code",
       "x = x + self.ffwd(self.ln2(x))", "x = x + self.ffwd(self.ln1(x))", "ln1 reused before the feed-forward"),
    # -- gpt (forward) -------------------------------------------------------------------------
    _M("gpt_no_final_ln", "gpt", "gpt_code",
       "x = self.ln_f(x)  # (B, T, C)", "pass  # no final LayerNorm", "missing final LayerNorm"),
    _M("gpt_pos_table_vocab", "gpt", "gpt_code",
       "self.position_embedding_table = nn.Embedding(block_size, n_embd)",
       "self.position_embedding_table = nn.Embedding(vocab_size, n_embd)",
       "position table sized by the vocabulary"),
    _M("gpt_pos_not_added", "gpt", "gpt_code",
       "x = tok_emb + pos_emb", "x = tok_emb", "position embeddings not added"),
    _M("gpt_pos_all_zero", "gpt", "gpt_code",
       "torch.arange(T, device=idx.device)", "torch.zeros(T, dtype=torch.long, device=idx.device)",
       "every position looks up position 0 (positions not offset)"),
    _M("gpt_pos_from_end", "gpt", "gpt_code",
       "pos_emb = self.position_embedding_table(torch.arange(T, device=idx.device))",
       "pos_emb = self.position_embedding_table.weight[-T:]",
       "positions aligned to the end of the table (wrong for T < block_size)"),
    _M("gpt_no_blocks", "gpt", "gpt_code",
       "x = self.blocks(x)  # (B, T, C)", "pass  # blocks skipped", "the blocks are never applied"),
    _M("gpt_ce_unflattened", "gpt", "gpt_code",
       "loss = F.cross_entropy(logits.reshape(B * T, V), targets.reshape(B * T))",
       "loss = F.cross_entropy(logits, targets)",
       "cross-entropy on unflattened (B, T, V) logits"),
    _M("gpt_ce_transposed_view", "gpt", "gpt_code",
       "loss = F.cross_entropy(logits.reshape(B * T, V), targets.reshape(B * T))",
       "loss = F.cross_entropy(logits.transpose(0, 1).reshape(B * T, V), targets.view(B * T))",
       "logits flattened in (T, B) order but targets in (B, T) order"),
    # -- generate ------------------------------------------------------------------------------
    _M("gen_no_crop", "generate", "gpt_code",
       "idx_cond = idx[:, -self.block_size:]", "idx_cond = idx", "no crop to the last block_size tokens"),
    _M("gen_crop_first", "generate", "gpt_code",
       "idx_cond = idx[:, -self.block_size:]", "idx_cond = idx[:, :self.block_size]",
       "crops to the FIRST block_size tokens"),
    _M("gen_first_position", "generate", "gpt_code",
       "logits = logits[:, -1, :]", "logits = logits[:, 0, :]", "reads the first position's logits"),
    _M("gen_raw_logits", "generate", "gpt_code",
       "probs = F.softmax(logits, dim=-1)  # (B, V)", "probs = logits  # (B, V)",
       "samples from the raw logits"),
    _M("gen_temperature_half", "generate", "gpt_code",
       "probs = F.softmax(logits, dim=-1)  # (B, V)", "probs = F.softmax(2 * logits, dim=-1)  # (B, V)",
       "samples at temperature 0.5"),
    _M("gen_softmax_dim0", "generate", "gpt_code",
       "probs = F.softmax(logits, dim=-1)  # (B, V)", "probs = F.softmax(logits, dim=0)  # (B, V)",
       "softmax over the batch"),
    _M("gen_argmax", "generate", "gpt_code",
       "idx_next = torch.multinomial(probs, num_samples=1)  # (B, 1) one sample per row",
       "idx_next = torch.argmax(probs, dim=-1, keepdim=True)  # (B, 1)",
       "greedy argmax instead of sampling"),
    _M("gen_drops_prompt", "generate", "gpt_code",
       "idx = torch.cat((idx, idx_next), dim=1)  # (B, T+1)",
       "idx = torch.cat((idx_cond, idx_next), dim=1)  # (B, T'+1)",
       "appends to the cropped context: a long prompt is cut"),
    _M("gen_prepends", "generate", "gpt_code",
       "idx = torch.cat((idx, idx_next), dim=1)  # (B, T+1)",
       "idx = torch.cat((idx_next, idx), dim=1)  # (B, T+1)",
       "new tokens prepended: the prompt is shifted"),
    _M("gen_returns_new_only", "generate", "gpt_code",
       "        return idx\n", "        return idx[:, -max_new_tokens:]\n",
       "returns only the new tokens"),
    # -- estimate_loss -------------------------------------------------------------------------
    _M("el_no_eval", "estimate_loss", "estimate_loss_code",
       "model.eval()", "pass  # no model.eval()", "evaluation in train mode"),
    _M("el_left_in_eval", "estimate_loss", "estimate_loss_code",
       "model.train()", "pass  # no model.train()", "model left in eval mode"),
    _M("el_no_no_grad", "estimate_loss", "estimate_loss_code",
       "@torch.no_grad()\n", "", "estimate_loss without no_grad"),
    _M("el_last_loss", "estimate_loss", "estimate_loss_code",
       "out[split] = losses.mean().item()", "out[split] = loss.item()", "the last batch's loss, not the mean"),
    _M("el_train_split_only", "estimate_loss", "estimate_loss_code",
       "x, y = get_batch_fn(split)", 'x, y = get_batch_fn("train")', "both splits evaluated on train batches"),
    # -- train ---------------------------------------------------------------------------------
    _M("train_no_zero_grad", "train", "train_code",
       "optimizer.zero_grad(set_to_none=True)", "pass  # no zero_grad", "gradients never reset"),
    _M("train_step_before_backward", "train", "train_code",
       "loss.backward()\n        optimizer.step()", "optimizer.step()\n        loss.backward()",
       "optimizer.step() before loss.backward()"),
    _M("train_no_backward", "train", "train_code",
       "loss.backward()", "pass  # no backward", "no backward pass"),
    _M("train_zero_grad_before_step", "train", "train_code",
       _TRAIN_STEP, "loss.backward()\n        optimizer.zero_grad(set_to_none=True)\n        optimizer.step()",
       "gradients reset between backward and step: no update"),
    _M("train_val_batches", "train", "train_code",
       'x, y = get_batch_fn("train")', 'x, y = get_batch_fn("val")', "trains on validation batches"),
    # -- quiz ------------------------------------------------------------------------------------
    _M("quiz_wrong_answer", "quiz", "quiz_code",
       '"q1": "b"', '"q1": "a"', "a wrong quiz answer"),
]

# -- issue 12: wrong code that a check looking at one size, one mode or one batch shape let
# through, and dodges of the grader's objects; each with a piece of the message its part gives.
_R = Rewrite
_GEN_SAMPLE = "idx_next = torch.multinomial(probs, num_samples=1)  # (B, 1) one sample per row"
_GPT_CE = "loss = F.cross_entropy(logits.reshape(B * T, V), targets.reshape(B * T))"

NEW_MUTANTS: list = [
    _M("head_scale_constant_8", "head", "head_code",
       "* k.shape[-1] ** -0.5", "* 8 ** -0.5",
       "scores scaled by a constant that equals head_size ** -0.5 only for head size 8", expect="scaled by"),
    _M("head_scale_constant_sqrt", "head", "head_code",
       "* k.shape[-1] ** -0.5", "/ 2.8284271",
       "scores divided by sqrt(8) written as a number", expect="head_size ** -0.5"),
    _M("head_mask_hardcoded_block8", "head", "head_code",
       'wei = wei.masked_fill(self.tril[:T, :T] == 0, float("-inf"))',
       'wei = wei.masked_fill(torch.tril(torch.ones(8, 8))[:T, :T] == 0, float("-inf"))',
       "a causal mask of a fixed size 8: wrong for block_size > 8", expect="raised RuntimeError"),
    _M("gen_greedy_one_row", "generate", "gpt_code", _GEN_SAMPLE,
       "idx_next = torch.argmax(probs, dim=-1, keepdim=True) if idx.shape[0] == 1 else torch.multinomial(probs, 1)",
       "greedy decoding when the batch has one row", expect="batch of one row"),
    _M("gen_crop_one_short", "generate", "gpt_code",
       "idx_cond = idx[:, -self.block_size:]", "idx_cond = idx[:, -(self.block_size - 1):]",
       "crops to block_size - 1 tokens", expect="last block_size tokens"),
    _M("gen_crop_from_start_when_long", "generate", "gpt_code",
       "idx_cond = idx[:, -self.block_size:]",
       "idx_cond = idx if idx.shape[1] <= self.block_size else idx[:, 1:self.block_size + 1]",
       "a long context cropped to a window that is not the last one", expect="last block_size tokens"),
    _M("bigram_greedy_one_row", "bigram", "bigram_code",
       "idx_next = torch.multinomial(probs, num_samples=1)  # (B, 1)",
       "idx_next = probs.argmax(-1, keepdim=True) if len(idx) == 1 else torch.multinomial(probs, 1)",
       "bigram generate greedy when the batch has one row", expect="batch of one row"),
    _M("el_reads_grader_batches", "estimate_loss", "estimate_loss_code", _EL_BODY,
       "    vals = get_batch_fn.values\n"
       "    return {s: sum(vals[s][:eval_iters]) / 100 / eval_iters for s in (\"train\", \"val\")}",
       "estimate_loss reads the grader's batch objects instead of calling the model", expect="estimate_loss"),
    _M("el_sum_not_mean", "estimate_loss", "estimate_loss_code",
       "out[split] = losses.mean().item()", "out[split] = losses.sum().item()",
       "the sum of the losses, not their mean", expect="the mean loss of eval_iters"),
    _M("el_grad_in_eval", "estimate_loss", "estimate_loss_code",
       "@torch.no_grad()\n", "@torch.enable_grad()\n",
       "autograd switched on during evaluation", expect="autograd was recording"),
    _M("gpt_loss_sum", "gpt", "gpt_code", _GPT_CE,
       "loss = F.cross_entropy(logits.view(B * T, V), targets.view(B * T), reduction=\"sum\")",
       "summed instead of mean cross-entropy", expect="loss (batch of 2)"),
    _M("gpt_loss_first_row", "gpt", "gpt_code", _GPT_CE,
       "loss = F.cross_entropy(logits[0], targets[0])",
       "the loss of the first sequence only: right for a batch of one", expect="loss (batch of 2)"),
    _M("mha_proj_no_bias", "multihead", "multihead_code",
       "self.proj = nn.Linear(num_heads * head_size, n_embd)",
       "self.proj = nn.Linear(num_heads * head_size, n_embd, bias=False)",
       "projection without its bias", expect="proj.bias"),
    _M("mha_first_head_repeated", "multihead", "multihead_code",
       "out = torch.cat([h(x) for h in self.heads], dim=-1)",
       "out = torch.cat([self.heads[0](x) for h in self.heads], dim=-1)",
       "the first head's output used for every head", expect="MultiHeadAttention output"),
    _M("ff_gelu", "feedforward", "feedforward_code", "nn.ReLU(),", "nn.GELU(),",
       "GELU instead of the contract's ReLU", expect="FeedForward output"),
    _R("tok_decode_list_only", "tokenizer", "decode works on a list only: a tensor's elements are looked up "
       "in the dict as tensors", edits=(("tokenizer_code", "ids = ids.tolist()", "pass"),
                                        ("tokenizer_code", "self.itos[int(i)] for i in ids", "self.itos[i] for i in ids")),
       expect="decode(ids=a tensor of shape"),
    _M("tok_stoi_from_one", "tokenizer", "tokenizer_code",
       "self.stoi = {ch: i for i, ch in enumerate(self.chars)}",
       "self.stoi = {ch: i for i, ch in enumerate(self.chars, 1)}",
       "ids counted from 1 in stoi only", expect="encode"),
    _M("gb_targets_rolled", "get_batch", "get_batch_code",
       "y = torch.stack([data[i + 1:i + block_size + 1] for i in ix])  # (B, T)",
       "y = torch.roll(x, -1, dims=1)  # (B, T)",
       "targets by rolling x: the last target wraps round", expect="expected y"),
    _M("train_running_mean", "train", "train_code",
       "losses.append(loss.item())", "losses.append((sum(losses) + loss.item()) / (len(losses) + 1))",
       "returns the running mean of the losses", expect="loss 1"),
    _M("block_ln_swapped", "decoder_block", "decoder_block_code",
       "x = x + self.sa(self.ln1(x))  # (B, T, C) communicate\n        x = x + self.ffwd(self.ln2(x))",
       "x = x + self.sa(self.ln2(x))  # (B, T, C) communicate\n        x = x + self.ffwd(self.ln1(x))",
       "ln1 and ln2 swapped", expect="swapped"),
    _R("py_head_no_scale", "head", "a .py module (BOM, CRLF) whose Head does not scale its scores",
       form="py-bom-crlf", edits=(("head_code", "wei = q @ k.transpose(-2, -1) * k.shape[-1] ** -0.5",
                                   "wei = q @ k.transpose(-2, -1)"),), expect="no scaling"),
    _R("py_feedforward_misnamed", "feedforward", "a .py module that names its FeedForward class FeedFwd",
       form="py", edits=(("feedforward_code", "class FeedForward(nn.Module):", "class FeedFwd(nn.Module):"),),
       expect="not defined by the module"),
]

# Further mutants, graded only when GPTLAB_BANK=full (each one costs a grading run, ~8 s of CPU).
_EXTRA_IDS = {
    'tok_vocab_size_off',
    'tok_decode_skips_id0',
    'gb_start_range_long',
    'bigram_loss_sum',
    'bigram_first_position',
    'head_values_are_keys',
    'ff_hidden_n_embd',
    'block_shared_ln',
    'gpt_no_blocks',
    'gen_crop_first',
    'gen_softmax_dim0',
    'el_train_split_only',
    'train_val_batches',
    'gpt_pos_from_end',
    'gen_returns_new_only',
}
EXTRA_MUTANTS = [m for m in MUTANTS if m.id in _EXTRA_IDS]
ALL_MUTANTS = MUTANTS + NEW_MUTANTS
MUTANTS = [m for m in ALL_MUTANTS if m.id not in _EXTRA_IDS]

assert len({m.id for m in ALL_MUTANTS}) == len(ALL_MUTANTS), "mutant ids must be unique"
assert len(EXTRA_MUTANTS) == len(_EXTRA_IDS), "an extra id names no mutant"
