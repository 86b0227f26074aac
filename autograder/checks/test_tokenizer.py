"""Part tokenizer: ``CharTokenizer`` (sorted vocabulary, encode, decode)."""

import torch
from hypothesis import given
from hypothesis import strategies as st

from autograder.checks.verdicts import expect, fail, fails, need, owned_by, their_lines
from autograder.engine.submission import SubmissionFailure
from autograder.i18n import tr

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\nAll: Speak, speak!\n"
ALPHABET = sorted(set(TEXT))


def _ids(value, what):
    if isinstance(value, torch.Tensor) and value.dim() == 1 and not value.is_floating_point():
        value = value.tolist()
    if not isinstance(value, (list, tuple)) or not all(isinstance(i, int) and not isinstance(i, bool) for i in value):
        fail(tr("{what} should return a list of ints, got {got}").format(what=what, got=type(value).__name__))
    return list(value)


def test_tokenizer_vocabulary_sorted(sub):
    """``chars`` is the sorted list of distinct characters and ``vocab_size`` its length."""
    need(sub, "CharTokenizer")
    tok = sub.new("CharTokenizer", TEXT)
    chars = tok.get("chars")
    if isinstance(chars, str):
        chars = list(chars)
    expect(isinstance(chars, list), tr("tokenizer.chars should be a list of characters, got {got}")
                                     .format(got=type(chars).__name__))
    expect(chars == ALPHABET, tr("tokenizer.chars: expected the {count} distinct characters in sorted order "
                                "{names!r}, got {got!r}")
                               .format(count=len(ALPHABET), names=''.join(ALPHABET), got=''.join(map(str, chars))))
    expect(tok.get("vocab_size") == len(ALPHABET),
           tr("tokenizer.vocab_size: expected {expected}, got {got!r}")
            .format(expected=len(ALPHABET), got=tok.get('vocab_size')))


def test_tokenizer_encode_is_index_in_vocabulary(sub):
    """``encode`` maps each character to its index in the sorted vocabulary."""
    need(sub, "CharTokenizer")
    with owned_by(sub, ("vocabulary sorted", fails(test_tokenizer_vocabulary_sorted, tr("tokenizer.chars is wrong")))):
        tok = sub.new("CharTokenizer", TEXT)
        sample = "hear me speak"
        got = _ids(tok.call("encode", sample), "encode")
        expected = [ALPHABET.index(c) for c in sample]
        expect(got == expected, tr("encode({sample!r}): expected {expected}, got {got}. Hint: a character's id is "
                                  "its position in the sorted list of characters")
                                 .format(sample=sample, expected=expected, got=got))


@given(st.text(alphabet=ALPHABET, max_size=40))
def test_tokenizer_round_trip(sub, s):
    """``decode(encode(s)) == s`` for every string over the vocabulary (also from a tensor of ids)."""
    need(sub, "CharTokenizer")
    tok = sub.new("CharTokenizer", TEXT)
    ids = _ids(tok.call("encode", s), "encode")
    expect(len(ids) == len(s), tr("encode({s!r}) returned {ids} ids for {characters} characters")
                                .format(s=s, ids=len(ids), characters=len(s)))
    back = tok.call("decode", ids)
    expect(back == s, tr("decode(encode({s!r})) gave {back!r}. Hint: decode must join every character, "
                        "none dropped")
                       .format(s=s, back=back))
    try:
        back = tok.call("decode", torch.tensor(ids, dtype=torch.long))
    except SubmissionFailure as exc:
        if exc.kind != "KeyError" or "tensor(" not in exc.message:
            raise
        # the usual cause: the dict is looked up with the tensor's elements, which are 0-d tensors
        fail(tr("{what} raised KeyError: {message}. Hint: ids may be a 1-D tensor, and the elements of a tensor "
                "are tensors (tensor(0)), not ints, so they are not keys of a dictionary of ints: decode must "
                "turn each id into an int before it looks it up (look at decode in CharTokenizer)")
             .format(what=exc.what, message=exc.message) + their_lines(exc))
    expect(back == s, tr("decode of a 1-D tensor of ids gave {back!r} instead of {s!r}").format(back=back, s=s))


def test_tokenizer_unknown_character_raises(sub):
    """A character outside the vocabulary raises KeyError or ValueError, never a silent id."""
    need(sub, "CharTokenizer")
    tok = sub.new("CharTokenizer", TEXT)
    try:
        got = tok.call("encode", "speak#")
    except Exception as exc:  # the submission's error, reported by the worker
        kind = getattr(exc, "kind", "")
        if kind in ("KeyError", "ValueError"):
            return
        raise
    fail(tr("encode('speak#') returned {got!r}: '#' is not in the vocabulary, so it should "
           "raise KeyError or ValueError")
          .format(got=got))
