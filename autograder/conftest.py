"""pytest plugin for ``pytest autograder``: options, the submission and reference fixtures,
verdict messages, the end-of-run table and ``--grade-json``.

The grading process (this one) never imports or runs the submission: it runs in a worker
process (``sandbox.py``) and this process decides every verdict from the plain data it returns.
"""

from __future__ import annotations

import builtins
import time
from pathlib import Path

import pytest

from autograder import loader, report
from autograder.checking import PARTS, CheckFailed, explain
from autograder.submission import LocalSubmission, RemoteSubmission

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SUBMISSION = ROOT / "assignment" / "gpt_lab.ipynb"
DEFAULT_REFERENCE = ROOT / "solutions" / "gpt_lab.ipynb"
RUN_BUDGET_S = 600.0  # the whole run; a check started past it fails as "not run"


def pytest_addoption(parser):
    group = parser.getgroup("gpt-lab grading")
    group.addoption("--submission", default=None, help="notebook, .py module or folder to grade")
    group.addoption("--reference", default=None, help="reference solution (default: solutions/gpt_lab.ipynb)")
    group.addoption("--grade-json", default=None, help="write Gradescope results.json here")
    group.addoption("--device", default="cpu", choices=("cpu", "cuda"), help="where the submission runs")
    group.addoption("--rubric", default=None, help="points per part (default: autograder/rubric.toml)")


class Grading:
    """State of one grading run."""

    def __init__(self, config):
        self.config = config
        self.started = time.monotonic()
        self.outcomes: list[report.Outcome] = []
        self.notes: list[str] = []
        self.rubric, self.bonus = report.load_rubric(config.getoption("rubric"))
        device = config.getoption("device")
        if device == "cuda":
            import torch

            if not torch.cuda.is_available():
                self.notes.append("--device cuda: no GPU is available here, the submission runs on the CPU")
                device = "cpu"
        self.device = device
        self.path = Path(config.getoption("submission") or DEFAULT_SUBMISSION)
        self.submission_error: str | None = None
        self.sub: RemoteSubmission | None = None
        try:
            reference = Path(config.getoption("reference") or DEFAULT_REFERENCE).resolve()
            self.sub = RemoteSubmission(loader.read_submission(self.path), device=device, hide=[str(reference)])
            self.sub.start()  # the worker imports torch while pytest collects
        except loader.SubmissionError as exc:
            self.submission_error = str(exc)
        self._ref = None
        self._ref_error: str | None = None

    def submission(self) -> RemoteSubmission:
        if self.submission_error:
            raise CheckFailed(f"the submission could not be read: {self.submission_error}")
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
                self._ref = LocalSubmission.from_program(loader.definitions_only(loader.read_submission(path)))
                failed = [c for c in self._ref.load_report if not c.ok]
                if failed:
                    self.notes.append(
                        "reference: " + "; ".join(f"cell {c.number} {c.error_type}: {c.message}" for c in failed[:3])
                    )
        if self._ref is None:
            pytest.skip(f"needs the reference solution ({self._ref_error}): runs at grading time")
        return self._ref


def pytest_configure(config):
    import torch

    torch.set_num_threads(1)  # the checks' tensors are tiny; a second thread only adds contention
    config.addinivalue_line("markers", "part(name): the lab part a check belongs to")
    config._gptlab = Grading(config)


def _part_of(item) -> str:
    marker = item.get_closest_marker("part")
    return marker.args[0] if marker else getattr(item.module, "PART", "")


def pytest_collection_modifyitems(session, config, items):
    order = {p: i for i, p in enumerate(PARTS)}
    items.sort(key=lambda it: (order.get(_part_of(it), len(order)), "hidden" in Path(str(it.fspath)).parts))


@pytest.fixture
def sub(request):
    grading: Grading = request.config._gptlab
    if time.monotonic() - grading.started > RUN_BUDGET_S:
        raise CheckFailed(f"not run: the grading run's {RUN_BUDGET_S:g} s budget was spent")
    submission = grading.submission()
    submission.reset()
    return submission


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
    rep = outcome.get_result()
    part = _part_of(item)
    if not part or (call.when == "teardown" and not rep.failed):
        return
    if call.when == "setup" and rep.passed:
        return
    grading: Grading = item.config._gptlab
    hidden = "hidden" in Path(str(item.fspath)).parts
    name = item.originalname.removeprefix(f"test_{part}_").replace("_", " ")
    callspec = getattr(item, "callspec", None)
    if callspec is not None:
        name += f" [{callspec.id}]"
    if rep.skipped:
        status, message = "pending", str(rep.longrepr[-1]) if isinstance(rep.longrepr, tuple) else ""
    elif rep.failed:
        status, message = "failed", explain(_unwrap(call.excinfo.value))
        rep.longrepr = f"[{part}] {name}: {message}"
    else:
        status, message = "passed", ""
    # teardown failures replace the earlier verdict of the same check
    grading.outcomes = [o for o in grading.outcomes if o.nodeid != item.nodeid]
    grading.outcomes.append(report.Outcome(part, name, item.nodeid, hidden, status, message))


def _results(grading: Grading):
    ran = [o for o in grading.outcomes if o.status != "pending"]
    pending = [o for o in grading.outcomes if o.status == "pending"]
    hidden_present = (Path(__file__).parent / "hidden").is_dir()
    parts = report.score_parts(ran, grading.rubric, grading.bonus, hidden_present)
    by_part = {p.part: p for p in parts}
    for o in pending:  # hidden checks that need the reference: they count, and run at grading time
        if o.part in by_part:
            by_part[o.part].pending += 1
    return parts


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    grading: Grading = config._gptlab
    parts = _results(grading)
    tr = terminalreporter
    tr.section("gpt-lab grade")
    tr.write_line(f"submission: {grading.path}")
    if grading.submission_error:
        tr.write_line(f"could not be read: {grading.submission_error}")
    if grading.sub is not None and grading.sub.loaded:
        bad = [c for c in grading.sub.report.cells if not c.ok and c.error_type != "NotImplementedError"]
        for c in bad[:5]:
            tr.write_line(f"note: cell {c.number} failed while loading: {c.error_type}: {c.message}")
        if len(bad) > 5:
            tr.write_line(f"note: {len(bad) - 5} more cells failed while loading")
    for note in grading.notes + (grading.sub.report.notes if grading.sub is not None else []):
        if not note.startswith("cell "):
            tr.write_line(f"note: {note}")
    tr.write_line("")
    tr.write_line(report.table(parts))
    pending = sum(p.pending for p in parts)
    if pending:
        points = sum((p.check_points() * p.pending for p in parts), 0)
        tr.write_line(
            f"{pending} hidden checks worth {float(points):.2f} points run at grading time "
            "(the scores above count them as not yet earned)"
        )


def pytest_sessionfinish(session, exitstatus):
    grading: Grading = getattr(session.config, "_gptlab", None)
    if grading is None:
        return
    if grading.sub is not None:  # first stop the submission and all it started, then write
        grading.sub.close()
    parts = _results(grading)
    path = session.config.getoption("grade_json")
    if path:
        lines = [f"cell {c.number}: {c.error_type}: {c.message}" for c in
                 (grading.sub.report.cells if grading.sub and grading.sub.loaded else []) if not c.ok]
        report.write_json(path, report.gradescope_json(parts, "\n".join(grading.notes + lines[:20])))
    if exitstatus in (0, 1):  # keep pytest's own codes for usage errors and interrupts
        earned = all(p.passed == p.total for p in parts if p.points > 0)
        session.exitstatus = 0 if earned else 1
