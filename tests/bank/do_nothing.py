"""The do-nothing bank: per part, the reference with that part's work skipped but its shapes kept.

Each keeps at most a quarter of its part's points (the core check, the function the part
computes compared with an oracle or the reference, weighs most: ``[parts.<id>.weights]``) and
costs nothing in any other part. Asserted by tests/test_verdict_banks.py.
"""

from __future__ import annotations

from tests.bank import Rewrite

MAX_SHARE = 0.25  # of its part's points, at most

DO_NOTHING: list[Rewrite] = [
    Rewrite("nothing_tokenizer", "tokenizer", "encode maps every character to 0, decode repeats the first character",
            edits=(("tokenizer_code", "return [self.stoi[ch] for ch in s]", "return [0 for ch in s]"),
                   ("tokenizer_code", 'return "".join(self.itos[int(i)] for i in ids)',
                    'return "".join(self.chars[0] for i in ids)'))),
    Rewrite("nothing_get_batch", "get_batch", "batches of zeros of the right shape",
            edits=(("get_batch_code", "return x, y", "return torch.zeros_like(x), torch.zeros_like(y)"),)),
    Rewrite("nothing_bigram", "bigram", "uniform logits (the table never read) and tokens 0 appended",
            edits=(("bigram_code", "logits = self.token_embedding_table(idx)  # (B, T, C)",
                    "logits = torch.zeros(*idx.shape, self.token_embedding_table.weight.shape[0])"),
                   ("bigram_code", "idx_next = torch.multinomial(probs, num_samples=1)  # (B, 1)",
                    "idx_next = torch.zeros_like(idx[:, :1])"))),
    Rewrite("nothing_attention_trick", "attention_trick", "causal_average returns x, causal_softmax uniform weights",
            edits=(("attention_trick_code", "return wei @ x  # (T, T) @ (B, T, C) -> (B, T, C)", "return x.clone()"),
                   ("attention_trick_code",
                    'return F.softmax(scores.masked_fill(~tril, float("-inf")), dim=-1)  # (..., T, T) rows sum to 1',
                    "return torch.ones_like(scores) / T"))),
    Rewrite("nothing_head", "head", "forward returns the values, no attention",
            edits=(("head_code", "        out = wei @ v  # (B, T, T) @ (B, T, hs) -> (B, T, hs)\n        return out",
                    "        return v"),)),
    Rewrite("nothing_multihead", "multihead", "forward returns x",
            edits=(("multihead_code", "        out = self.dropout(self.proj(out))  # (B, T, C)\n        return out",
                    "        return x"),)),
    Rewrite("nothing_feedforward", "feedforward", "forward returns relu(x), the layers never used",
            edits=(("feedforward_code", "return self.net(x)  # (B, T, C)", "return F.relu(x)"),)),
    Rewrite("nothing_decoder_block", "decoder_block", "forward returns x",
            edits=(("decoder_block_code",
                    "x = x + self.sa(self.ln1(x))  # (B, T, C) communicate\n        x = x + self.ffwd(self.ln2(x))  # (B, T, C) compute\n",
                    ""),)),
    Rewrite("nothing_gpt", "gpt", "forward ignores the positions and the blocks",
            edits=(("gpt_code", "x = tok_emb + pos_emb  # (B, T, C) broadcast over B", "x = tok_emb"),
                   ("gpt_code", "x = self.blocks(x)  # (B, T, C)", "pass"))),
    Rewrite("nothing_generate", "generate", "appends token 0 at every step",
            edits=(("gpt_code", "idx_next = torch.multinomial(probs, num_samples=1)  # (B, 1) one sample per row",
                    "idx_next = torch.zeros_like(idx[:, :1])"),)),
    Rewrite("nothing_estimate_loss", "estimate_loss", "returns zeros without evaluating",
            edits=(("estimate_loss_code", "    out = {}\n", '    return {"train": 0.0, "val": 0.0}\n    out = {}\n'),)),
    Rewrite("nothing_train", "train", "a loop that computes the losses but never learns",
            edits=(("train_code", "optimizer.zero_grad(set_to_none=True)\n        loss.backward()\n        optimizer.step()",
                    "pass"),)),
    Rewrite("nothing_quiz", "quiz", "well-formed answers, every one wrong",
            edits=(("quiz_code", '{"q1": "b", "q2": "c", "q3": "a", "q4": "d"}',
                    '{"q1": "a", "q2": "a", "q3": "b", "q4": "a"}'),)),
]
