"""The state of one grading run (``Grading``), made when pytest is configured: the submission read
and its worker started, the reference loaded on first use, the outcomes and notes recorded.

This process never imports or runs the submission: it runs in a worker process
(``engine/worker_control.py``), and every verdict is decided here from the plain data it returns.
A failure while starting becomes ``Grading.fatal``: every check then fails with that cause, and the
report is still written (``plugin/results.py``). This process limits its own memory
(``GRADER_MEMORY_MB``) and gives the submission one wall-clock budget (``--time-budget``).
"""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path

import pytest

from autograder import i18n
from autograder.checks.verdicts import CheckFailed
from autograder.engine import load as loader
from autograder.engine import report, worker_template
from autograder.engine.submission import LocalSubmission, RemoteSubmission
from autograder.i18n import tr
from autograder.plugin.options import (DEFAULT_REFERENCE, DEFAULT_SUBMISSION, RUN_BUDGET_S, choice_note,
                                      default_submission)

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


def cause(exc: BaseException) -> str:
    """An exception in one line, for the grader's notes."""
    try:
        text = " ".join(str(exc).split())[:300]
    except Exception:  # noqa: BLE001
        text = ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Grading:
    """State of one grading run."""

    def __init__(self, config):
        self.config = config
        self.started = time.monotonic()
        self.outcomes: list[report.Outcome] = []
        self.notes: list[str] = []
        self.fatal: str | None = None  # why nothing could be graded (configuration failed)
        self.internal_error: str | None = None  # pytest itself failed (plugin/results.py)
        self.path, self._other = Path(config.getoption("submission") or DEFAULT_SUBMISSION), None
        self.submission_error: str | None = None
        self.submission_missing = False  # the submission_error is that nothing is there
        self.sub: RemoteSubmission | None = None
        self._ref = None
        self._ref_error: str | None = None
        self.rubric, self.bonus = {}, set()
        self.budget_s = RUN_BUDGET_S
        self.lang = i18n.set_language(config.getoption("lang"))
        if not config.getoption("submission"):  # the notebook of the student's language (options.default_submission)
            self.path, self._other = default_submission()
        try:
            self.rubric, self.bonus = report.load_rubric(config.getoption("rubric"))
            self._setup(config)
        except BaseException as exc:  # noqa: BLE001 - any failure here becomes the report's cause
            if isinstance(exc, KeyboardInterrupt):
                raise
            self.fatal = f"the grader could not start: {cause(exc)}"

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
            self.submission_missing = not os.path.lexists(self.path)
            return
        except (RecursionError, MemoryError, ValueError, TypeError, AttributeError, OSError) as exc:
            self.submission_error = f"reading it failed ({cause(exc)})"
            return
        if not config.getoption("lang") and program.lang and program.lang != self.lang:
            # the notebook's own language: read it again, so that the reader's notes are in it too
            self.lang = i18n.set_language(program.lang)
            if self.lang != i18n.DEFAULT:
                program = loader.read_submission(self.path)
        if self._other is not None:  # in the language settled above
            self.notes.append(choice_note(self.path, self._other))
        reference = Path(config.getoption("reference") or DEFAULT_REFERENCE).resolve()
        self.sub = RemoteSubmission(program, device=device, hide=[str(reference)],
                                    budget_s=self.budget_s - (time.monotonic() - self.started))
        self.sub.start()  # the worker imports torch while pytest collects

    def budget_spent(self) -> bool:
        return self.fatal is None and time.monotonic() - self.started > self.budget_s

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


_CONFIG = []  # the run's config, for hooks that are not given it (pytest_internalerror)


def grading_of(config=None) -> Grading | None:
    config = config if config is not None else (_CONFIG[0] if _CONFIG else None)
    return getattr(config, "_gptlab", None)


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
    _CONFIG[:] = [config]
