"""Part quiz: the multiple-choice answers (``quiz_answers``); the answer key is in the reference."""

from autograder.checks.verdicts import expect, fail

QUESTIONS = ("q1", "q2", "q3", "q4")
LETTERS = ("a", "b", "c", "d")


def read_answers(sub) -> dict:
    kinds = sub.names()
    if "quiz_answers" not in kinds:
        fail("not implemented yet: `quiz_answers` is not defined (fill in the quiz cell and run it)")
    if kinds["quiz_answers"] != "dict":
        fail(f"quiz_answers should be a dict, got a {kinds['quiz_answers']}")
    return sub.get("quiz_answers")


def test_quiz_answers_well_formed(sub):
    """quiz_answers maps each question id (q1..q4) to one letter a-d."""
    ans = read_answers(sub)
    missing = [q for q in QUESTIONS if q not in ans]
    expect(not missing, f"quiz_answers lacks {missing}")
    bad = {q: v for q, v in ans.items() if q in QUESTIONS and (not isinstance(v, str) or v.strip().lower() not in LETTERS)}
    expect(not bad, f"answers must be one letter a-d, got {bad}")
