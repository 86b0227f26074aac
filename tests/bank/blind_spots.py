"""Blind spots met in a student walkthrough (issue 22), each caught in its own part with a message
that names the cause; and a false failure, now full marks. Asserted by tests/test_verdict_banks.py."""

from __future__ import annotations

from tests.bank import Alternative, Mutant

_FF_NET = ("self.net = nn.Sequential(\n            nn.Linear(n_embd, 4 * n_embd),\n            nn.ReLU(),\n"
           "            nn.Linear(4 * n_embd, n_embd),  # projection back into the residual stream\n"
           "            nn.Dropout(dropout),\n        )")

BLIND_SPOTS: list[Mutant] = [
    Mutant("blind_softmax_in_place", "attention_trick", "attention_trick_code",
           'return F.softmax(scores.masked_fill(~tril, float("-inf")), dim=-1)',
           'return F.softmax(scores.masked_fill_(~tril, float("-inf")), dim=-1)',
           "causal_softmax masks its input in place", expect="changed scores itself"),
    Mutant("blind_mask_plain_attribute", "head", "head_code",
           'self.register_buffer("tril", torch.tril(torch.ones(block_size, block_size)))',
           "self.tril = torch.tril(torch.ones(block_size, block_size))",
           "the causal mask a plain attribute, not a buffer", expect="plain tensor attribute"),
    Mutant("blind_train_tensor_losses", "train", "train_code",
           "losses.append(loss.item())", "losses.append(loss)",
           "train returns the losses as tensors carrying their graphs", expect="not Python floats"),
    Mutant("blind_estimate_loss_tensors", "estimate_loss", "estimate_loss_code",
           "out[split] = losses.mean().item()", "out[split] = losses.mean()",
           "estimate_loss returns 0-d tensors", expect="not Python floats"),
    Mutant("blind_positions_without_device", "gpt", "gpt_code",
           "torch.arange(T, device=idx.device)", "torch.arange(T)",
           "position ids created without idx's device (fatal on a GPU)", expect="device of idx"),
]

NOW_ACCEPTED: list[Alternative] = [
    Alternative("ff_named_layers", "feedforward", "feedforward_code", _FF_NET,
                "from collections import OrderedDict\n        self.net = nn.Sequential(OrderedDict(\n"
                "            fc=nn.Linear(n_embd, 4 * n_embd), act=nn.ReLU(),\n"
                "            proj=nn.Linear(4 * n_embd, n_embd), drop=nn.Dropout(dropout)))",
                "FeedForward's layers named in an OrderedDict"),
    Alternative("gpt_positions_moved", "gpt", "gpt_code",
                "torch.arange(T, device=idx.device)", "torch.arange(T).to(idx.device)",
                "position ids made on the CPU, then moved to idx's device"),
    Alternative("head_mask_in_forward", "head", "head_code",
                'wei = wei.masked_fill(self.tril[:T, :T] == 0, float("-inf"))',
                'wei = wei.masked_fill(torch.tril(torch.ones(T, T, device=x.device)) == 0, float("-inf"))',
                "the mask made in forward on x's device (the buffer unused)"),
]
