"""``python -m autograder.manifest``: count the hidden checks of each part into
``hidden_manifest.json``, so that a handout without ``autograder/hidden/`` can still say how many
checks and points run at grading time (and score each visible check at its true weight)."""

from __future__ import annotations

import json
import sys

from .checking import PARTS
from .report import MANIFEST


def count_hidden() -> dict[str, int]:
    from .notebook import _checks

    counts = {}
    for part in PARTS:
        visible = len(_checks(part, hidden=False))
        total = len(_checks(part, hidden=True))
        if total > visible:
            counts[part] = total - visible
    return counts


def main(argv: list[str]) -> int:
    counts = count_hidden()
    text = json.dumps(counts, indent=2, sort_keys=True) + "\n"
    if "--check" in argv:
        if not MANIFEST.exists() or MANIFEST.read_text() != text:
            print(f"{MANIFEST} is out of date: run python -m autograder.manifest", file=sys.stderr)
            return 1
        return 0
    MANIFEST.write_text(text)
    print(f"wrote {MANIFEST}: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
