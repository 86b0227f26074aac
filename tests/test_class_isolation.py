"""One submission is one submission's problem, and "not graded" is never "ok with 0" (issues 23 and 25).

Status as data: every results.json carries ``extra_data.gptlab = {status, cause, problem}``
(``autograder/engine/report.py``), decided from the run's state (``autograder/plugin/results.verdict``), and
every consumer (grade_class, the class summary, the exports, the cluster's merge and task log, the nbgrader
plugins) reads that, never the messages (translated, and partly the student's). Whatever a submission's file
name, metadata or structure, the others are graded and it gets its row with its reason, on every path.

Fast tests first (no grading: the grader's run is replaced by what it would write), then real gradings: a
class of four through ``grade_class --lang es``, a grader whose worker cannot start, and (marked ``nbgrader``)
plain ``nbgrader autograde`` on a course with a truncated notebook and a cell without a grade id. The planted
rows at the end show each defence's test failing with the defence removed.
"""

from __future__ import annotations

import copy
import csv
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from autograder.engine import report
from autograder.plugin import results as plugin_results
from instructor import class_summary, exports, grade_class, grade_item, grade_manifest, merge_results, tampering
from tests.conftest import ASSIGNMENT, REPO


# -- the verdict of a run, from its state --------------------------------------------------------------------


def _grading(**state):
    sub = state.pop("sub", "default")
    if sub == "default":
        sub = SimpleNamespace(answered=True, loaded=True, report=SimpleNamespace(cells=[]), hung={},
                              budget_spent=lambda: False)
    base = dict(internal_error=None, fatal=None, submission_error=None, submission_missing=False, sub=sub)
    return SimpleNamespace(**{**base, **state})


def _cell(number, error_type, message="x"):
    return SimpleNamespace(number=number, error_type=error_type, message=message, ok=False)


def _sub(**changes):
    sub = _grading().sub
    for key, value in changes.items():
        setattr(sub, key, value)
    return sub


def test_verdict_comes_from_the_runs_state():
    v = plugin_results.verdict
    assert v(_grading())[:2] == ("ok", "")
    assert v(_grading(internal_error="boom"))[:2] == ("error", "grader_failed")
    assert v(_grading(fatal="the grader could not start: BlockingIOError"))[:2] == ("error", "grader_could_not_start")
    assert v(_grading(submission_error="x is not JSON"))[:2] == ("error", "unreadable")
    assert v(_grading(submission_error="no file", submission_missing=True))[:2] == ("missing", "no_submission")
    # a worker that never answered: nothing of the submission ran, whatever the checks recorded
    assert v(_grading(sub=_sub(answered=False)))[:2] == ("error", "worker_did_not_start")
    assert v(_grading(sub=None))[:2] == ("error", "worker_did_not_start")
    # code that hung: graded (the rest ran), but never a plain ok with an empty problem
    hung = v(_grading(sub=_sub(report=SimpleNamespace(cells=[_cell(2, "Timeout", "ran past its 20 s limit")]))))
    assert hung[:2] == ("hung", "cell_timeout") and "cell 2" in hung[2]
    assert v(_grading(sub=_sub(hung={"Head.forward": ("Timeout", "x")})))[:2] == ("hung", "check_timeout")
    assert v(_grading(sub=_sub(budget_spent=lambda: True)))[:2] == ("hung", "time_budget_spent")
    # a cell that failed in another way is the student's mistake, graded as it is
    assert v(_grading(sub=_sub(report=SimpleNamespace(cells=[_cell(3, "NameError")]))))[:2] == ("ok", "")


def test_every_results_writer_sets_a_valid_verdict():
    for data in (report.zero_report("cause"), report.zero_report("late", code="grading_timeout", status="timeout"),
                 class_summary.stand_in("missing", "no file"), class_summary.stand_in("error", "x", code="unreadable"),
                 report.gradescope_json([], status="hung", cause="cell_timeout", problem="a\nb")):
        meta = report.verdict_of(data)
        assert meta is not None and meta["status"] in report.STATUSES and meta["cause"] in report.CAUSES, data
        assert "\n" not in meta["problem"]
    with pytest.raises(ValueError):
        report.verdict("fine")
    with pytest.raises(ValueError):
        report.verdict("ok", "because")


# -- grade_class: the verdict read, never the messages; one bad submission, one row ------------------------------

SPANISH_UNREADABLE = "no se pudo leer la entrega: x.ipynb is not a notebook"


