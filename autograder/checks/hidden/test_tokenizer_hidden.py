"""Hidden checks of part tokenizer: encode agrees with the reference tokenizer on random strings of the corpus alphabet.

Never in the student handout and never visible to the worker (see ``autograder/checks/hidden/__init__.py``);
each compares the submission with the reference solution, running in the grading process.
"""



from hypothesis import given
from hypothesis import strategies as st

from autograder.checks.verdicts import expect, need

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\nAll: Speak, speak!\n"


@given(st.text(alphabet=sorted(set(TEXT)), min_size=1, max_size=30))
def test_tokenizer_matches_reference(sub, ref, s):
    need(sub, "CharTokenizer")
    got = sub.new("CharTokenizer", TEXT).call("encode", s)
    want = ref.new("CharTokenizer", TEXT).call("encode", s)
    expect(list(got) == list(want), f"encode({s!r}): expected {want}, got {got}")
