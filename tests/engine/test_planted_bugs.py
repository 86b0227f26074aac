"""Each engine unit test shown to fail on a planted bug: a table of (unit test, planted bug), where a
planted bug is a small ``monkeypatch`` of the engine. Every row runs its unit test twice: without the
bug it passes, under the bug it fails (an AssertionError, pytest's failure, or the module's own error)."""

from __future__ import annotations

import contextlib
import importlib
import inspect
import math
import types
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable

import pytest
import torch

from autograder import parts
from autograder.engine import (command, hidden_count, load, report, run_cells, submission, wire, worker_control, worker_ops, worker_root)


@dataclass
class Planted:
    id: str
    module: str  # the unit test's module in tests/engine
    test: str
    plant: Callable[[pytest.MonkeyPatch], None]
    params: dict = field(default_factory=dict)
    errors: tuple = ()  # the module's own errors that count as the test failing


# ---- the bugs -------------------------------------------------------------------------------


def wire_drops_dtype(mp):
    original = wire.encode_tensor
    mp.setattr(wire, "encode_tensor", lambda t: original(t.float() if t.dtype != torch.bool else t))


def wire_list_becomes_tuple(mp):
    original = wire.to_jsonable

    def to_jsonable(value, handle_for=None, max_values=wire.MAX_VALUES):
        return original(tuple(value) if type(value) is list else value, handle_for, max_values)

    mp.setattr(wire, "to_jsonable", to_jsonable)


def wire_no_depth_limit(mp):
    original = wire.to_jsonable

    def to_jsonable(value, handle_for=None, max_values=wire.MAX_VALUES):
        with mp.context() as inner:  # the bound is lifted while encoding only
            inner.setattr(wire, "MAX_DEPTH", 10**6)
            return original(value, handle_for, max_values)

    mp.setattr(wire, "to_jsonable", to_jsonable)


def wire_no_value_cap(mp):
    original = wire.to_jsonable
    mp.setattr(wire, "to_jsonable", lambda value, handle_for=None, max_values=0: original(value, handle_for, 10**9))