def _written(status=None, cause="", problem="", output=""):
    tests = [{"name": f"{p}: c", "score": 0, "max_score": 0.1, "status": "failed", "output": output, "tags": [p]}
             for p in grade_class.rubric_parts()]
    data = {"score": 0, "output": output, "tests": tests}
    return report.set_verdict(data, status, cause, problem) if status else data


def _fake_grader(monkeypatch, data=None, rc=1):
    def run(cmd, work, env, log_path, timeout, pool=None):
        Path(log_path).write_text("log")
        if data is not None:
            (Path(work) / "results.json").write_text(json.dumps(data))
        return rc

    monkeypatch.setattr(grade_class, "_run_grader", run)


CASES = {  # what the grader wrote -> (status, cause) of the student's row
    "spanish_unreadable": (dict(data=_written("error", "unreadable", "x is not JSON", SPANISH_UNREADABLE)),
                           ("error", "unreadable")),
    "looks_unreadable_but_ok": (dict(data=_written("ok", output="the submission could not be read: tampered")),
                                ("ok", "")),
    "no_verdict": (dict(data=_written(None, output=SPANISH_UNREADABLE)), ("error", "malformed_results")),
    "worker_did_not_start": (dict(data=_written("error", "worker_did_not_start", "nothing ran")),
                             ("error", "worker_did_not_start")),
    "hung": (dict(data=_written("hung", "cell_timeout", "cell 2 ran past its limit")), ("hung", "cell_timeout")),
    "timed_out": (dict(data=None, rc=None), ("timeout", "grading_timeout")),
    "grader_exited": (dict(data=None, rc=-9), ("error", "grader_exited")),
    "no_results": (dict(data=None, rc=1), ("error", "no_results")),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_grade_one_takes_the_status_from_the_verdict(case, tmp_path, monkeypatch):
    fake, (status, cause) = CASES[case]
    _fake_grader(monkeypatch, **fake)
    monkeypatch.setattr(tampering, "notes", lambda path: [])
    sub = tmp_path / "s.py"
    sub.write_text("x = 1\n")
    row = grade_class.grade_one("s", sub, tmp_path / "out", None, 60, grade_class.rubric_parts())
    assert (row["status"], row["cause"]) == (status, cause), row
    saved = json.loads((tmp_path / "out" / "s.json").read_text())
    assert class_summary.classify(saved)[0] == status and class_summary.cause(saved) == cause
    if status in report.NOT_GRADED:  # never a blank-looking 0 in any export
        assert row["problem"]
        exports.export_all({"s": saved}, tmp_path / "out")
        with open(tmp_path / "out" / "grades.csv", newline="") as f:
            student = [r for r in csv.DictReader(f) if r["student"] == "s"][0]
        assert student["total"] == "" and student["status"] == status
        with open(tmp_path / "out" / "canvas.csv", newline="") as f:
            rows = list(csv.reader(f))
        assert rows[-1][-1] == "", rows[-1]
    elif status == "hung":
        assert row["problem"] and class_summary.problems({"s": saved})[0][1] == "hung"


def test_grade_one_survives_a_failing_tampering_check(tmp_path, monkeypatch):
    _fake_grader(monkeypatch, data=_written("ok"))

    def boom(path):
        raise AttributeError("'str' object has no attribute 'get'")

    monkeypatch.setattr(tampering, "notes", boom)
    sub = tmp_path / "s.ipynb"
    sub.write_text("{}")
    row = grade_class.grade_one("s", sub, tmp_path / "out", None, 60, grade_class.rubric_parts())
    assert row["status"] == "tampered" and "could not be compared" in row["problem"]


def test_grade_many_one_raising_student_is_one_row(tmp_path, monkeypatch):
    real = grade_class.grade_one

    def grade_one(student, path, *args, **kwargs):
        if student == "bad":
            raise RuntimeError("anything at all")
        return real(student, path, *args, **kwargs)

    _fake_grader(monkeypatch, data=_written("ok"))
    monkeypatch.setattr(tampering, "notes", lambda path: [])
    monkeypatch.setattr(grade_class, "grade_one", grade_one)
    paths = {}
    for name in ("ann", "bad", "cid"):
        paths[name] = tmp_path / f"{name}.py"
        paths[name].write_text("x = 1\n")
    results = grade_class.grade_many(paths, tmp_path / "out", jobs=2, warm=False)
    assert {s: r["status"] for s, r in results.items()} == {"ann": "ok", "bad": "error", "cid": "ok"}
    with open(tmp_path / "out" / "grades.csv", newline="") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    assert rows["bad"]["status"] == "error" and "anything at all" in rows["bad"]["problem"]
    assert rows["bad"]["total"] == ""


MALFORMED = {  # notebooks whose JSON is valid but whose structure is anything
    "gptlab_string": lambda nb: nb["metadata"].update(gptlab="evil"),
    "gptlab_list": lambda nb: nb["metadata"].update(gptlab=[1, 2]),
    "metadata_string": lambda nb: nb.update(metadata="evil"),
    "cells_dict": lambda nb: nb.update(cells={"a": 1}),
    "cells_strings": lambda nb: nb.update(cells=["x", 3, None]),
    "nbgrader_string": lambda nb: [c.setdefault("metadata", {}).update(nbgrader="x") for c in nb["cells"]],
    "cell_metadata_list": lambda nb: [c.update(metadata=[1]) for c in nb["cells"]],
    "grade_id_dict": lambda nb: [c["metadata"]["nbgrader"].update(grade_id={"a": 1}) for c in nb["cells"]
                                 if isinstance(c.get("metadata", {}).get("nbgrader"), dict)],
    "top_level_list": None,
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_tampering_notes_never_raise_on_any_structure(case, tmp_path):
    nb = json.loads(ASSIGNMENT.read_text())
    if MALFORMED[case] is None:
        nb = [nb]
    else:
        MALFORMED[case](nb)
    path = tmp_path / "s.ipynb"
    path.write_text(json.dumps(nb))
    assert isinstance(tampering.notes(path), list)


# -- the cluster: any file name, the verdict in the merge and in the task log -----------------------------------


def test_manifest_takes_any_file_name(tmp_path):
    subs = tmp_path / "submitted"
    subs.mkdir()
    names = ["my lab (final).ipynb", "ok.py", "-rf.py", "a\nb.py", "ñandú.py", "$(id).py", "..weird.py"]
    for name in names:
        (subs / name).write_text("x = 1\n")
    (tmp_path / "outside.ipynb").write_text("{}")
    (subs / "link.ipynb").symlink_to(tmp_path / "outside.ipynb")
    m = grade_manifest.build(subs, tmp_path / "m.json")
    ids = [it.id for it in m.items]
    assert len(ids) == len(set(ids)) == len(grade_class.discover(subs))
    for item_id in ids:
        grade_manifest.check_id(item_id)  # each can name a results file
    assert "ok" in ids and any(i.startswith("my_lab_final-") for i in ids)
    link = next(it for it in m.items if it.id == "link")
    assert link.path == subs / "link.ipynb" and link.path.is_symlink()  # graded (and refused) as a link
    reread = grade_manifest.load(tmp_path / "m.json")
    assert [it.id for it in reread.items] == ids


def test_merge_reads_the_verdict_and_a_result_without_one_is_not_graded(tmp_path):
    items = tuple(grade_manifest.Item(i, s, tmp_path / s) for i, s in enumerate(("ann", "ben", "cid")))
    manifest = grade_manifest.Manifest(tmp_path / "m.json", tmp_path, None, items)
    records = {
        "ann": {"status": "ok", "results": _written("ok")},
        "ben": {"status": "ok", "results": _written(None, output="looks fine")},  # no verdict
        "cid": {"status": "error", "cause": "unreadable", "message": "x", "results": _written("error", "unreadable", "x")},
    }
    collected = merge_results.Collected(manifest, records)
    merge_results.write_grades(collected, tmp_path / "grades")
    with open(tmp_path / "grades" / "grades.csv", newline="") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    assert rows["ann"]["status"] == "ok"
    assert rows["ben"]["status"] == "error" and rows["ben"]["total"] == ""
    assert rows["cid"]["status"] == "error" and rows["cid"]["total"] == ""
    assert [it.id for it in collected.failed] == ["cid"]


def test_task_log_line_says_what_happened():
    item = grade_manifest.Item(3, "eve", Path("/x"))
    line = grade_item.task_line(item, "graded", {"status": "error", "cause": "unreadable", "total": 0.0,
                                                 "problem": "could not be read: not JSON"})
    assert "NOT graded (error, unreadable)" in line and "not JSON" in line and "0 points" not in line
    line = grade_item.task_line(item, "skipped", {"status": "hung", "cause": "cell_timeout", "total": 1.5,
                                                  "problem": "cell 2 ran past its limit"})
    assert "skipped" in line and "graded (hung, cell_timeout) 1.5 points" in line
    assert grade_item.task_line(item, "graded", {"status": "ok", "cause": "", "total": 6.5}).endswith("graded (ok) 6.5 points")


# -- real gradings ------------------------------------------------------------------------------------------------


def _release():
    return json.loads(ASSIGNMENT.read_text())


def test_grade_class_a_class_with_broken_submissions_in_spanish(tmp_path):
    """Four submissions through the CLI, messages in Spanish: the release as handed out (graded), one whose
    metadata ``gptlab`` is a string (graded, no traceback), a truncated notebook (not graded, with its reason:
    never classed ok from the messages' language) and a .py file named like a formula."""
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "plain.ipynb").write_text(json.dumps(_release()))
    bad = _release()
    bad["metadata"]["gptlab"] = "evil"
    (subs / "badmeta.ipynb").write_text(json.dumps(bad))
    (subs / "trunc.ipynb").write_text(json.dumps(_release())[:4000])
    (subs / "=cmd.py").write_text("x = 1\n")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "instructor.grade_class", subs, "--out", out, "--jobs", "2",
                           "--lang", "es", "--no-similarity", "--timeout", "240"], cwd=REPO, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    with open(out / "grades.csv", newline="") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    assert {s: r["status"] for s, r in rows.items() if s != "max"} == {
        "plain": "ok", "badmeta": "ok", "trunc": "error", "'=cmd": "ok"}, rows
    assert rows["plain"]["total"] == rows["badmeta"]["total"] != ""
    assert rows["trunc"]["total"] == "" and "JSON" in rows["trunc"]["problem"]
    trunc = json.loads((out / "trunc.json").read_text())
    assert trunc["extra_data"]["gptlab"]["cause"] == "unreadable"
    assert "trunc" in (out / "summary.txt").read_text()


