"""Wall time of a full grading run of the reference (hidden checks included).

    python benchmarks/grading_time.py [--runs 3] [--submission PATH]

Each run is a fresh ``pytest autograder`` process, as a student or a grading server would start
it; the figure includes Python and torch start-up, the worker's start and the notebook's load.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autograder.engine.command import grader_command  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--submission", type=Path, default=ROOT / "solutions" / "gpt_lab.ipynb")
    args = parser.parse_args()
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "results.json"
        for i in range(args.runs):
            start = time.perf_counter()
            proc = subprocess.run(
                grader_command(args.submission, out),
                cwd=ROOT, capture_output=True, text=True,
            )
            times.append(time.perf_counter() - start)
            data = json.loads(out.read_text())
            checks = len(data["tests"])
            hidden = sum(t["visibility"] == "after_published" for t in data["tests"])
            print(f"run {i + 1}: {times[-1]:.2f} s  score {data['score']}  checks {checks} ({hidden} hidden)  "
                  f"exit {proc.returncode}")
    print(f"median {statistics.median(times):.2f} s, min {min(times):.2f} s over {len(times)} runs "
          f"({args.submission.name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
