"""Part generate: ``GPTLanguageModel.generate``, run on the grader's oracle model (a subclass of the
submission's class with known next-token probabilities), so a broken forward costs nothing here."""

from autograder.checks import sampling
from autograder.checks.verdicts import fails, need, owned_by
from autograder.i18n import N_

# The sampling checks run with a context that never reaches block_size, so that cropping (checked
# on its own, with CROP_BLOCK) cannot change their verdict: one cause, one failure.
BLOCK = 1024
CROP_BLOCK = 4


def test_generate_keeps_prompt(sub):
    """Output is (B, T + max_new_tokens) and starts with the prompt, unchanged."""
    need(sub, "GPTLanguageModel")
    sampling.check_keeps_prompt(sub, "GPTLanguageModel", BLOCK)


def test_generate_samples_softmax_of_last_position(sub):
    need(sub, "GPTLanguageModel")
    sampling.check_distribution(sub, "GPTLanguageModel", BLOCK)


# the sampling distribution is reported by 'samples softmax of last position' only (one failure per cause)
_SAMPLING = ("samples softmax of last position", fails(test_generate_samples_softmax_of_last_position,
                                                        N_("the generated tokens follow another distribution")))


def test_generate_crops_context_to_block_size(sub):
    """With prompts longer than block_size (and one shorter, growing past it), every forward sees
    exactly the last block_size tokens (read back from the output, see sampling.check_crop)."""
    need(sub, "GPTLanguageModel")
    with owned_by(sub, _SAMPLING):
        sampling.check_crop(sub, "GPTLanguageModel", CROP_BLOCK, CROP_BLOCK + 3, 4)
        sampling.check_crop(sub, "GPTLanguageModel", CROP_BLOCK + 1, 2, 6)


def test_generate_samples_one_row(sub):
    need(sub, "GPTLanguageModel")
    with owned_by(sub, _SAMPLING):
        sampling.check_distribution_one_row(sub, "GPTLanguageModel", BLOCK)


def test_generate_uses_torch_rng(sub):
    need(sub, "GPTLanguageModel")
    sampling.check_rng(sub, "GPTLanguageModel", BLOCK)


def test_generate_single_token_prompt(sub):
    need(sub, "GPTLanguageModel")
    sampling.check_single_token_prompt(sub, "GPTLanguageModel", BLOCK)
