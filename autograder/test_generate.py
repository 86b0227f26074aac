"""Part generate: ``GPTLanguageModel.generate``, run on the grader's oracle model (a subclass of the
submission's class with known next-token probabilities), so a broken forward costs nothing here."""

import torch

from autograder import sampling
from autograder.checking import expect, fail, need

PART = "generate"
BLOCK = 4


def test_generate_keeps_prompt(sub):
    """Output is (B, T + max_new_tokens) and starts with the prompt, unchanged."""
    need(sub, "GPTLanguageModel")
    sampling.check_keeps_prompt(sub, "GPTLanguageModel", BLOCK)


def test_generate_samples_softmax_of_last_position(sub):
    need(sub, "GPTLanguageModel")
    sampling.check_distribution(sub, "GPTLanguageModel", BLOCK)


def test_generate_crops_context_to_block_size(sub):
    """With a prompt longer than block_size, every forward sees exactly the last block_size tokens."""
    need(sub, "GPTLanguageModel")
    idx = sampling.prompt(2, BLOCK + 3, seed=5)
    model, out = sampling.generate(sub, "GPTLanguageModel", BLOCK, idx, 3)
    fed = model.get("fed")
    expect(isinstance(fed, list) and len(fed) >= 3, "generate should call the model once per new token")
    for step, seen in enumerate(fed[-3:]):
        context = out[:, : idx.shape[1] + step][:, -BLOCK:]
        if not (isinstance(seen, torch.Tensor) and torch.equal(seen, context)):
            fail(f"at step {step} the model was fed {getattr(seen, 'tolist', lambda: seen)()} but the last "
                 f"block_size={BLOCK} tokens were {context.tolist()}. Hint: idx_cond = idx[:, -block_size:]")


def test_generate_uses_torch_rng(sub):
    need(sub, "GPTLanguageModel")
    sampling.check_rng(sub, "GPTLanguageModel", BLOCK)


def test_generate_single_token_prompt(sub):
    need(sub, "GPTLanguageModel")
    sampling.check_single_token_prompt(sub, "GPTLanguageModel", BLOCK)