NO_WORKER = '''
from autograder.engine import submission, worker_control


def _refused(self):
    raise BlockingIOError(11, "Resource temporarily unavailable (fork: the process limit is reached)")


worker_control.Worker.start = _refused
if {late}:
    submission.RemoteSubmission.start = lambda self: None  # the first start "works": every later one fails
'''


@pytest.mark.parametrize("late", [False, True], ids=["at_setup", "at_load"])
def test_a_grader_whose_worker_cannot_start_is_not_graded(late, tmp_path):
    """A neighbour's thread bomb used up the process limit: the worker cannot be started. The run is
    ``error`` (not graded) with its cause, never ``ok`` with 0."""
    (tmp_path / "noworker.py").write_text(NO_WORKER.format(late=late))
    sub = tmp_path / "s.ipynb"
    sub.write_text(json.dumps(_release()))
    out = tmp_path / "results.json"
    from autograder.engine.command import grader_command

    cmd = grader_command(sub, out) + ["-p", "noworker"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode in (0, 1), proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads(out.read_text())
    status, problem = class_summary.classify(data)
    assert status == "error", (status, problem)
    assert class_summary.cause(data) == ("worker_did_not_start" if late else "grader_could_not_start")


# -- plain nbgrader autograde -------------------------------------------------------------------------------------


@pytest.mark.nbgrader
def test_plain_nbgrader_autograde_grades_everyone_and_flags_the_broken(tmp_path):
    """Plain ``nbgrader autograde`` (the course config) on three students: the release as handed out, one with a
    cell carrying nbgrader metadata without a grade id (nbgrader would skip that student), a truncated notebook
    (nbgrader would stop with a traceback). All three are in the gradebook; the truncated one is flagged and
    waits for a manual grade, with feedback that says why; nobody else is flagged."""
    pytest.importorskip("nbgrader")
    from nbgrader.api import Gradebook

    from instructor.course_init import init

    env = {**os.environ, "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
    root = init(tmp_path / "course")

    def run(*args):
        proc = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=root, env=env, capture_output=True,
                              text=True, timeout=1200)
        return proc.returncode, proc.stdout + proc.stderr

    rc, log = run("generate_assignment", "gpt_lab")
    assert rc == 0, log[-3000:]
    release = json.loads((root / "release" / "gpt_lab" / "gpt_lab.ipynb").read_text())
    nogid = copy.deepcopy(release)
    nogid["cells"].insert(2, {"cell_type": "code", "metadata": {"nbgrader": {"grade": True, "solution": False,
                                                                             "points": 5, "schema_version": 3}},
                              "source": "x = 1", "outputs": [], "execution_count": None, "id": "nogid"})
    students = {"plain": json.dumps(release), "nogid": json.dumps(nogid), "trunc": json.dumps(release)[:5000]}
    for sid, content in students.items():
        folder = root / "submitted" / sid / "gpt_lab"
        folder.mkdir(parents=True)
        (folder / "gpt_lab.ipynb").write_text(content)
    rc, log = run("autograde", "gpt_lab")
    assert rc == 0 and "Traceback" not in log, log[-5000:]
    rc, feedback_log = run("generate_feedback", "gpt_lab")
    assert rc == 0, feedback_log[-3000:]
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        found = {}
        for sid in students:
            sub = gb.find_submission_notebook("gpt_lab", "gpt_lab", sid)
            found[sid] = (bool(sub.flagged), {g.name for g in sub.grades
                                              if g.cell.cell_type == "code" and g.needs_manual_grade},
                          sum(g.score or 0 for g in sub.grades))
    assert not found["plain"][0] and not found["plain"][1]
    assert not found["nogid"][0] and not found["nogid"][1] and found["nogid"][2] == found["plain"][2]
    assert found["trunc"][0] and found["trunc"][1]
    feedback = (root / "feedback" / "trunc" / "gpt_lab" / "gpt_lab.html").read_text()
    assert "could not be graded" in feedback
    for sid in students:
        assert (root / "feedback" / sid / "gpt_lab" / "gpt_lab.html").is_file()


def test_nbgrader_cells_without_a_grade_id_become_ordinary():
    from nbformat.notebooknode import from_dict

    from instructor.nbgrader_plugins import RepairStructure

    cells = [from_dict({"cell_type": "code", "source": "x", "metadata": meta}) for meta in (
        {"nbgrader": {"grade": True, "solution": False, "points": 5}},
        {"nbgrader": {"grade_id": "", "locked": True}},
        {"nbgrader": {"schema_version": 3}},
        {"nbgrader": {"grade_id": "check_head", "grade": True}},
        {})]
    notes = RepairStructure.strip_unnamed(cells)
    assert [("nbgrader" in c.metadata) for c in cells] == [False, False, False, True, False]
    assert len(notes) == 2 and all("without a grade id" in n for n in notes)


def test_nbgrader_reads_an_unreadable_notebook_as_the_release(tmp_path):
    import nbformat

    from instructor.nbgrader_plugins import ReadAnyNotebook

    broken = tmp_path / "gpt_lab.ipynb"
    broken.write_text(ASSIGNMENT.read_text()[:3000])
    nb, resources = ReadAnyNotebook().from_filename(str(broken), resources={"nbgrader": {
        "assignment": "gpt_lab", "notebook": "gpt_lab", "student": "eve"}})
    assert resources["gptlab"]["unreadable"]  # the reason, for the log
    assert nbformat.reads(nb, as_version=4) is not None  # a notebook nbgrader goes on with
    odd = json.loads(ASSIGNMENT.read_text())
    odd["cells"] = {"a": 1}  # valid JSON, a structure nbgrader's own steps would stop on
    (tmp_path / "odd.ipynb").write_text(json.dumps(odd))
    nb, resources = ReadAnyNotebook().from_filename(str(tmp_path / "odd.ipynb"), resources={})
    assert resources["gptlab"]["unreadable"]
    assert nbformat.reads(nb, as_version=4).metadata["gptlab_unreadable"]  # carried to the autograde stage
    good = tmp_path / "good.ipynb"
    good.write_text(ASSIGNMENT.read_text())
    _, resources = ReadAnyNotebook().from_filename(str(good), resources={})
    assert "gptlab" not in resources


@pytest.mark.parametrize("status,flagged,manual,substituted", [
    ("ok", False, False, False), ("ok", True, False, True), ("hung", True, False, False),
    ("tampered", True, False, False), ("error", True, True, False), ("timeout", True, True, False)])
def test_nbgrader_flags_what_was_not_plainly_graded(status, flagged, manual, substituted, monkeypatch):
    from nbformat.notebooknode import from_dict

    from instructor import nbgrader_plugins

    calls = []
    monkeypatch.setattr(nbgrader_plugins, "flag", lambda *args, **kw: calls.append((args, kw)))
    nb = from_dict({"cells": [{"cell_type": "code", "source": "check('head', globals())", "metadata": {
        "nbgrader": {"grade_id": "check_head", "grade": True, "solution": False, "points": 1}}}]})
    resources = {"nbgrader": {"db_url": "sqlite://", "assignment": "a", "notebook": "n", "student": "s"},
                 "gptlab": {"grade": {"status": status, "cause": "", "problem": "p", "flag": substituted}}}
    nbgrader_plugins.FlagForReview().preprocess(nb, resources)
    assert bool(calls) == flagged
    if calls:
        (args, kw), = calls
        assert args[4] == ["check_head"] and kw["manual"] == manual


# -- planted bugs: each defence removed, its test fails -----------------------------------------------------------


def _old_classify(data):  # the status parsed from the messages, as before
    tests = data.get("tests") or []
    outputs = {str(t.get("output", "")) for t in tests}
    if tests and len(outputs) == 1 and next(iter(outputs)).startswith("the submission could not be read: "):
        return "error", "x"
    return ("ok", "") if tests else ("error", "x")


PLANTED = [
    ("verdict_ignores_the_worker", test_verdict_comes_from_the_runs_state,
     lambda mp: mp.setattr(plugin_results, "verdict", lambda g: ("ok", "", "") if g.sub is not None
                           and not (g.internal_error or g.fatal or g.submission_error) else ("error", "grader_failed", ""))),
    ("classify_from_messages", test_grade_one_takes_the_status_from_the_verdict,
     lambda mp: mp.setattr(class_summary, "classify", _old_classify), {"case": "spanish_unreadable"}),
    ("grade_one_trusts_a_file_without_verdict", test_grade_one_takes_the_status_from_the_verdict,
     lambda mp: mp.setattr(report, "verdict_of", lambda data: {"status": "ok", "cause": "", "problem": ""}),
     {"case": "no_verdict"}),
    ("tampering_check_raises", test_grade_one_survives_a_failing_tampering_check,
     lambda mp: mp.setattr(grade_class, "_tampering_notes", lambda path: tampering.notes(path))),
    ("grade_many_lets_it_raise", test_grade_many_one_raising_student_is_one_row,
     lambda mp: mp.setattr(grade_class, "_failed", lambda s, p, o, exc: (_ for _ in ()).throw(exc))),
    ("manifest_refuses_names", test_manifest_takes_any_file_name,
     lambda mp: mp.setattr(grade_manifest, "safe_id", grade_manifest.check_id)),
    ("merge_trusts_no_verdict", test_merge_reads_the_verdict_and_a_result_without_one_is_not_graded,
     lambda mp: mp.setattr(report, "verdict_of", lambda data: (data.get("extra_data") or {}).get("gptlab")
                           or {"status": "ok", "cause": "", "problem": ""})),
    ("nbgrader_keeps_unnamed_cells", test_nbgrader_cells_without_a_grade_id_become_ordinary,
     lambda mp: mp.setattr("instructor.nbgrader_plugins.RepairStructure.strip_unnamed", staticmethod(lambda cells: []))),
    ("nbgrader_reads_as_nbconvert", test_nbgrader_reads_an_unreadable_notebook_as_the_release,
     lambda mp: mp.setattr("instructor.nbgrader_plugins.ReadAnyNotebook.from_filename",
                           __import__("nbconvert").exporters.NotebookExporter.from_filename)),
    ("nbgrader_flags_nothing", test_nbgrader_flags_what_was_not_plainly_graded,
     lambda mp: mp.setattr("instructor.nbgrader_plugins.FlagForReview.preprocess", lambda self, nb, r: (nb, r)),
     {"status": "error", "flagged": True, "manual": True, "substituted": False}),
    ("task_log_status_only", test_task_log_line_says_what_happened,
     lambda mp: mp.setattr(grade_item, "GRADED", ("ok", "hung", "tampered", "error"))),
]


@pytest.mark.parametrize("row", PLANTED, ids=[p[0] for p in PLANTED])
def test_each_defence_fails_its_test_when_removed(row, tmp_path):
    name, test, plant, *params = row
    with pytest.MonkeyPatch.context() as mp:
        kwargs = dict(params[0]) if params else {}
        for arg in inspect.signature(test).parameters:
            if arg == "tmp_path":
                kwargs[arg] = tmp_path
            elif arg == "monkeypatch":
                kwargs[arg] = mp
        plant(mp)
        with pytest.raises((AssertionError, AttributeError, RuntimeError, ValueError, grade_manifest.ManifestError,
                            __import__("nbformat").reader.NotJSONError)):
            test(**kwargs)
