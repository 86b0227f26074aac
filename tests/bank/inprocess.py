"""The banks graded in this process: every check's verdict and message, without a worker or pytest run.

``grade(path)`` reads a submission as the grader does (``engine.load.read_submission``), runs its
cells in a ``LocalSubmission`` (whose answers make the same JSON round trip as the worker's) and
calls every check of the registry (``parts.checks_of(part, hidden=True)``: the same discovery,
order and parametrisation as ``pytest autograder``'s collection), each on a reset submission, the
hidden ones with the reference (``ref``). The outcomes are scored and written by the grader's own
``engine.report`` into a results.json-shaped dict, so a test reads an in-process grade exactly as
it reads an end-to-end one (``tests/bank/banks.py``'s rules judge both).

What this leaves out is what the slow tier covers (``pytest tests -m e2e_bank``): the worker's
isolation, its time limits, the plugin's hooks. ``tests/test_bank_drift.py`` grades a sample of
every bank both ways and asserts equal verdicts, so the two cannot drift apart.

Programs are graded once per content (a sha256 of the submission's bytes): the 37 mistakes that are
byte-identical to mutants cost nothing more. With ``GPTLAB_INPROCESS_CACHE=DIR`` (``.ci/run`` sets it) the
grades are also kept in DIR, under a digest of the grader's code, this file, Python and torch, so a later
pytest run (the e2e_bank tier's drift guard) reads them instead of grading again.

    from tests.bank import inprocess
    data = inprocess.grade(path)           # results.json's dict: tests (name, status, output, ...), score
    inprocess.verdicts(data)               # {"head: causal mask": ("failed", "message"), ...}
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import io
import os
import warnings
from pathlib import Path

from tests.conftest import REFERENCE

_CACHE: dict[tuple[str, str], dict] = {}
# processes that grade a batch (grade_many); GPTLAB_INPROCESS_JOBS=1 grades in this process
JOBS = int(os.environ.get("GPTLAB_INPROCESS_JOBS", "2"))
# a folder that keeps the grades across pytest runs (.ci/run sets it: the e2e_bank tier's drift guard then
# compares with the grades the fast tier computed). Unset: this process's memory only.
DISK_CACHE = os.environ.get("GPTLAB_INPROCESS_CACHE", "")
_ROOT = Path(__file__).resolve().parent.parent.parent


def _digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


_GRADER: list[str] = []


def _grader_digest() -> str:
    """Everything a grade here depends on besides the two notebooks: the grader's code and registry, this
    runner, the interpreter and torch. A grade on disk is used only under the same digest."""
    if not _GRADER:
        import sys

        import torch

        h = hashlib.sha256(f"{sys.version}|{torch.__version__}".encode())
        for f in sorted([*(_ROOT / "autograder").rglob("*.py"), *(_ROOT / "autograder").rglob("*.toml"),
                         *(_ROOT / "autograder").rglob("*.mo"), *(_ROOT / "autograder").rglob("*.json"),
                         *(_ROOT / "data").glob("*.py"), Path(__file__)]):
            h.update(str(f.relative_to(_ROOT)).encode() + b"\0" + f.read_bytes() + b"\0")
        _GRADER.append(h.hexdigest())
    return _GRADER[0]


def _disk_path(key: tuple[str, str]) -> Path | None:
    if not DISK_CACHE:
        return None
    return Path(DISK_CACHE) / _grader_digest()[:16] / f"{key[0][:24]}-{key[1][:24]}.json"


def _from_disk(key: tuple[str, str]) -> dict | None:
    import json

    path = _disk_path(key)
    if path is None or not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _to_disk(key: tuple[str, str], data: dict) -> None:
    import json

    path = _disk_path(key)
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(tmp, path)


def _remember(key: tuple[str, str], data: dict) -> None:
    _CACHE[key] = data
    _to_disk(key, data)


def _known(key: tuple[str, str]) -> bool:
    if key not in _CACHE:
        found = _from_disk(key)
        if found is not None:
            _CACHE[key] = found
    return key in _CACHE


_REFERENCES: dict[str, object] = {}


def _reference(path: Path):
    """The reference, loaded as a grading run loads it (``plugin.grading.Grading.reference``), once per
    content in this process: a grading run shares one reference among all its checks, and the checks only
    call it (the drift guard compares these grades with end-to-end runs, each with a reference of its own)."""
    from autograder.engine import load
    from autograder.engine.submission import LocalSubmission

    key = _digest(path)
    if key not in _REFERENCES:
        _REFERENCES[key] = LocalSubmission.from_program(load.definitions_only(load.read_submission(path, trusted=True)))
    return _REFERENCES[key]


def _submission(path: Path):
    """The submission's cells run in a LocalSubmission, as the worker runs them (``worker_ops.op_exec_cell``):
    its module registered in ``sys.modules`` under the worker's name (``submission`` for a .py, ``__main__``
    for a notebook), so that code looking its module up (a @dataclass) behaves as it does there. The
    caller restores ``sys.modules`` (``_own_modules``)."""
    from autograder.engine import load, run_cells
    from autograder.engine.submission import LocalSubmission

    program = load.read_submission(path)
    sub = LocalSubmission()
    is_module = program.path.suffix == ".py"
    run_cells.register(sub.runtime.module, is_module)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        for cell in program.cells:
            sub.load_report.append(run_cells.run_cell(sub.runtime.ns, cell.number, load.python_source(cell),
                                                      is_module, cell.label))
    sub.program = program  # what the checks' messages read, as from a RemoteSubmission (cell labels, .py)
    return sub


@contextlib.contextmanager
def _own_modules():
    """The submission's module names (``__main__``, ``submission``) given back as they were."""
    import sys

    from autograder.engine import run_cells

    names = (run_cells.MODULE_NAME, run_cells.NOTEBOOK_MODULE)
    saved = {n: sys.modules.get(n) for n in names}
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def _pytest_label(label: str, fn, kwargs: dict) -> str:
    """The label pytest gives a parametrised check: ``parts.checks_of`` writes ``[value]``, pytest
    writes the mark's ``ids`` when it has them (``[hs8]``, not ``[(16, 8)]``)."""
    for mark in getattr(fn, "pytestmark", []):
        ids = mark.kwargs.get("ids") if mark.name == "parametrize" else None
        if ids is None or callable(ids):
            continue
        argname, values = mark.args[0], list(mark.args[1])
        index = next(i for i, v in enumerate(values) if v is kwargs[argname] or v == kwargs[argname])
        label = label.replace(f"[{kwargs[argname]}]", f"[{ids[index]}]")
    return label


