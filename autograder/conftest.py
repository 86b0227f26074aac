"""pytest plugin for ``pytest autograder``: options, the submission and reference fixtures,
verdict messages, the end-of-run table and ``--grade-json``.

The grading process (this one) never imports or runs the submission: it runs in a worker
process (``engine/worker_control.py``) and this process decides every verdict from the plain data it returns.

Whatever the input, the run ends with one report (the table, and results.json with ``--grade-json``):
a failure while configuring, collecting or reporting is caught and becomes a 0 for what did not run,
with its cause (``report.zero_report`` when nothing could be graded). This process limits its own
memory (``GRADER_MEMORY_MB``) and gives the submission one wall-clock budget (``--time-budget``).
"""

from __future__ import annotations

import builtins
import os
import resource
import time
import traceback
from pathlib import Path

import pytest

from autograder.engine import load as loader
from autograder.engine import report, worker_template
from autograder import i18n
from autograder.i18n import tr
from autograder import parts as registry
from autograder.checks.verdicts import CheckFailed, cell_label, explain
from autograder.engine.submission import LocalSubmission, RemoteSubmission, SubmissionFailure

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SUBMISSION = ROOT / "assignment" / "gpt_lab.ipynb"
DEFAULT_REFERENCE = ROOT / "solutions" / "gpt_lab.ipynb"
RUN_BUDGET_S = 600.0  # the whole run; a check started past it fails as "not run"
# The grading process's own memory (RLIMIT_DATA: its heap and anonymous mappings, where answers and
# tensors live). A grading run of the reference peaks at ~350 MB resident, torch's libraries included,
# and a 95 MB notebook at ~550 MB (benchmarks/grading_bounds.py); 640 MB of data plus the libraries it
# maps (~130 MB resident) keeps the process under 1 GB whatever the submission.
GRADER_MEMORY_MB = 640


def limit_own_memory(mb: int = GRADER_MEMORY_MB) -> None:
    """Cap this process's data segment (soft limit only: the worker raises it again for itself)."""
    if os.environ.get("GPTLAB_GRADER_MEMORY_MB"):
        mb = int(os.environ["GPTLAB_GRADER_MEMORY_MB"])
    try:
        _, hard = resource.getrlimit(resource.RLIMIT_DATA)
        want = mb << 20
        if hard != resource.RLIM_INFINITY:
            want = min(want, hard)
        resource.setrlimit(resource.RLIMIT_DATA, (want, hard))
    except (ValueError, OSError, AttributeError):  # not on this system: the report says nothing more
        pass


def _cause(exc: BaseException) -> str:
    try:
        text = " ".join(str(exc).split())[:300]
    except Exception:  # noqa: BLE001
        text = ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def pytest_addoption(parser):
    group = parser.getgroup("gpt-lab grading")
    group.addoption("--submission", default=None, help="notebook, .py module or folder to grade")
    group.addoption("--reference", default=None, help="reference solution (default: solutions/gpt_lab.ipynb)")
    group.addoption("--grade-json", default=None, help="write Gradescope results.json here")
    group.addoption("--device", default="cpu", choices=("cpu", "cuda"), help="where the submission runs")
    group.addoption("--rubric", default=None, help="a registry of parts with other points (default: autograder/parts.toml)")
    group.addoption("--time-budget", default=RUN_BUDGET_S, type=float,
                    help=f"wall-clock seconds for the whole submission (default {RUN_BUDGET_S:g})")
    group.addoption("--lang", default=None,
                    help="language of the grader's messages: en or es (default: the notebook's own, "
                         "metadata.gptlab.lang, else English)")


