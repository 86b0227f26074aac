"""The bank of typical student mistakes: the bugs any course sees (shapes, masks, modes, RNG,
off-by-one, detached losses, missing softmax, wrong dims), one per edit of the reference.

Each mistake says which hint its part's message must contain (``hint``: a piece of the message a
student reads, naming the likely cause), whether a visible check catches it (``visible``: the
student sees it in the notebook's check cell, not only as lost points at grading time) and which
visible check reports it (``check``: one failure per cause; any other check of the part that fails
says "not measured" and names that one). tests/test_mistakes.py grades every mistake, asserts all
three, and asserts that at least 90% of the mistakes are caught by a visible check. Mistakes already in the mutant bank are taken from it by
id (the edit is written once); the others are written here.
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.bank import Edit
from tests.bank.mutants import ALL_MUTANTS


@dataclass(frozen=True)
class Mistake(Edit):
    hint: str = ""  # a piece of the message its part must give
    visible: bool = True  # a visible check (the notebook's check cell) catches it
    check: str = ""  # the one visible check that reports it (its name in the report, without the part)


_BY_ID = {m.id: m for m in ALL_MUTANTS}


def _known(mutant_id: str, hint: str, check: str = "", visible: bool = True) -> Mistake:
    m = _BY_ID[mutant_id]
    return Mistake(f"mk_{m.id}", m.part, m.cell_grade_id, m.old, m.new, m.why, hint=hint, visible=visible, check=check)


def _new(id: str, part: str, cell: str, old: str, new: str, why: str, hint: str, check: str = "",
         visible: bool = True) -> Mistake:
    return Mistake(f"mk_{id}", part, cell, old, new, why, hint=hint, visible=visible, check=check)


_GB_START = "ix = torch.randint(len(data) - block_size, (batch_size,))"
_DECODE = ('if isinstance(ids, torch.Tensor):\n            ids = ids.tolist()\n'
           '        return "".join(self.itos[int(i)] for i in ids)')

MISTAKES: list[Mistake] = [
    # -- tokenizer ---------------------------------------------------------------------------
    _known("tok_vocab_unsorted", "sorted", "vocabulary sorted"),
    _known("tok_decode_drops_last", "decode", "round trip"),
    _known("tok_unknown_silent", "KeyError", "unknown character raises"),
    _new("tok_decode_tensor_keys", "tokenizer", "tokenizer_code", _DECODE,
         'return "".join(self.itos[i] for i in ids)',
         "decode looks tensor elements up in itos (a 0-d tensor is not the int key)", "decode", "round trip"),
    # -- get_batch: off by one, shapes, RNG ----------------------------------------------------
    _new("gb_start_past_end", "get_batch", "get_batch_code", _GB_START,
         "ix = torch.randint(len(data) - block_size + 1, (batch_size,))",
         "off by one: starts up to len(data) - block_size, so y runs off the data", "ran past the end of the data",
         "windows and shifted targets"),
    _known("gb_start_range_short", "off-by-one", "uniform starts"),
    _known("gb_targets_not_shifted", "shifted", "windows and shifted targets"),
    _new("gb_targets_shifted_two", "get_batch", "get_batch_code",
         "y = torch.stack([data[i + 1:i + block_size + 1] for i in ix])",
         "y = torch.stack([data[i + 2:i + block_size + 2] for i in ix])",
         "targets shifted by two", "shifted by one", "windows and shifted targets"),
    _known("gb_python_random", "torch.randint", "uses torch rng"),
    _known("gb_starts_always_zero", "not random", "uses torch rng"),
    # -- bigram --------------------------------------------------------------------------------
    _known("bigram_ce_unflattened", "(B*T, C)", "loss is mean cross entropy"),
    _known("bigram_argmax", "sample", "generate samples softmax"),
    _known("bigram_first_position", "LAST position", "generate samples softmax"),
    # -- attention_trick: the mask, the normalisation, the softmax's dimension ------------------
    _new("trick_average_no_mask", "attention_trick", "attention_trick_code",
         "wei = torch.tril(torch.ones(T, T, dtype=x.dtype, device=x.device))",
         "wei = torch.ones(T, T, dtype=x.dtype, device=x.device)",
         "causal_average with no mask: every position averages the future too", "the future included",
         "average is running mean"),
    _new("trick_average_not_normalised", "attention_trick", "attention_trick_code",
         "    wei = wei / wei.sum(dim=1, keepdim=True)  # (T, T) each row sums to 1\n", "",
         "causal_average's rows not normalised: running sums, not means", "not normalised", "average is running mean"),
    _new("trick_softmax_no_mask", "attention_trick", "attention_trick_code",
         'F.softmax(scores.masked_fill(~tril, float("-inf")), dim=-1)', "F.softmax(scores, dim=-1)",
         "causal_softmax with no mask", "the future must get weight exactly 0", "softmax no future"),
    _new("trick_softmax_mask_zero", "attention_trick", "attention_trick_code",
         'scores.masked_fill(~tril, float("-inf"))', "scores.masked_fill(~tril, 0.0)",
         "the future masked with 0 instead of -inf: it still gets weight exp(0)", "exponential is 0", "softmax no future"),
    _new("trick_softmax_wrong_dim", "attention_trick", "attention_trick_code",
         'float("-inf")), dim=-1)', 'float("-inf")), dim=-2)',
         "causal_softmax normalises over the wrong dimension (the columns)", "dim=-1", "softmax rows sum to one"),
    # -- head: masks, scale, softmax, values, dropout -----------------------------------------
    _known("head_mask_not_sliced", "slice it to the first T rows", "output shape"),
    _known("head_masked_fill_discarded", "see the future", "attention rows average the past"),
    _known("head_mask_with_zero", "see the future", "attention rows average the past"),
    _known("head_triu_mask", "see the future", "attention rows average the past"),
    _known("head_mask_after_softmax", "softmax", "attention rows average the past"),
    _known("head_softmax_dim1", "dim=-1", "attention rows average the past"),
    _known("head_scale_n_embd", "n_embd ** -0.5", "scales by head size"),
    _known("head_no_scale", "no scaling", "scales by head size"),
    _new("head_values_from_key", "head", "head_code",
         "v = self.value(x)  # (B, T, hs)", "v = self.key(x)  # (B, T, hs)",
         "values computed with the key layer", "self.value", "values come from value layer"),
    _known("head_values_are_keys", "self.value", "values come from value layer"),
    _known("head_functional_dropout", "eval mode", "dropout only in train mode"),
    _new("head_no_dropout", "head", "head_code", "        wei = self.dropout(wei)\n", "",
         "dropout never applied to the attention weights", "apply self.dropout", "dropout only in train mode"),
    _known("head_qk_swapped", "previous position", "queries look for keys"),
    # -- feedforward ---------------------------------------------------------------------------
    _new("ff_gelu", "feedforward", "feedforward_code", "nn.ReLU(),", "nn.GELU(),",
         "GELU instead of the contract's ReLU", "GELU", "computes linear relu linear"),
    _new("ff_inner_residual", "feedforward", "feedforward_code",
         "return self.net(x)  # (B, T, C)", "return x + self.net(x)  # (B, T, C)",
         "a residual connection inside FeedForward", "belongs in DecoderBlock", "computes linear relu linear"),
    _known("ff_no_relu", "ReLU", "nonlinear"),
    _known("ff_no_dropout", "Dropout", "dropout only in train mode"),
    _known("ff_hidden_n_embd", "4 * n_embd", "layers"),
    # -- decoder_block -------------------------------------------------------------------------
    _known("block_no_residual_sa", "residual", "residual around attention"),
    _known("block_post_ln", "post-LN", "pre layernorm"),
    _known("block_shared_ln", "ln2", "pre layernorm"),
    # -- gpt -----------------------------------------------------------------------------------
    _new("gpt_arange_block_size", "gpt", "gpt_code",
         "torch.arange(T, device=idx.device)", "torch.arange(self.block_size, device=idx.device)",
         "positions 0 .. block_size - 1 whatever T", "torch.arange(T)", "logits"),
    _known("gpt_no_final_ln", "ln_f", "logits"),
    _known("gpt_pos_not_added", "position embeddings", "logits"),
    _known("gpt_ce_unflattened", "(B*T, C)", "loss"),
    # -- generate ------------------------------------------------------------------------------
    _known("gen_no_crop", "block_size", "crops context to block size"),
    _known("gen_raw_logits", "softmax", "samples softmax of last position"),
    _known("gen_softmax_dim0", "softmax", "samples softmax of last position"),
    _known("gen_first_position", "LAST position", "samples softmax of last position"),
    # -- estimate_loss: modes ------------------------------------------------------------------
    _known("el_no_eval", "evaluation mode", "eval mode without grad"),
    _known("el_left_in_eval", "back in train mode", "restores train mode"),
    _new("el_train_inside_loop", "estimate_loss", "estimate_loss_code",
         "        out[split] = losses.mean().item()\n    model.train()\n",
         "            model.train()\n        out[split] = losses.mean().item()\n",
         "model.train() inside the loop: every batch after the first is evaluated in train mode",
         "back to train mode", "eval mode without grad"),
    _known("el_last_loss", "mean", "means per split"),
    # -- train: order of the step, detached losses ---------------------------------------------
    _known("train_no_zero_grad", "never reset", "updates parameters"),
    _known("train_step_before_backward", "backward", "updates parameters"),
    _new("train_detached_loss", "train", "train_code",
         "_, loss = model(x, y)\n", "_, loss = model(x, y)\n        loss = loss.detach()\n",
         "the loss detached from the graph before backward", "detached", "updates parameters"),
    _known("train_no_backward", "backward", "updates parameters"),
    _known("train_val_batches", "validation batches", "updates parameters"),
    # -- quiz ----------------------------------------------------------------------------------
    _known("quiz_wrong_answer", "not the right answer", visible=False),
]
