"""``python -m instructor.autograde``'s choice of what nbgrader regrades (the real runs: test_nbgrader_e2e's
``test_rerun_regrades_exactly_what_changed_and_one_student_on_demand``)."""

from __future__ import annotations

import sys

import pytest

from instructor import autograde


def test_autograde_split_students_takes_nbgraders_student_options_out():
    assert autograde.split_students(["--student", "carol", "--debug"]) == (["carol"], ["--debug"])
    assert autograde.split_students(["--student=ana", "--CourseDirectory.student_id=bo"]) == (["ana", "bo"], [])
    assert autograde.split_students(["--debug"]) == ([], ["--debug"])


def test_autograde_nbgrader_command_forces_exactly_the_regraded_students():
    cmd = autograde.nbgrader_command("gpt_lab", {"ana", "bo", "carol", "dan"}, {"bo"}, {"dan"}, ["--debug"])
    assert cmd[:5] == [sys.executable, "-m", "nbgrader", "autograde", "gpt_lab"]
    assert "--force" in cmd and "--debug" in cmd
    assert cmd[-1] == "--CourseDirectory.student_id_exclude=ana,carol,dan"
    everyone = autograde.nbgrader_command("gpt_lab", {"ana", "bo"}, {"ana", "bo"}, set(), [])
    assert not any(a.startswith("--CourseDirectory.student_id_exclude") for a in everyone)
    assert autograde.nbgrader_command("gpt_lab", {"ana"}, set(), set(), []) is None
    assert autograde.nbgrader_command("gpt_lab", {"ana"}, {"ana"}, {"ana"}, []) is None  # unreadable: never


def test_autograde_to_regrade_is_what_changed_or_was_never_autograded(tmp_path, monkeypatch):
    import instructor.grade_class as grade_class

    classes = {"gpt_lab": {s: tmp_path / "submitted" / s / "gpt_lab" / "gpt_lab.ipynb" for s in ("ana", "bo", "carol")}}
    for s in ("ana", "bo"):  # carol was never autograded
        nb = tmp_path / "autograded" / s / "gpt_lab" / "gpt_lab.ipynb"
        nb.parent.mkdir(parents=True)
        nb.write_text("{}")
    monkeypatch.setattr(grade_class, "is_graded", lambda student, path, out, reference=None: student != "bo")
    assert autograde.to_regrade(tmp_path, "gpt_lab", classes, force=False, only=set()) == {"bo", "carol"}
    assert autograde.to_regrade(tmp_path, "gpt_lab", classes, force=True, only=set()) == {"ana", "bo", "carol"}
    assert autograde.to_regrade(tmp_path, "gpt_lab", classes, force=False, only={"ana"}) == {"ana"}


def test_autograde_accepts_nbgraders_student_option_after_the_separator(tmp_path, capsys):
    (tmp_path / "submitted" / "ana" / "gpt_lab").mkdir(parents=True)
    (tmp_path / "submitted" / "ana" / "gpt_lab" / "gpt_lab.ipynb").write_text("{}")
    with pytest.raises(SystemExit):
        autograde.main(["gpt_lab", "--course", str(tmp_path), "--", "--student", "carol"])
    err = capsys.readouterr().err
    assert "no submission" in err and "carol" in err and "unrecognized" not in err


def test_autograde_feedback_files_for_submissions_copied_by_hand(tmp_path):
    nbgrader_utils = pytest.importorskip("nbgrader.utils")
    for student in ("ana", "bo"):
        (tmp_path / "submitted" / student / "gpt_lab").mkdir(parents=True)
        (tmp_path / "submitted" / student / "gpt_lab" / "gpt_lab.ipynb").write_text("{}")
        (tmp_path / "autograded" / student / "gpt_lab").mkdir(parents=True)
    # bo came through nbgrader's exchange: his files are his own and stay untouched
    (tmp_path / "autograded" / "bo" / "gpt_lab" / "timestamp.txt").write_text("2026-12-01 10:00:00.000000 UTC")
    (tmp_path / "autograded" / "bo" / "gpt_lab" / "submission_secret.txt").write_text("bo's secret")
    assert autograde.feedback_files(tmp_path, "gpt_lab") == ["ana"]
    ana = tmp_path / "autograded" / "ana" / "gpt_lab"
    assert nbgrader_utils.parse_utc((ana / "timestamp.txt").read_text()).year >= 2026
    assert len((ana / "submission_secret.txt").read_text()) == 128
    assert (tmp_path / "autograded" / "bo" / "gpt_lab" / "submission_secret.txt").read_text() == "bo's secret"
    assert not (tmp_path / "submitted" / "ana" / "gpt_lab" / "timestamp.txt").exists()  # late penalties unchanged
    assert autograde.feedback_files(tmp_path, "gpt_lab") == []