class Grading:
    """State of one grading run."""

    def __init__(self, config):
        self.config = config
        self.started = time.monotonic()
        self.outcomes: list[report.Outcome] = []
        self.notes: list[str] = []
        self.fatal: str | None = None  # why nothing could be graded (configuration failed)
        self.path = Path(config.getoption("submission") or DEFAULT_SUBMISSION)
        self.submission_error: str | None = None
        self.sub: RemoteSubmission | None = None
        self._ref = None
        self._ref_error: str | None = None
        self.rubric, self.bonus = {}, set()
        self.lang = i18n.set_language(config.getoption("lang"))
        try:
            self.rubric, self.bonus = report.load_rubric(config.getoption("rubric"))
            self._setup(config)
        except BaseException as exc:  # noqa: BLE001 - any failure here becomes the report's cause
            if isinstance(exc, KeyboardInterrupt):
                raise
            self.fatal = f"the grader could not start: {_cause(exc)}"

    def _setup(self, config) -> None:
        self.budget_s = float(config.getoption("time_budget") or RUN_BUDGET_S)
        device = config.getoption("device")
        if device == "cuda":
            import torch

            if not torch.cuda.is_available():
                self.notes.append("--device cuda: no GPU is available here, the submission runs on the CPU")
                device = "cpu"
        self.device = device
        try:
            program = loader.read_submission(self.path)
        except loader.SubmissionError as exc:
            self.submission_error = str(exc)
            return
        except (RecursionError, MemoryError, ValueError, TypeError, AttributeError, OSError) as exc:
            self.submission_error = f"reading it failed ({_cause(exc)})"
            return
        if not config.getoption("lang") and program.lang and program.lang != self.lang:
            # the notebook's own language: read it again, so that the reader's notes are in it too
            self.lang = i18n.set_language(program.lang)
            if self.lang != i18n.DEFAULT:
                program = loader.read_submission(self.path)
        reference = Path(config.getoption("reference") or DEFAULT_REFERENCE).resolve()
        self.sub = RemoteSubmission(program, device=device, hide=[str(reference)],
                                    budget_s=self.budget_s - (time.monotonic() - self.started))
        self.sub.start()  # the worker imports torch while pytest collects

    def submission(self) -> RemoteSubmission:
        if self.fatal:
            raise CheckFailed(tr("not run: {cause}").format(cause=self.fatal))
        if self.submission_error:
            raise CheckFailed(tr("the submission could not be read: {cause}").format(cause=self.submission_error))
        if not self.sub.loaded:
            self.sub.load()
        return self.sub

    def reference(self):
        if self._ref is None and self._ref_error is None:
            path = self.config.getoption("reference")
            path = Path(path) if path else DEFAULT_REFERENCE
            if not path.exists():
                self._ref_error = f"no reference solution at {path}"
            else:
                self._ref = LocalSubmission.from_program(loader.definitions_only(loader.read_submission(path, trusted=True)))
                failed = [c for c in self._ref.load_report if not c.ok]
                if failed:
                    self.notes.append(
                        "reference: " + "; ".join(f"cell {c.number} {c.error_type}: {c.message}" for c in failed[:3])
                    )
        if self._ref is None:
            pytest.skip(f"needs the reference solution ({self._ref_error}): runs at grading time")
        return self._ref


def pytest_configure(config):
    # before anything else: a template for the worker (a warm pool's, or one of ours that imports torch
    # while this process does; worker_control.Worker forks the worker from it, or starts it cold)
    worker_template.prepare()
    limit_own_memory()
    import torch

    torch.set_num_threads(1)  # the checks' tensors are tiny; a second thread only adds contention
    # a check module that fails to import costs its own checks, never the run (and its report)
    config.option.continue_on_collection_errors = True
    config._gptlab = Grading(config)


def pytest_collectreport(report):
    if report.failed:
        try:
            grading = _grading_of(report)
            if grading is not None:
                grading.notes.append(f"could not collect {report.nodeid or 'the checks'}: "
                                     f"{str(report.longrepr).strip().splitlines()[-1][:300] if report.longrepr else ''}")
        except Exception:  # noqa: BLE001 - a note is not worth a crash
            pass


_CONFIG = []  # the run's config, for hooks that are not given it


def _grading_of(_=None):
    return getattr(_CONFIG[0], "_gptlab", None) if _CONFIG else None


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session):
    _CONFIG[:] = [session.config]


def pytest_internalerror(excrepr, excinfo):
    """pytest itself failed (a hook raised): the report is still written, naming the cause."""
    grading = _grading_of()
    if grading is None:
        return
    grading.internal_error = f"the grader failed: {_cause(excinfo.value)}"
    _write_report(grading, _CONFIG[0])


def _part_of(item) -> str:
    """The part an item checks: the registry's one rule (``registry.check_part``), as the check cells use."""
    module = getattr(item, "module", None)
    return registry.check_part(module.__name__, item.originalname) if module is not None else None


