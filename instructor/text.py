"""Student text shown as text, wherever it goes (runs in the instructor's process: plain functions).

Anything a submission can write reaches the instructor's tools: its file name (the student id of a flat
folder), its error messages and printed output (through the grader's messages), its cells and grade ids.
Each destination reads some characters as commands; these functions make them plain text there:

* ``plain``: a terminal, a log, a one-line CSV problem: escape sequences (CSI, OSC, ...) and control
  characters removed (an ESC sequence can move the cursor, retitle the window, write a hyperlink), and
  the bidirectional overrides that make text read differently from what it is. Newlines and tabs stay.
* ``markdown``: a Jupyter markdown cell (the grader's note in the autograded notebook and the feedback):
  Jupyter renders HTML inside markdown, so ``& < >`` become entities and markdown's punctuation is
  backslash-escaped (no link, autolink, image, emphasis or code span of the student's making).
* ``csv_cell``: a cell of a CSV that a spreadsheet opens (grades.csv, the LMS imports): OWASP's rule for
  CSV injection, a text starting with ``= + - @``, a tab or a carriage return gets a leading ``'``.
* ``bounded``: at most ``limit`` characters, saying how much was cut.
"""

from __future__ import annotations

import re

from autograder.engine.report import printable

_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|~:@/])")  # ":" "@" "/": no autolink either
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def plain(text: str) -> str:
    """``text`` without escape sequences and control characters (newlines and tabs kept; CR as a newline):
    the grader's own rule (``autograder.engine.report.printable``), one for both sides."""
    return printable(text)


def markdown(text: str) -> str:
    """``text`` as literal text in a Jupyter markdown cell (no HTML, no markdown of its own)."""
    text = plain(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MARKDOWN.sub(r"\\\1", text)


def csv_cell(value):
    """A CSV cell a spreadsheet shows as text (OWASP CSV injection); numbers and other values as they are."""
    if isinstance(value, str) and value.startswith(_FORMULA):
        return "'" + value
    return value


def bounded(text: str, limit: int) -> str:
    """At most ``limit`` characters of ``text`` (plus a short note of what was cut)."""
    text = str(text)
    if len(text) <= limit:
        return text
    return text[:limit] + f" [... {len(text) - limit} characters cut]"
