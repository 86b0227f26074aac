"""What grading costs the machine under the worst submissions of the adversarial bank.

    python benchmarks/grading_bounds.py [CASE_ID ...]

For each case (tests/adversarial/cases.py; by default the reference and the cases that push
memory, disk and time), one real ``pytest autograder`` run, watched every 50 ms from outside:

- peak resident memory (VmHWM) of the grading process, and of the worker (the largest of its
  processes: restarts are new processes);
- disk used by the worker: its folder as the worker sees it (the tmpfs of its mount namespace,
  read through /proc/PID/cwd; without namespaces, the folder on the host);
- wall time and the total score.

Then, in this process, one grading run of the reference with the protocol's reads recorded, for
the largest answer a check of a correct submission gets (what ``protocol.MAX_ANSWER_BYTES`` is
sized from). The grading process must stay under 1 GB: the last line says whether it did.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

WORST = ["reference", "answer_60mb", "answer_forged_header", "answer_three_million_floats", "huge_notebook_50mb", "huge_notebook_95mb",
         "three_million_json_values", "deep_metadata_100k", "disk_fill_at_load", "disk_fill_in_head_forward",
         "many_files_at_load", "memory_bomb_in_train", "trickle_answer"]
LIMIT_MB = 1024


def _status(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _descendants(pid: int) -> list[int]:
    import psutil

    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return []


def _is_worker(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"autograder.engine.worker_main" in f.read()
    except OSError:
        return False


def _disk(pid: int) -> int:
    """Bytes in the worker's folder, as the worker sees it."""
    cwd = f"/proc/{pid}/cwd"
    try:
        st = os.statvfs(cwd)
        if st.f_blocks * st.f_frsize <= (1 << 30):  # its own small tmpfs: the file system's use is the folder's
            return (st.f_blocks - st.f_bfree) * st.f_frsize
        total = 0
        for top, _, files in os.walk(cwd):
            for name in files:
                try:
                    total += os.lstat(os.path.join(top, name)).st_blocks * 512
                except OSError:
                    pass
        return total
    except OSError:
        return 0


def run_case(case_id: str, root: Path) -> dict:
    from tests.adversarial.cases import BY_ID

    case = BY_ID[case_id]
    folder = root / case_id
    sub, _ = case.build(folder)
    out = folder / "results.json"
    (folder / "tmp").mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "NBGRADER"))}
    env["TMPDIR"] = str(folder / "tmp")
    from autograder.engine.command import grader_command

    cmd = grader_command(sub, out, extra=("-p", "no:randomly", *case.args))
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    grader = worker = disk = 0
    while proc.poll() is None:
        grader = max(grader, _status(proc.pid, "VmHWM"))
        for pid in _descendants(proc.pid):
            if _is_worker(pid):
                worker = max(worker, _status(pid, "VmHWM"))
                disk = max(disk, _disk(pid))
        time.sleep(0.05)
        if time.monotonic() - start > case.budget_s + 120:
            os.killpg(proc.pid, 9)
    seconds = time.monotonic() - start
    try:
        score = json.loads(out.read_text())["score"]
    except (OSError, ValueError, KeyError):
        score = None
    return {"case": case_id, "grader_mb": grader / 2**20, "worker_mb": worker / 2**20, "disk_mb": disk / 2**20,
            "seconds": seconds, "score": score, "rc": proc.returncode}


def largest_answer() -> int:
    """Grade the reference in this process with protocol.recv recorded: the largest answer read."""
    import pytest

    from autograder.engine import wire as protocol

    sizes = []
    original = protocol.recv

    def recording(sock, deadline=None, max_bytes=protocol.MAX_MESSAGE_BYTES):
        answer = original(sock, deadline, max_bytes)
        sizes.append(len(protocol.dumps(answer)))
        return answer

    protocol.recv = recording
    try:
        with tempfile.TemporaryDirectory() as tmp, open(os.devnull, "w") as quiet, \
                contextlib.redirect_stdout(quiet):
            pytest.main(["autograder", "-q", "-p", "no:cacheprovider", "--submission",
                         str(REPO / "solutions" / "gpt_lab.ipynb"), "--grade-json", str(Path(tmp) / "r.json")])
    finally:
        protocol.recv = original
    return max(sizes, default=0)


def main(argv: list[str]) -> int:
    os.chdir(REPO)
    ids = argv or WORST
    rows = []
    with tempfile.TemporaryDirectory(prefix="gptlab-bounds-") as tmp:
        for case_id in ids:
            rows.append(run_case(case_id, Path(tmp)))
            r = rows[-1]
            print(f"{r['case']:30s} grader {r['grader_mb']:7.0f} MB   worker {r['worker_mb']:7.0f} MB   "
                  f"disk {r['disk_mb']:7.1f} MB   {r['seconds']:6.1f} s   score {r['score']}   rc {r['rc']}",
                  flush=True)
    peak = max(r["grader_mb"] for r in rows)
    worst = max(rows, key=lambda r: r["grader_mb"])["case"]
    print(f"\npeak of the grading process: {peak:.0f} MB ({worst}); limit {LIMIT_MB} MB: "
          + ("within" if peak < LIMIT_MB else "EXCEEDED"))
    print(f"largest disk use of a worker: {max(r['disk_mb'] for r in rows):.1f} MB")
    if not argv:
        size = largest_answer()
        from autograder.engine import wire as protocol

        print(f"largest answer a check of the reference reads: {size / 2**10:.1f} KiB "
              f"(cap: {protocol.MAX_ANSWER_BYTES >> 20} MiB, {protocol.MAX_ANSWER_BYTES / max(size, 1):.0f}x)")
    return 0 if peak < LIMIT_MB else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
