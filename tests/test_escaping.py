"""Student text shown as text wherever it goes (instructor/text.py and its users): the terminal (escape
sequences and control characters removed), the grader's note in the autograded notebook and the feedback
(HTML and markdown escaped), CSV and LMS exports (formulas neutralised, OWASP), and bounded in size
(results.json, the note). The handout's message catalogue holds nothing of the hidden checks. Each defence
has a planted-bug row at the end: the test that guards it fails with the defence removed."""

from __future__ import annotations

import csv
import gettext
import inspect
import json
from pathlib import Path

import pytest

from autograder.engine import report
from instructor import class_summary, exports, nbgrader_plugins, text

ESCAPES = "\x1b[2J\x1b[1;1H\x1b]0;pwned\x07\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\\x9b31m\x07\x08\u202e"
HTML = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
MD = "[click](javascript:alert(3)) ![x](http://evil/x.png) `code` **bold**"
FORMULAS = ["=HYPERLINK(\"http://evil\",\"x\")", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"]


def _results(status="ok", cause="", problem="", output="", tests=()):
    return report.set_verdict({"score": 0, "tests": list(tests), "output": output}, status, cause, problem)


def test_plain_removes_escape_sequences_and_control_characters():
    out = text.plain(f"a{ESCAPES}b\nc\td\re")
    assert "\x1b" not in out and "\x9b" not in out and "\x07" not in out and "\x08" not in out
    assert "\u202e" not in out and "pwned" not in out  # an OSC title is removed whole
    assert out.startswith("a") and "b\nc\td\ne" in out


def test_markdown_renders_student_text_as_text():
    from nbconvert.filters.markdown import markdown2html

    shown = markdown2html(text.markdown(HTML + " " + MD))
    assert "<img" not in shown and "<script" not in shown and "<a " not in shown and "<code>" not in shown
    assert "<strong>" not in shown and "&lt;script&gt;" in shown  # visible as text


def test_csv_cell_neutralises_formulas():
    for value in FORMULAS:
        assert text.csv_cell(value) == "'" + value
    assert text.csv_cell("alice") == "alice" and text.csv_cell(3) == 3


def test_grades_csv_and_lms_exports_neutralise_student_text(tmp_path):
    results = {name: _results("error", "unreadable", f"{name}{ESCAPES} could not be read") for name in FORMULAS[:4]}
    results["ok"] = _results("hung", "cell_timeout", "=1+1 graded")
    exports.export_all(results, tmp_path)
    for name in ("grades.csv", "canvas.csv", "moodle.csv"):
        raw = (tmp_path / name).read_text()
        assert "\x1b" not in raw and "\x07" not in raw, name
        with open(tmp_path / name, newline="") as f:
            for row in csv.reader(f):
                for cell in row:
                    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), (name, cell)


def test_summary_and_problem_lines_are_plain_text():
    results = {f"eve{ESCAPES}": _results("error", "unreadable", f"bad{ESCAPES}")}
    shown = class_summary.format_summary(results)
    assert "\x1b" not in shown and "\x07" not in shown and "pwned" not in shown
    assert "\x1b" not in class_summary.one_line(f"x{ESCAPES}")


def test_grader_note_escapes_html_and_markdown_and_is_bounded():
    from nbconvert.filters.markdown import markdown2html

    note = nbgrader_plugins.grader_note(f"grade id {HTML}", "\n".join([f"cell 3: ValueError: {HTML} {MD}"] * 50
                                                                     + ["x" * 100_000]))
    shown = markdown2html(note)
    assert "<img" not in shown and "<script" not in shown and "<a " not in shown
    assert len(note) < 20 * (nbgrader_plugins.NOTE_LINE_CHARS * 2 + 100)  # 20 lines at most, each bounded


def test_results_json_bounded_whatever_the_messages():
    answer = "A" * 28_000_000  # a quiz answer echoed into a message
    part = report.PartScore("quiz", report.Fraction(1, 2), False,
                            [report.Outcome("quiz", f"q{i}", f"n{i}", True, "failed", f"got {answer}") for i in range(4)])
    data = report.gradescope_json([part], extra_output=answer)
    assert len(json.dumps(data)) < 200_000
    assert all("characters cut" in t["output"] for t in data["tests"])
    escaped = report.gradescope_json([report.PartScore("quiz", report.Fraction(1, 2), False, [
        report.Outcome("quiz", "q1", "n1", True, "failed", f"got {ESCAPES}")])], extra_output=f"cell {ESCAPES}")
    assert "\x1b" not in json.loads(json.dumps(escaped))["output"] and "\x1b" not in escaped["tests"][0]["output"]


