"""Hidden checks: the submission against the reference solution, through weight transplant.

The submission's module is built in its worker with a fixed seed; its weights are copied into
the reference's module in this process, and both run the same input. Neither the reference's
code nor these checks are shown to students (absent from the handout; ``after_published`` on
Gradescope). Submodules that belong to other parts are the grader's stand-ins on both sides, so
each comparison stays within its own part.
"""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from autograder.checking import close, expect, need, tensor, transplant

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\nAll: Speak, speak!\n"


def _transplant(student, reference, what):
    transplant(student, reference, what)


# This file holds checks of several parts: each names its part with the ``part`` marker.
part = pytest.mark.part


@part("tokenizer")
@given(st.text(alphabet=sorted(set(TEXT)), min_size=1, max_size=30))
def test_tokenizer_matches_reference(sub, ref, s):
    need(sub, "CharTokenizer")
    got = sub.new("CharTokenizer", TEXT).call("encode", s)
    want = ref.new("CharTokenizer", TEXT).call("encode", s)
    expect(list(got) == list(want), f"encode({s!r}): expected {want}, got {got}")


@part("head")
@pytest.mark.parametrize("T", [8, 5])
def test_head_matches_reference(sub, ref, T):
    """Same weights, same input: outputs equal to atol 1e-5 (float32 matmul and softmax rounding).
    A Head that raises on T < block_size is reported by the visible 'output shape' check only."""
    from autograder.test_head import SHORT_OWNER, owned_by

    need(sub, "Head")
    with owned_by(sub, SHORT_OWNER):
        h = sub.new("Head", 16, 8, 8, 0.0, _seed=21).eval()
        r = ref.new("Head", 16, 8, 8, 0.0).eval()
        _transplant(h, r, "Head")
        x = torch.randn(3, T, 16, generator=torch.Generator().manual_seed(T))
        close(tensor(h(x), "Head.forward", shape=(3, T, 8)), r(x), f"Head output (T={T})", atol=1e-5)


@part("multihead")
def test_multihead_matches_reference(sub, ref):
    """Same weights, same input as the reference's MultiHeadAttention (atol 1e-5), with the
    grader's stand-in heads on both sides (so a wrong Head costs nothing here); a forward that
    reads its heads' internals is compared with its own heads against the composition of those
    heads' outputs through the reference's proj."""
    from autograder.test_multihead import C, HS, NH, BLOCK, STAND_IN, run_forward

    x = torch.randn(2, 6, C, generator=torch.Generator().manual_seed(1))
    mha, got, state, parts = run_forward(sub, x)
    if any(k.startswith("heads.0.lin.") for k in state):
        r = ref.new("MultiHeadAttention", C, NH, HS, BLOCK, 0.0, _stubs=STAND_IN).eval()
        _transplant(mha, r, "MultiHeadAttention")
        close(tensor(got, "MultiHeadAttention.forward", shape=(2, 6, C)), r(x), "MultiHeadAttention output", atol=1e-5)
        return
    r = ref.new("MultiHeadAttention", C, NH, HS, BLOCK, 0.0).eval()
    _transplant(mha, r, "MultiHeadAttention")
    want = r.get("proj")(torch.cat(parts, dim=-1))
    close(tensor(got, "MultiHeadAttention.forward", shape=(2, 6, C)), want, "MultiHeadAttention output", atol=1e-5)


@part("feedforward")
def test_feedforward_matches_reference(sub, ref):
    need(sub, "FeedForward")
    f = sub.new("FeedForward", 8, 0.0, _seed=23).eval()
    r = ref.new("FeedForward", 8, 0.0).eval()
    _transplant(f, r, "FeedForward")
    x = torch.randn(2, 5, 8, generator=torch.Generator().manual_seed(2))
    close(tensor(f(x), "FeedForward.forward", shape=(2, 5, 8)), r(x), "FeedForward output", atol=1e-5)


@part("gpt")
def test_gpt_matches_reference(sub, ref):
    """With stand-in blocks on both sides: logits and loss equal to atol 1e-5."""
    need(sub, "GPTLanguageModel")
    stubs = {"DecoderBlock": "ProbeBlock"}
    m = sub.new("GPTLanguageModel", 13, 8, 2, 2, 6, 0.0, _seed=24, _stubs=stubs).eval()
    r = ref.new("GPTLanguageModel", 13, 8, 2, 2, 6, 0.0, _stubs=stubs).eval()
    _transplant(m, r, "GPTLanguageModel")
    g = torch.Generator().manual_seed(3)
    idx, targets = torch.randint(13, (2, 4), generator=g), torch.randint(13, (2, 4), generator=g)
    logits, loss = m(idx, targets)
    want_logits, want_loss = r(idx, targets)
    close(tensor(logits, "logits").reshape(want_logits.shape), want_logits, "logits", atol=1e-5)
    close(torch.tensor(float(loss)), torch.tensor(float(want_loss)), "loss", atol=1e-5)


@part("quiz")
@pytest.mark.parametrize("question", ["q1", "q2", "q3", "q4"])
def test_quiz_answer(sub, ref, question):
    from autograder.test_quiz import read_answers

    answers = read_answers(sub)
    key = ref.get("quiz_answers")
    got = str(answers.get(question, "")).strip().lower()
    expect(got == key[question], f"{question}: {got or 'no answer'} is not the right answer")


def _replay_training(stream, iters: int):
    """A correct loop over the grader's objects, in the grading process: (final state, losses)."""
    from autograder.objects import RecordingSGD, TinyLM
    from autograder.test_train import LR, SEED, V

    model = TinyLM(V, SEED)
    opt = RecordingSGD(model, LR, events=[])
    losses = []
    for _ in range(iters):
        x, y = stream("train")
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return {k: v.detach().clone() for k, v in model.state_dict().items()}, losses


@part("train")
def test_train_matches_a_correct_loop(sub, ref):
    """The parameters after max_iters steps and the returned losses equal a correct loop's on the
    same batches (atol 1e-5: float32 SGD over 6 steps)."""
    from autograder.objects import BatchStream
    from autograder.test_train import ITERS, STREAM, diagnose, run

    model, _, losses = run(sub)
    expected, want = _replay_training(BatchStream(*STREAM), ITERS)
    hint = diagnose(model.get("events"))
    state = model.state_dict()
    for name, value in expected.items():
        close(state[name], value, f"parameter {name} after {ITERS} steps", atol=1e-5, hint=hint)
    got = torch.tensor([float(v) for v in losses], dtype=torch.float64) if isinstance(losses, list) else None
    expect(got is not None and len(got) == ITERS, "train should return one loss per step")
    close(got, torch.tensor(want, dtype=torch.float64), "returned losses", atol=1e-5)