def _hidden(item) -> bool:
    return registry.is_hidden(item.module.__name__)


def pytest_collection_modifyitems(session, config, items):
    """Keep exactly the checks the registry's discovery finds (``parts.checks_of``), in the
    registry's order, each part's visible checks before its hidden ones."""
    order = {p: i for i, p in enumerate(registry.PARTS)}
    kept = [it for it in items if _part_of(it)]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[it for it in items if not _part_of(it)])
        items[:] = kept
    items.sort(key=lambda it: (order[_part_of(it)], _hidden(it)))


@pytest.fixture
def sub(request):
    grading: Grading = request.config._gptlab
    if grading.fatal is None and time.monotonic() - grading.started > grading.budget_s:
        raise CheckFailed(tr("not run: the grading run's {seconds:g} s budget was spent").format(seconds=grading.budget_s))
    submission = grading.submission()
    deaths = len(submission.deaths)
    try:
        submission.reset()
    except SubmissionFailure:
        if len(submission.deaths) == deaths:
            raise
        submission.forget_deaths(deaths)  # the worker died between checks: once more, fresh
        submission.reset()
    return submission


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    """Run a check; if the worker died while it ran and it failed, run it once more in a fresh
    worker. A death is charged to the check (to its part) only when its own code kills the worker
    again: a death that a timer or a thread of other code caused lands on whichever check happens
    to run, and that check gets a fair second run instead (so every run gives the same grade)."""
    submission = pyfuncitem.funcargs.get("sub")
    if not isinstance(submission, RemoteSubmission):
        return None
    kwargs = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    deaths = len(submission.deaths)
    try:
        pyfuncitem.obj(**kwargs)
    except Exception:
        if len(submission.deaths) == deaths or submission.budget_spent():
            raise
        submission.forget_deaths(deaths)
        submission.reset()
        pyfuncitem.obj(**kwargs)
    return True


@pytest.fixture(scope="session")
def ref(request):
    return request.config._gptlab.reference()


_GROUPS = getattr(builtins, "BaseExceptionGroup", ())


def _unwrap(exc: BaseException) -> BaseException:
    # hypothesis may wrap the first failure in an ExceptionGroup
    while isinstance(exc, _GROUPS) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    try:
        _record(item, call, outcome.get_result())
    except Exception as exc:  # noqa: BLE001 - never an INTERNALERROR: the check counts as failed
        grading: Grading = item.config._gptlab
        grading.notes.append(f"the grader could not record {item.nodeid}: {_cause(exc)}")


def _record(item, call, rep) -> None:
    part = _part_of(item)
    if not part or (call.when == "teardown" and not rep.failed):
        return
    if call.when == "setup" and rep.passed:
        return
    grading: Grading = item.config._gptlab
    hidden = _hidden(item)
    name = i18n.check_name(item.originalname.removeprefix(f"test_{part}_").replace("_", " "))
    callspec = getattr(item, "callspec", None)
    if callspec is not None:
        name += f" [{callspec.id}]"
    if rep.skipped:
        status, message = "pending", str(rep.longrepr[-1]) if isinstance(rep.longrepr, tuple) else ""
    elif rep.failed:
        exc = _unwrap(call.excinfo.value) if call.excinfo is not None else None
        if isinstance(exc, MemoryError):
            message = tr("the grading process ran out of memory reading this check's answers")
        else:
            try:
                message = explain(exc) if exc is not None else "failed"
            except Exception as err:  # noqa: BLE001 - a message that cannot be written is still a failure
                message = f"failed ({_cause(err)})"
        status = "failed"
        rep.longrepr = f"[{part}] {name}: {message}"
    else:
        status, message = "passed", ""
    # teardown failures replace the earlier verdict of the same check
    grading.outcomes = [o for o in grading.outcomes if o.nodeid != item.nodeid]
    grading.outcomes.append(report.Outcome(part, name, item.nodeid, hidden, status, message))


def _results(grading: Grading):
    ran = [o for o in grading.outcomes if o.status != "pending"]
    pending = [o for o in grading.outcomes if o.status == "pending"]
    hidden_present = registry.HIDDEN.is_dir()
    parts = report.score_parts(ran, grading.rubric, grading.bonus, hidden_present)
    by_part = {p.part: p for p in parts}
    for o in pending:  # hidden checks that need the reference: they count, and run at grading time
        if o.part in by_part:
            by_part[o.part].pending += 1
    return parts


