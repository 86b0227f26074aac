"""Hidden checks of part quiz: each quiz answer against the reference's answer key.

Never in the student handout and never visible to the worker (see ``autograder/checks/hidden/__init__.py``);
each compares the submission with the reference solution, running in the grading process.
"""

import pytest

from autograder.checks.verdicts import expect


@pytest.mark.parametrize("question", ["q1", "q2", "q3", "q4"])
def test_quiz_answer(sub, ref, question):
    from autograder.checks.test_quiz import read_answers

    answers = read_answers(sub)
    key = ref.get("quiz_answers")
    got = str(answers.get(question, "")).strip().lower()
    expect(got == key[question], f"{question}: {got or 'no answer'} is not the right answer")
