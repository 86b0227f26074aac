"""Hostile submissions for the autograder (issue 4): the cases in cases.py, helpers in helpers.py."""