def _cause_of_nothing(grading: Grading) -> str:
    return (getattr(grading, "internal_error", None) or grading.fatal or
            (tr("the submission could not be read: {cause}").format(cause=grading.submission_error)
             if grading.submission_error else "")
            or tr("no check ran (see the grader's notes)"))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    grading: Grading = getattr(config, "_gptlab", None)
    if grading is None:
        return
    try:
        _summary(terminalreporter, grading)
    except Exception as exc:  # noqa: BLE001
        terminalreporter.write_line(f"the grade table could not be written: {_cause(exc)} (results.json is)")


def _summary(out, grading: Grading) -> None:
    parts = _results(grading)
    out.section(tr("gpt-lab grade"))
    out.write_line(tr("submission: {path}").format(path=grading.path))
    if grading.fatal:
        out.write_line(tr("not graded: {cause}").format(cause=grading.fatal))
    if grading.submission_error:
        out.write_line(tr("could not be read: {cause}").format(cause=grading.submission_error))
    if grading.sub is not None and grading.sub.loaded:
        bad = [c for c in grading.sub.report.cells if not c.ok and c.error_type != "NotImplementedError"]
        for c in bad[:5]:
            out.write_line(tr("note: {cell} failed while loading: {kind}: {message}")
                           .format(cell=cell_label(grading.sub, c.number), kind=c.error_type, message=c.message))
        if len(bad) > 5:
            out.write_line(tr("note: {count} more cells failed while loading").format(count=len(bad) - 5))
    for note in _notes(grading):
        if not note.startswith("cell "):
            out.write_line(tr("note: {note}").format(note=note))
    out.write_line("")
    out.write_line(report.table(parts))
    pending = sum(p.pending for p in parts)
    if pending:
        points = sum((p.pending_points() for p in parts), 0)
        out.write_line(tr("{count} hidden checks worth {points:.2f} points run at grading time "
                          "(the scores above count them as not yet earned)").format(count=pending, points=float(points)))


def _notes(grading: Grading) -> list[str]:
    notes = list(grading.notes)
    if grading.sub is not None:
        notes += grading.sub.report.notes
        for what, why in grading.sub.deaths[:5]:
            notes.append(tr("the submission's process died while running {what}: {why}").format(what=what, why=why))
    return notes


def _write_report(grading: Grading, config) -> list:
    """Write results.json (if asked) from what was recorded; never raises. Returns the parts."""
    path = config.getoption("grade_json")
    parts = []
    try:
        if grading.sub is not None:  # first stop the submission and all it started, then write
            grading.sub.close()
        parts = _results(grading)
        if path:
            lines = [tr("{cell}: {kind}: {message}").format(cell=cell_label(grading.sub, c.number), kind=c.error_type,
                                                             message=c.message)
                     for c in (grading.sub.report.cells if grading.sub and grading.sub.loaded else []) if not c.ok]
            extra = [tr("not graded: {cause}").format(cause=grading.fatal)] if grading.fatal else []
            extra += ([tr("could not be read: {cause}").format(cause=grading.submission_error)]
                      if grading.submission_error else [])
            data = report.gradescope_json(parts, "\n".join(extra + _notes(grading) + lines[:20]),
                                          not_run=tr("not run: {cause}").format(cause=_cause_of_nothing(grading)))
            report.write_json(path, data)
    except BaseException as exc:  # noqa: BLE001 - the last resort: a zero report naming the cause
        if path:
            try:
                report.write_json(path, report.zero_report(f"the grader failed while reporting: {_cause(exc)}",
                                                           grading.rubric or None, grading.bonus))
            except Exception:  # noqa: BLE001 - nothing more can be done here; the wrapper writes its own
                traceback.print_exc()
        parts = []
    return parts


def pytest_sessionfinish(session, exitstatus):
    grading: Grading = getattr(session.config, "_gptlab", None)
    if grading is None:
        return
    parts = _write_report(grading, session.config)
    if exitstatus in (0, 1):
        # keep pytest's own codes for usage errors and interrupts; 0 only when every point was earned
        earned = bool(parts) and not grading.fatal and all(p.passed == p.total for p in parts if p.points > 0)
        session.exitstatus = 0 if earned else 1
