"""Wall time of the project's test command, as a ratio to a bare ``import torch`` timed in the same run.

    python benchmarks/test_suite_time.py                 # pytest tests (the fast tier)
    python benchmarks/test_suite_time.py -- -m e2e_bank  # a slow tier: arguments after -- go to pytest

A shared or slow machine slows both alike, so the ratio is the figure to quote (the target for the
default ``pytest tests``: at most 150x, about 5 minutes on two cores). ``import torch`` is timed
``--torch-runs`` times before the suite and as many after it; their median is the unit. The load
average before and after is printed too.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(cmd: list[str]) -> tuple[float, int]:
    start = time.monotonic()
    rc = subprocess.run(cmd, cwd=ROOT).returncode
    return time.monotonic() - start, rc


def import_torch(runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        seconds, rc = timed([sys.executable, "-c", "import torch"])
        if rc != 0:
            raise SystemExit("python -c 'import torch' failed")
        out.append(seconds)
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--torch-runs", type=int, default=3)
    parser.add_argument("pytest_args", nargs="*", help="after --: extra arguments for pytest")
    args = parser.parse_args()
    load_before = os.getloadavg()
    before = import_torch(args.torch_runs)
    suite, rc = timed([sys.executable, "-m", "pytest", "tests", "-q", "-p", "no:cacheprovider", *args.pytest_args])
    after = import_torch(args.torch_runs)
    load_after = os.getloadavg()
    unit = statistics.median(before + after)
    print(f"import torch: {unit:.2f} s (median of {len(before + after)}: "
          f"{', '.join(f'{s:.2f}' for s in before + after)})")
    print(f"pytest tests {' '.join(args.pytest_args)}: {suite:.0f} s (exit {rc}) = {suite / unit:.0f}x import torch")
    print(f"load average (1, 5, 15 min): before {', '.join(f'{x:.2f}' for x in load_before)}; "
          f"after {', '.join(f'{x:.2f}' for x in load_after)}; {os.cpu_count()} cores")
    return rc


if __name__ == "__main__":
    sys.exit(main())