def run_checks(sub, ref) -> list:
    """Every check of every part on ``sub`` (reset before each), as ``report.Outcome``s in the
    collection's order: each part's visible checks, then its hidden ones."""
    from autograder import i18n
    from autograder import parts as registry
    from autograder.checks.verdicts import explain
    from autograder.engine import report

    outcomes = []
    for part in registry.PARTS:
        for label, fn, kwargs in registry.checks_of(part, hidden=True):
            hidden = registry.is_hidden(fn.__module__)
            args = {"sub": sub}
            if "ref" in inspect.signature(fn).parameters:
                args["ref"] = ref
            try:
                sub.reset()  # the `sub` fixture's reset
                with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                        contextlib.redirect_stderr(io.StringIO()):
                    fn(**args, **kwargs)
                status, message = "passed", ""
            except Exception as exc:  # noqa: BLE001 - every failure is a verdict, as in plugin/outcomes.py
                while getattr(exc, "exceptions", None):  # hypothesis' groups, unwrapped as the plugin does
                    exc = exc.exceptions[0]
                status, message = "failed", explain(exc)
            outcomes.append(report.Outcome(part, i18n.check_name(_pytest_label(label, fn, kwargs)),
                                           f"{fn.__module__}::{label}", hidden, status, message,
                                           registry.check_weight(part, fn.__name__, hidden)))
    return outcomes


def _grade_uncached(path: Path, reference: Path) -> dict:
    from autograder import parts as registry
    from autograder.engine import report

    ref = _reference(reference)
    with _own_modules():
        sub = _submission(path)
        outcomes = run_checks(sub, ref)
    rubric, bonus = report.load_rubric()
    data = report.gradescope_json(report.score_parts(outcomes, rubric, bonus, registry.HIDDEN.is_dir()))
    data["load"] = [{"cell": c.number, "ok": c.ok, "error": c.error_type, "message": c.message}
                    for c in sub.load_report]
    return data


def grade(path: str | Path, reference: str | Path = REFERENCE) -> dict:
    """The results.json (as a dict) that grading ``path`` against ``reference`` in this process gives;
    graded once per (submission content, reference content)."""
    path, reference = Path(path), Path(reference)
    key = (_digest(path), _digest(reference))
    if not _known(key):
        _remember(key, _grade_uncached(path, reference))
    return _CACHE[key]


def _child_init() -> None:
    import torch

    torch.set_num_threads(1)  # as the grading process (plugin/grading.py): one thread per grading


def _child_grade(args: tuple[str, str]) -> dict:
    return _grade_uncached(Path(args[0]), Path(args[1]))


def grade_many(paths: list, reference: str | Path = REFERENCE, jobs: int = JOBS) -> dict[Path, dict]:
    """``grade`` for many submissions: each content graded once, in ``jobs`` fresh processes (spawned,
    so that no state of this process, torch's threads included, reaches them; each grades many
    programs, one after another, as this process would). Returns {path: results.json's dict}."""
    paths, reference = [Path(p) for p in paths], Path(reference)
    ref_digest = _digest(reference)
    keys = {p: (_digest(p), ref_digest) for p in paths}
    todo = list({k: p for p, k in keys.items() if not _known(k)}.items())
    if todo and jobs > 1 and len(todo) > 1:
        import multiprocessing

        with multiprocessing.get_context("spawn").Pool(min(jobs, len(todo)), initializer=_child_init) as pool:
            for (key, _), data in zip(todo, pool.map(_child_grade, [(str(p), str(reference)) for _, p in todo],
                                                     chunksize=1)):
                _remember(key, data)
    else:
        for key, p in todo:
            _remember(key, _grade_uncached(p, reference))
    return {p: _CACHE[k] for p, k in keys.items()}


def verdicts(data: dict) -> dict[str, tuple[str, str]]:
    """results.json's checks: name -> (status, message)."""
    return {t["name"]: (t.get("status"), str(t.get("output", ""))) for t in data.get("tests", [])}


def result(data: dict, path: str | Path = "") -> dict:
    """``data`` in the shape of a grade_class result (status, parts, max, data): what the bank's
    verdict rules (tests/bank/banks.py) read."""
    from autograder import parts as registry
    from instructor.grade_class import part_scores

    parts, maxima = part_scores(data, list(registry.PARTS))  # as grade_class reads a results.json
    return {"status": "ok", "parts": parts, "max": maxima, "data": data, "path": str(path), "message": ""}