def wire_trusts_the_shape(mp):
    original = wire._decode_tensor

    def decode(spec):
        dtype, shape, device, payload = spec
        return original([dtype, [len(__import__("base64").b64decode(payload)) // 8], device, payload]).reshape(-1)

    mp.setattr(wire, "_decode_tensor", decode)


def load_keeps_check_cells(mp):
    mp.setattr(load, "_is_test_cell", lambda cell: False)


def load_runs_slow_cells(mp):
    mp.setattr(load, "SKIP_TAGS", set())


def load_follows_symlinks(mp):
    import os

    proxy = types.SimpleNamespace(**{k: getattr(os, k) for k in dir(os) if not k.startswith("__")})
    proxy.lstat = os.stat  # the locator looks through links
    mp.setattr(load, "os", proxy)


def load_ignores_hard_links(mp):
    original = load.os.lstat

    class Stat:
        def __init__(self, st):
            self._st = st

        def __getattr__(self, name):
            return 1 if name == "st_nlink" else getattr(self._st, name)

    proxy = types.SimpleNamespace(**{k: getattr(load.os, k) for k in dir(load.os) if not k.startswith("__")})
    proxy.lstat = lambda p: Stat(original(p))
    mp.setattr(load, "os", proxy)


def report_floors_shares(mp):
    def shares(self):
        if not self.total:
            return []
        each = math.floor(self.points * report.UNITS / self.total)
        return [Fraction(each, report.UNITS)] * self.total

    mp.setattr(report.PartScore, "shares", shares)


def report_pending_always(mp):
    original = report.score_parts
    mp.setattr(report, "score_parts", lambda outcomes, rubric, bonus, hidden_present: original(outcomes, rubric, bonus, False))


def report_writes_in_place(mp):
    def write_text(path, text):
        with open(path, "w") as f:  # through a link, over a torn file, keeping its mode
            f.write(text)

    mp.setattr(report, "write_text_atomic", write_text)


def command_drops_reference(mp):
    original = command.pytest_args
    mp.setattr(command, "pytest_args", lambda submission, grade_json, reference=None, **kw: original(submission, grade_json, **kw))


def run_cells_full_traceback(mp):
    import traceback

    mp.setattr(run_cells, "student_traceback", lambda exc, limit_lines=12: "".join(traceback.format_exception(exc)))


def run_cells_swallows_timeout(mp):
    original = run_cells.run_cell

    def run_cell(namespace, number, source, is_module=False):
        try:
            return original(namespace, number, source, is_module)
        except BaseException as exc:  # noqa: BLE001
            return run_cells.CellOutcome(number, False, type(exc).__name__, str(exc))

    mp.setattr(run_cells, "run_cell", run_cell)


def worker_ops_values_never_restored(mp):
    @contextlib.contextmanager
    def patched(self, stubs, values):
        values = self._decode(values) if values else {}
        self.ns.update(values)
        yield

    mp.setattr(worker_ops.Runtime, "patched", patched)


def worker_ops_new_handle_each_time(mp):
    def handle_for(self, obj):
        hid = len(self.handles) + 1
        self.handles[hid] = obj
        return wire.Handle(hid, type(obj).__name__)

    mp.setattr(worker_ops.Runtime, "handle_for", handle_for)


def submission_timeout_called_a_crash(mp):
    def _once(self, message, timeout):
        try:
            return self.worker.request(message, timeout, self.deadline)
        except worker_control.WorkerDied as exc:
            return {"ok": False, "error": {"type": "ProcessDied", "message": str(exc)}, "budget": exc.budget}

    mp.setattr(submission.RemoteSubmission, "_once", _once)


def submission_skips_the_copy(mp):
    mp.setattr(submission.LocalSubmission, "_request", lambda self, message, timeout, key=None: self.runtime.dispatch(message))
    mp.setattr(wire, "_decode_tensor", lambda spec: _shared[spec[3]])
    original = wire.encode_tensor

    def encode(t):
        spec = original(t)
        _shared[spec["__tensor__"][3]] = t
        return spec

    mp.setattr(wire, "encode_tensor", encode)


_shared: dict = {}


def worker_control_keeps_the_repository(mp):
    original = worker_control._keep
    mp.setattr(worker_control, "_keep", lambda: [*original(), worker_control.ROOT])


def confine_mounts_stay_writable(mp):
    mp.setattr(worker_root, "_MS_RDONLY", 0)


def confine_hides_nothing(mp):
    original = worker_root._mount

    def _mount(libc, source, target, fstype, flags, data=None):
        if source == "/dev/null" or data == "size=4k,mode=0":
            return None
        return original(libc, source, target, fstype, flags, data)

    mp.setattr(worker_root, "_mount", _mount)


def skip_defences(*names, police=True):
    """The worker started without these defences of its confinement (and, with ``police=False``, without
    the grading process adding up its tree's memory, the fallback of a memory cgroup)."""

    def plant(mp):
        mp.setattr(worker_control, "SKIPPED_DEFENCES", set(names) | (set() if police else {"police"}))

    return plant


def worker_main_unbounded_answers(mp):
    original = wire.send
    mp.setattr(wire, "send", lambda sock, message, max_bytes=wire.MAX_MESSAGE_BYTES: original(sock, message))


def hidden_count_counts_visible_too(mp):
    mp.setattr(hidden_count, "count_hidden", lambda: {
        p: len(parts.checks_of(p, hidden=True)) for p in parts.ids()
        if len(parts.checks_of(p, hidden=True)) > len(parts.checks_of(p, hidden=False))})


def parts_any_test_is_a_check(mp):
    mp.setattr(parts, "check_part", lambda module_name, name, obj=None:
               parts.module_part(module_name) if name.startswith("test_") else None)


def parts_allows_five_decimals(mp):
    original = parts.Fraction
    mp.setattr(parts, "Fraction", lambda text: original(str(round(float(text), 4))))


TABLE = [
    Planted("wire drops a tensor's dtype", "test_wire", "test_tensors_of_every_dtype_round_trip", wire_drops_dtype),
    Planted("wire turns a list into a tuple", "test_wire", "test_list_and_tuple_kept_apart", wire_list_becomes_tuple),
    Planted("wire has no depth limit", "test_wire", "test_deep_nesting_is_refused_both_ways", wire_no_depth_limit),
    Planted("wire has no cap on values", "test_wire", "test_too_many_values_are_refused_both_ways_a_tensor_counts_once",
            wire_no_value_cap),
    Planted("wire trusts the data over the shape", "test_wire", "test_shape_data_mismatch_is_refused_both_ways",
            wire_trusts_the_shape),
    Planted("load keeps nbgrader check cells", "test_load", "test_nbgrader_check_cells_skipped_solution_cells_kept",
            load_keeps_check_cells),
    Planted("load runs cells tagged slow", "test_load", "test_cells_tagged_slow_or_skip_grading_are_skipped_with_a_note",
            load_runs_slow_cells),
    Planted("the locator follows symlinks", "test_load", "test_symlink_refused_never_followed", load_follows_symlinks),
    Planted("the locator accepts hard links", "test_load", "test_hard_link_refused", load_ignores_hard_links),
    Planted("report floors the shares", "test_report", "test_shares_are_whole_units_that_add_up_exactly",
            report_floors_shares, {"points": "0.25", "checks": 3}),
    Planted("report floors the shares (7)", "test_report", "test_shares_are_whole_units_that_add_up_exactly",
            report_floors_shares, {"points": "1", "checks": 7}),
    Planted("report counts pending checks when hidden ones ran", "test_report",
            "test_score_parts_counts_pending_only_when_hidden_absent", report_pending_always),
    Planted("write_json writes in place", "test_report", "test_write_json_replaces_a_symlink_instead_of_writing_through_it",
            report_writes_in_place),
    Planted("write_json keeps a forged file's mode", "test_report", "test_write_json_replaces_a_forged_file_atomically",
            report_writes_in_place),
    Planted("the command builder drops --reference", "test_command", "test_every_option", command_drops_reference),
    Planted("run_cells shows the grader's frames", "test_run_cells",
            "test_traceback_names_only_the_students_cells_and_lines", run_cells_full_traceback),
    Planted("run_cells swallows the grader's timeout", "test_run_cells", "test_grader_timeout_is_never_swallowed",
            run_cells_swallows_timeout),
    Planted("worker_ops leaves a patched name in place", "test_worker_ops",
            "test_values_patch_the_namespace_for_one_call_only", worker_ops_values_never_restored),
    Planted("worker_ops gives one object many handles", "test_worker_ops",
            "test_new_returns_a_handle_and_one_object_keeps_one_handle", worker_ops_new_handle_each_time),
    Planted("submission reports a time-out as a crash", "test_submission", "test_code_that_hung_once_is_not_run_again",
            submission_timeout_called_a_crash),
    Planted("LocalSubmission hands out the submission's own tensors", "test_submission",
            "test_local_submission_runs_cells_and_answers_as_the_wire_would", submission_skips_the_copy),
    Planted("worker_control lets the worker read the repository", "test_worker_control",
            "test_the_confinement_keeps_only_what_the_worker_needs", worker_control_keeps_the_repository),
    Planted("confine leaves the kept paths writable", "test_worker_confine",
            "test_confine_builds_a_root_of_kept_paths_only_and_covers_hidden_ones", confine_mounts_stay_writable),
    Planted("confine hides nothing", "test_worker_confine",
            "test_confine_builds_a_root_of_kept_paths_only_and_covers_hidden_ones", confine_hides_nothing),
    Planted("the worker keeps the host's root", "test_worker_confine", "test_worker_sees_nothing_of_the_host",
            skip_defences("root")),
    Planted("the worker stays root", "test_worker_confine", "test_worker_is_never_root", skip_defences("user")),
    Planted("the worker has no seccomp filter", "test_worker_confine",
            "test_worker_system_calls_beyond_a_lab_are_refused", skip_defences("seccomp")),
    Planted("the worker's threads are not counted", "test_worker_confine",
            "test_worker_threads_and_processes_are_counted_together_and_capped", skip_defences("user", "cgroup")),
    Planted("the worker's memory is capped per process only", "test_worker_confine",
            "test_worker_memory_is_capped_for_the_whole_tree", skip_defences("cgroup", police=False)),
    Planted("worker_main sends answers of any size", "test_worker_main",
            "test_an_answer_over_the_limit_is_replaced_by_an_error", worker_main_unbounded_answers,
            errors=(wire.ProtocolError,)),
    Planted("hidden_count counts the visible checks too", "test_hidden_count",
            "test_counts_are_hidden_minus_visible_for_parts_with_hidden_checks", hidden_count_counts_visible_too),
    Planted("parts takes another part's test for a check", "test_parts", "test_check_part_rule", parts_any_test_is_a_check),
    Planted("parts rounds points with 5 decimals", "test_parts", "test_invalid_registries_are_refused",
            parts_allows_five_decimals, {"text": "[parts.a]\npoints = 0.12345\n", "message": "4 decimals"}),
]


def run_unit_test(case: Planted, tmp_path_factory, planted: bool) -> BaseException | None:
    """Run the unit test function (its bug planted or not); the failure it raised, or None."""
    module = importlib.import_module(f"{__package__}.{case.module}")
    fn = getattr(module, case.test)
    with pytest.MonkeyPatch.context() as mp:
        kwargs = dict(case.params)
        for name in inspect.signature(fn).parameters:
            if name == "tmp_path":
                kwargs[name] = tmp_path_factory.mktemp("planted")
            elif name == "monkeypatch":
                kwargs[name] = mp
            elif name not in kwargs:
                raise TypeError(f"{case.test} needs the fixture {name!r}: not runnable here")
        if planted:
            case.plant(mp)
        try:
            fn(**kwargs)
        except (AssertionError, pytest.fail.Exception, *case.errors) as exc:
            return exc
    return None


def test_every_engine_module_has_a_planted_bug():
    covered = {case.module for case in TABLE}
    expected = {f"test_{m}" for m in ("wire", "load", "report", "command", "run_cells", "worker_ops", "submission",
                                      "worker_control", "worker_confine", "worker_main", "hidden_count", "parts")}
    assert covered == expected
    ids = [case.id for case in TABLE]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("planted", [False, True], ids=["clean", "planted"])
@pytest.mark.parametrize("case", TABLE, ids=[case.id for case in TABLE])
def test_unit_test_fails_on_its_planted_bug(case, planted, tmp_path_factory):
    _shared.clear()
    failure = run_unit_test(case, tmp_path_factory, planted)
    _shared.clear()
    if planted:
        assert failure is not None, f"{case.module}::{case.test} passed with the bug '{case.id}' planted"
    else:
        assert failure is None, f"{case.module}::{case.test} fails without any bug: {failure!r}"