def test_handout_catalogue_holds_nothing_of_the_hidden_checks(tmp_path):
    from instructor import handout
    from instructor.i18n import read_po

    po = Path(handout.REPO) / "autograder" / "locale" / "es" / "LC_MESSAGES" / "gptlab.po"
    full = read_po(po, locale="es")
    hidden_only = {m.id for m in full if m.id and m.locations
                   and all("checks/hidden/" in f for f, _ in m.locations)}
    assert hidden_only, "the catalogue has messages used by the hidden checks only: the test needs them"
    out = tmp_path / "handout"
    (out / "autograder" / "locale" / "es" / "LC_MESSAGES").mkdir(parents=True)
    handout._copy_tree(Path(handout.REPO) / "autograder", out / "autograder")
    handout.strip_catalogues(out)
    got = (out / "autograder" / "locale" / "es" / "LC_MESSAGES" / "gptlab.po").read_text()
    assert "checks/hidden" not in got and "instructor/" not in got
    stripped = read_po(out / "autograder" / "locale" / "es" / "LC_MESSAGES" / "gptlab.po", locale="es")
    ids = {m.id for m in stripped if m.id}
    assert not ids & hidden_only
    with open(out / "autograder" / "locale" / "es" / "LC_MESSAGES" / "gptlab.mo", "rb") as f:
        compiled = gettext.GNUTranslations(f)._catalog
    assert not {k for k in compiled if isinstance(k, str)} & {i for i in hidden_only if isinstance(i, str)}
    # what the handout's code uses is still translated
    assert all(stripped.get(m.id, m.context) is not None for m in full
               if m.id and any((out / f).is_file() for f, _ in m.locations))


def test_the_submissions_error_messages_reach_reports_and_terminals_as_text():
    from autograder.engine import submission

    failure = submission.SubmissionFailure("Head.forward", f"Value{ESCAPES}Error", f"bad{ESCAPES}", f"tb{ESCAPES}")
    for value in (str(failure), failure.kind, failure.message, failure.traceback):
        assert "\x1b" not in value and "\x07" not in value and "\u202e" not in value, value
    assert report.printable(f"a{ESCAPES}b\nc") == text.plain(f"a{ESCAPES}b\nc")  # one rule, both sides


# -- planted bugs: each defence removed, its test fails ------------------------------------------------------

PLANTED = [
    ("plain_keeps_escapes", test_plain_removes_escape_sequences_and_control_characters,
     lambda mp: mp.setattr(text, "plain", lambda t: str(t))),
    ("summary_raw", test_summary_and_problem_lines_are_plain_text,
     lambda mp: mp.setattr(class_summary, "plain", lambda t: str(t))),
    ("markdown_raw", test_markdown_renders_student_text_as_text, lambda mp: mp.setattr(text, "markdown", lambda t: t)),
    ("note_raw", test_grader_note_escapes_html_and_markdown_and_is_bounded,
     lambda mp: (mp.setattr(nbgrader_plugins, "markdown", lambda t: t),
                 mp.setattr(nbgrader_plugins, "bounded", lambda t, n: t))),
    ("csv_formulas_kept", test_grades_csv_and_lms_exports_neutralise_student_text,
     lambda mp: (mp.setattr(exports, "csv_cell", lambda v: v), mp.setattr(exports, "plain", lambda t: t))),
    ("submission_errors_raw", test_the_submissions_error_messages_reach_reports_and_terminals_as_text,
     lambda mp: mp.setattr("autograder.engine.submission.printable", lambda t: str(t))),
    ("results_unbounded", test_results_json_bounded_whatever_the_messages,
     lambda mp: mp.setattr(report, "bounded", lambda t, n: str(t))),
    ("results_raw", test_results_json_bounded_whatever_the_messages,
     lambda mp: mp.setattr(report, "printable", lambda t: str(t))),
    ("catalogue_copied_whole", test_handout_catalogue_holds_nothing_of_the_hidden_checks,
     lambda mp: mp.setattr("instructor.handout.strip_catalogues", lambda root: [])),
]


@pytest.mark.parametrize("name,test,plant", PLANTED, ids=[p[0] for p in PLANTED])
def test_each_defence_fails_its_test_when_removed(name, test, plant, tmp_path):
    with pytest.MonkeyPatch.context() as mp:
        plant(mp)
        kwargs = {"tmp_path": tmp_path} if "tmp_path" in inspect.signature(test).parameters else {}
        with pytest.raises(AssertionError):
            test(**kwargs)
