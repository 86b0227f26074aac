"""Grading time of two checkouts of the grader, side by side in one run (a refactoring must not be slower).

    python benchmarks/compare_checkouts.py OLD_CHECKOUT [NEW_CHECKOUT] [--runs 5] [--submission PATH]

Grades the same submission (default: this checkout's reference) with ``pytest autograder`` of each checkout,
alternating which goes first in each round, each with that checkout's own interpreter setting (``cwd`` is the
checkout, so its ``autograder`` package is the one imported). Prints each round's seconds, the medians and the
ratio NEW / OLD; both must give the same score.
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


def grade(checkout: Path, submission: Path, out: Path) -> tuple[float, float]:
    cmd = [sys.executable, "-m", "pytest", str(checkout / "autograder"), "-q", "-p", "no:cacheprovider",
           "--rootdir", str(checkout), "--submission", str(submission), "--grade-json", str(out)]
    start = time.perf_counter()
    subprocess.run(cmd, cwd=checkout, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    return seconds, float(json.loads(out.read_text())["score"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("old", type=Path)
    ap.add_argument("new", type=Path, nargs="?", default=ROOT)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--submission", type=Path, default=ROOT / "solutions" / "gpt_lab.ipynb")
    args = ap.parse_args(argv)
    times: dict[str, list[float]] = {"old": [], "new": []}
    scores: dict[str, set[float]] = {"old": set(), "new": set()}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            order = ("old", "new") if i % 2 == 0 else ("new", "old")
            line = []
            for which in order:
                checkout = getattr(args, which).resolve()
                s, score = grade(checkout, args.submission.resolve(), Path(tmp) / f"{which}.json")
                times[which].append(s)
                scores[which].add(score)
                line.append(f"{which} {s:.2f} s")
            print(f"round {i + 1}: " + ", ".join(line), flush=True)
    old, new = statistics.median(times["old"]), statistics.median(times["new"])
    print(f"median: old {old:.2f} s, new {new:.2f} s, ratio new/old {new / old:.3f}")
    print(f"scores: old {sorted(scores['old'])}, new {sorted(scores['new'])}")
    return 0 if scores["old"] == scores["new"] else 1


if __name__ == "__main__":
    sys.exit(main())
