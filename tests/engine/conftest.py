"""One real worker for the whole tests/engine session (starting one imports torch: ~10 s here)."""

from __future__ import annotations

import os

import pytest

from autograder.engine import wire


@pytest.fixture(scope="session")
def worker_files(tmp_path_factory):
    """A kept folder (GPTLAB_DATA, which the worker may read) holding a file the worker may read and
    one it is told to hide."""
    data = tmp_path_factory.mktemp("kept-data")
    data.chmod(0o755)  # the worker reads it as an unprivileged user (pytest makes its folders 0700)
    (data / "visible.txt").write_text("visible text")
    (data / "secret.txt").write_text("the reference's answers")
    return data


@pytest.fixture(scope="session")
def worker(worker_files):
    """Started with GPTLAB_DATA naming ``worker_files`` (read at start only: the variable is put back
    at once, so the rest of a session never sees it); one extra path to hide."""
    from autograder.engine.worker_control import Worker

    w = Worker(memory_mb=4096, hide=[str(worker_files / "secret.txt")])
    saved = os.environ.get("GPTLAB_DATA")
    os.environ["GPTLAB_DATA"] = str(worker_files)
    try:
        w.start()
    finally:
        if saved is None:
            os.environ.pop("GPTLAB_DATA", None)
        else:
            os.environ["GPTLAB_DATA"] = saved
    try:
        yield w
    finally:
        w.close()


_cells = iter(range(1000, 10**6))


def run_in(worker, source: str, timeout: float = 60.0) -> dict:
    """Execute ``source`` as a cell in the worker; its outcome (ok, error_type, message)."""
    answer = worker.request({"op": "exec_cell", "number": next(_cells), "source": source}, timeout)
    assert answer["ok"], answer
    return wire.from_jsonable(answer["value"])


def value_in(worker, name: str, timeout: float = 30.0):
    answer = worker.request({"op": "global", "name": name}, timeout)
    assert answer["ok"], answer
    return wire.from_jsonable(answer["value"])
