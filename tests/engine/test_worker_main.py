"""engine/worker_main.py: the worker's loop, run in a forked child (torch already imported there, so
no interpreter start) over a socket pair, as worker_control talks to it."""

from __future__ import annotations

import contextlib
import os
import socket

from autograder.engine import wire


@contextlib.contextmanager
def forked_loop():
    """A forked child running ``worker_main.main`` without namespaces; yields ask(request) -> answer.
    On a normal exit, the loop must end with status 0 once its socket closes."""
    from autograder.engine import worker_main

    parent, child = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        try:
            parent.close()
            worker_main.main(child.fileno(), "cpu", None)
        finally:
            os._exit(1)
    child.close()

    def ask(request: dict) -> dict:
        wire.send(parent, request)
        return wire.recv(parent, max_bytes=wire.MAX_ANSWER_BYTES)

    try:
        yield ask
    except BaseException:
        parent.close()
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        raise
    parent.close()
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status


def test_the_loop_answers_requests_in_order():
    with forked_loop() as ask:
        answer = ask({"op": "exec_cell", "number": 1, "source": "import torch\nt = torch.arange(4.0)\n"})
        assert answer["ok"] and wire.from_jsonable(answer["value"])["ok"]
        assert wire.from_jsonable(ask({"op": "global", "name": "t"})["value"]).tolist() == [0, 1, 2, 3]
        notes = wire.from_jsonable(ask({"op": "ping"})["value"])["isolation"]
        assert len(notes) == 1 and "no namespaces" in notes[0]
        assert ask({"op": "bogus"})["error"]["type"] == "ProtocolError"


def test_an_answer_over_the_limit_is_replaced_by_an_error():
    with forked_loop() as ask:
        ask({"op": "exec_cell", "number": 1, "source": f"big = 'x' * {wire.MAX_ANSWER_BYTES}\n"})
        answer = ask({"op": "global", "name": "big"})
        assert answer["ok"] is False and answer["error"]["type"] == "OutputTooLarge"
        assert ask({"op": "exec_cell", "number": 2, "source": "small = 1"})["ok"]  # the loop goes on
        assert wire.from_jsonable(ask({"op": "global", "name": "small"})["value"]) == 1


def test_a_time_limit_in_the_request_is_honoured():
    with forked_loop() as ask:
        answer = ask({"op": "exec_cell", "number": 1, "source": "while True:\n    pass\n", "timeout": 0.3})
        assert answer["error"]["type"] == "Timeout"
