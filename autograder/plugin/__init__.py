"""The pytest plugin of ``pytest autograder``, one hook concern per module (all run in the grading
process). ``autograder/conftest.py`` is its one entry point: it imports the hooks and fixtures of
each module below, in the order a grading run meets them. See docs/architecture.md."""
