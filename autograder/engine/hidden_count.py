"""``python -m autograder.engine.hidden_count``: count the hidden checks of each part into
``autograder/checks/hidden_manifest.json``, so that a handout without ``autograder/checks/hidden/`` can still say how many
checks and points run at grading time (and score each visible check at its true weight)."""

from __future__ import annotations

import json
import sys

from autograder import parts

MANIFEST = parts.HIDDEN_COUNTS


def count_hidden() -> dict[str, int]:
    counts = {}
    for part in parts.ids():
        visible = len(parts.checks_of(part, hidden=False))
        total = len(parts.checks_of(part, hidden=True))
        if total > visible:
            counts[part] = total - visible
    return counts


def main(argv: list[str]) -> int:
    counts = count_hidden()
    text = json.dumps(counts, indent=2, sort_keys=True) + "\n"
    if "--check" in argv:
        if not MANIFEST.exists() or MANIFEST.read_text() != text:
            print(f"{MANIFEST} is out of date: run python -m autograder.engine.hidden_count", file=sys.stderr)
            return 1
        return 0
    MANIFEST.write_text(text)
    print(f"wrote {MANIFEST}: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
