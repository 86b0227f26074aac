"""Instructor tools for gpt-lab (need the `instructor` extra: nbgrader)."""
