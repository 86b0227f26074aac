"""Similarity report across a class's solution code: the pairs worth a human look, per part, with
the shared code side by side, as one HTML page. A pointer for humans, never a grade.

    python -m instructor.similarity SUBMISSIONS_DIR --out similarity.html [--assignment NAME]
                                    [--threshold 0.5] [--top 50]

Runs in the grading process (or anywhere): it reads the notebooks' JSON (or the .py modules) and
parses the code with ``ast``; nothing of a submission is executed.

* **Per part.** Each part's code is the top-level definitions with the contract's names
  (``Head``, ``train``, ...), wherever they are in the notebook; a cell that does not parse counts
  for the part of its nbgrader ``grade_id``.
* **Normalised for names, comments and formatting** by copydetect (a winnowing fingerprinter made
  for this, as in MOSS): its tokenizer replaces every name by one symbol, drops comments and white
  space, and every string by one symbol, before fingerprinting. We use its fingerprinting and
  comparison functions, not its report, because we need per-part results and a page of pairs.
* **What every student shares is not evidence**: the release's given code (stubs, docstrings) is
  copydetect's boilerplate, and so is a fingerprint found in more than ``max(3, 5 %)`` of the
  class's submissions (MOSS's ``-m`` rule: the lecture's code, which many students follow, is common,
  not copied).
* A pair's score is the shared share of the pair's remaining code (the two directions averaged,
  parts pooled by size); pairs at or above ``--threshold`` are listed, best first.
"""

from __future__ import annotations

import argparse
import ast
import html
import io
import json
import math
import sys
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RELEASE = REPO / "assignment" / "gpt_lab.ipynb"

# part -> the contract's top-level names (lab-contract.md); the quiz (same answers by design) and the
# given MultiHeadAttention are left out
PART_NAMES = {
    "tokenizer": ("CharTokenizer",),
    "get_batch": ("get_batch",),
    "bigram": ("BigramLanguageModel",),
    "head": ("Head",),
    "feedforward": ("FeedForward",),
    "decoder_block": ("DecoderBlock",),
    "gpt": ("GPTLanguageModel",),
    "estimate_loss": ("estimate_loss",),
    "train": ("train",),
}
_PART_OF_NAME = {name: part for part, names in PART_NAMES.items() for name in names}
# copydetect's defaults (noise threshold 25 characters of normalised code, guarantee threshold 30):
# shorter matches are noise (`self.V = V(V, V)` is everywhere), any longer one is always found
NOISE_T, GUARANTEE_T = 25, 30
COMMON_SHARE, COMMON_MIN = 0.05, 3
MAX_BYTES = 20 * 2**20  # a notebook's code is a few hundred kB at most; anything bigger is not read


# -- code per part -----------------------------------------------------------------------------


def _cells(path: Path) -> list[tuple[str, str]]:
    """(grade_id or '', source) of each code cell that is not a check cell; a .py file is one cell.
    Read as the grader reads a submission: the one locator (links and special files refused, never
    followed or opened), a bounded read; anything unreadable has no code."""
    from autograder.engine.load import SubmissionError, locate_submission, read_bytes_safely

    try:
        path = locate_submission(path)
        text = read_bytes_safely(path, MAX_BYTES).decode("utf-8", errors="replace")
    except (SubmissionError, OSError):
        return []
    if path.suffix == ".py":
        return [("", text)]
    try:
        nb = json.loads(text)
    except (ValueError, RecursionError):
        return []
    out = []
    for cell in nb.get("cells", []) if isinstance(nb, dict) and isinstance(nb.get("cells"), list) else []:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        metadata = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
        meta = metadata.get("nbgrader") if isinstance(metadata.get("nbgrader"), dict) else {}
        if meta.get("grade") and not meta.get("solution"):
            continue  # a check cell
        source = cell.get("source", "")
        source = "".join(s for s in source if isinstance(s, str)) if isinstance(source, list) else source
        if isinstance(source, str):
            out.append((str(meta.get("grade_id") or ""), source))
    return out


def part_code(path: str | Path) -> dict[str, str]:
    """part -> the submission's code for it (definitions with the contract's names)."""
    path = Path(path)
    code: dict[str, list[str]] = {}
    for grade_id, source in _cells(path):
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            part = grade_id.removesuffix("_code")
            if part in PART_NAMES:
                code.setdefault(part, []).append(source)
            continue
        for node in tree.body:
            part = _PART_OF_NAME.get(getattr(node, "name", ""))
            if part:
                code.setdefault(part, []).append(ast.get_source_segment(source, node, padded=True) or "")
    return {part: "\n\n".join(chunks) for part, chunks in code.items()}


# -- fingerprints ------------------------------------------------------------------------------


def _fingerprint(code: str, boilerplate=()):
    from copydetect import CodeFingerprint  # the class's only heavy import, only when used

    return CodeFingerprint("code.py", NOISE_T, GUARANTEE_T - NOISE_T + 1, boilerplate=list(boilerplate),
                           language="python", fp=io.StringIO(code))


def _refingerprint(fp, boilerplate):
    """fp's code fingerprinted again with more boilerplate, without tokenizing it again (the
    tokenizer is most of the time): copydetect fingerprints the normalised code unfiltered, and
    the first pass's raw code and offsets map its matches back to the code as written."""
    from copydetect import CodeFingerprint

    again = CodeFingerprint("code.py", fp.k, GUARANTEE_T - NOISE_T + 1, boilerplate=list(boilerplate),
                            filter=False, fp=io.StringIO(fp.filtered_code))
    again.raw_code, again.offsets = fp.raw_code, fp.offsets
    return again


@dataclass
class PartMatch:
    part: str
    shared: tuple[int, int]  # tokens of each side found in the other
    sizes: tuple[int, int]  # tokens of each side that count (boilerplate and common code left out)
    raw: tuple[str, str]  # each side's code
    slices: tuple  # copydetect's shared character ranges of each side (2 x N arrays), or ()

    @property
    def marked(self) -> tuple[str, str]:
        """Each side's code, HTML-escaped, the shared code in <mark> (computed for listed pairs only)."""
        if not self.slices:
            return html.escape(self.raw[0]), html.escape(self.raw[1])
        return _mark(self.raw[0], self.slices[0]), _mark(self.raw[1], self.slices[1])

    @property
    def score(self) -> float:
        return sum(s / n for s, n in zip(self.shared, self.sizes) if n) / 2


@dataclass
class Pair:
    a: str
    b: str
    parts: list[PartMatch] = field(default_factory=list)

    @property
    def score(self) -> float:
        """Shared tokens over counted tokens, parts pooled, the two directions averaged."""
        sides = []
        for i in (0, 1):
            size = sum(m.sizes[i] for m in self.parts)
            sides.append(sum(m.shared[i] for m in self.parts) / size if size else 0.0)
        return sum(sides) / 2


def _mark(code: str, slices) -> str:
    from copydetect.utils import highlight_overlap

    if slices.shape[-1] == 0:
        return html.escape(code)
    marked, _ = highlight_overlap(code, slices, "<mark>", "</mark>", escape_html=True)
    return marked


def _once(cache: dict, key, make):
    if key not in cache:
        cache[key] = make()
    return cache[key]


def compare(codes: dict[str, dict[str, str]], release=RELEASE) -> list[Pair]:
    """Every pair of students (codes: student -> part -> code), best first."""
    from copydetect.detector import compare_files

    stubs = part_code(release) if Path(release).exists() else {}
    common_limit = max(COMMON_MIN, math.ceil(COMMON_SHARE * len(codes)))
    prints: dict[str, dict] = {}
    for part in PART_NAMES:
        stub = set(_fingerprint(stubs[part]).hashes) if part in stubs else set()
        memo: dict = {}  # the same code (an untouched stub, a shared copy) is tokenized once
        first = {s: _once(memo, c[part], lambda code=c[part]: _fingerprint(code, stub))
                 for s, c in codes.items() if c.get(part, "").strip()}
        seen: dict[int, int] = {}
        for fp in first.values():
            for h in fp.hashes:
                seen[h] = seen.get(h, 0) + 1
        common = {h for h, n in seen.items() if n > common_limit}
        if common:
            again: dict = {}
            prints[part] = {s: _once(again, id(fp), lambda fp=fp: _refingerprint(fp, stub | common))
                            for s, fp in first.items()}
        else:
            prints[part] = first
    pairs = []
    for a, b in combinations(sorted(codes), 2):
        pair = Pair(a, b)
        for part, fps in prints.items():
            if a not in fps or b not in fps:
                continue
            fa, fb = fps[a], fps[b]
            if fa.hashes.isdisjoint(fb.hashes):  # most pairs: nothing shared, no need for copydetect's slices
                pair.parts.append(PartMatch(part, (0, 0), (int(fa.token_coverage), int(fb.token_coverage)),
                                            (fa.raw_code, fb.raw_code), ()))
                continue
            overlap, (r1, r2), (sa, sb) = compare_files(fa, fb)
            # copydetect's ratios are shared tokens over each side's counted tokens (its coverage)
            shared = (int(round(r1 * fa.token_coverage)), int(round(r2 * fb.token_coverage))) if overlap else (0, 0)
            pair.parts.append(PartMatch(part, shared, (int(fa.token_coverage), int(fb.token_coverage)),
                                        (fa.raw_code, fb.raw_code), (sa, sb) if overlap else ()))
        pairs.append(pair)
    return sorted(pairs, key=lambda p: (-p.score, p.a, p.b))


# -- the page ----------------------------------------------------------------------------------

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; }
table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: right; }
td.name { text-align: left; }
.side { display: flex; gap: 1em; } .side > div { flex: 1; min-width: 0; }
pre.code { background: #f6f6f6; padding: 0.6em; overflow-x: auto; font-size: 0.85em; }
mark { background: #ffe08a; }
"""


def render(pairs: list[Pair], threshold: float, top: int, n_students: int) -> str:
    listed = [p for p in pairs if p.score >= threshold][:top]
    parts = list(PART_NAMES)
    out = ["<!DOCTYPE html>", "<html lang='en'><head><meta charset='utf-8'>",
           "<title>gpt-lab: similarity report</title>", f"<style>{_STYLE}</style></head><body>",
           "<h1>Similarity report</h1>",
           f"<p>{n_students} submissions, {len(pairs)} pairs; {len(listed)} pair(s) at or above "
           f"{threshold:.0%} similarity listed, most similar first. A pointer for a human look, never a "
           "grade: code given in the release and code common to many submissions (the lecture's) is "
           "not counted; names, comments and formatting are ignored.</p>"]
    if not listed:
        out.append("<p id='no-pairs'>No pair is similar enough to list.</p>")
    else:
        out.append("<table id='pairs'><thead><tr><th>#</th><th>student</th><th>student</th><th>similarity</th>"
                   + "".join(f"<th>{html.escape(p)}</th>" for p in parts) + "</tr></thead><tbody>")
        for rank, pair in enumerate(listed, 1):
            by_part = {m.part: m for m in pair.parts}
            cells = "".join(f"<td>{by_part[p].score:.0%}</td>" if p in by_part else "<td>-</td>" for p in parts)
            out.append(f"<tr class='pair' data-a='{html.escape(pair.a)}' data-b='{html.escape(pair.b)}'>"
                       f"<td><a href='#pair-{rank}'>{rank}</a></td><td class='name'>{html.escape(pair.a)}</td>"
                       f"<td class='name'>{html.escape(pair.b)}</td><td>{pair.score:.0%}</td>{cells}</tr>")
        out.append("</tbody></table>")
        for rank, pair in enumerate(listed, 1):
            out.append(f"<section class='pair-detail' id='pair-{rank}'><h2>{rank}. {html.escape(pair.a)} and "
                       f"{html.escape(pair.b)}: {pair.score:.0%}</h2>")
            for m in sorted(pair.parts, key=lambda m: -m.score):
                if not any(m.shared):
                    continue
                out.append(f"<h3>{html.escape(m.part)}: {m.score:.0%}</h3><div class='side'>")
                for name, code in zip((pair.a, pair.b), m.marked):
                    out.append(f"<div><h4>{html.escape(name)}</h4><pre class='code'>{code}</pre></div>")
                out.append("</div>")
            out.append("</section>")
    out.append("</body></html>")
    return "\n".join(out)


def report(submissions: dict[str, str | Path], out: str | Path, threshold: float = 0.5, top: int = 50,
           release=RELEASE) -> list[Pair]:
    """Write the HTML page for {student: submission path}; return every pair, best first."""
    codes = {s: part_code(p) for s, p in submissions.items()}
    pairs = compare(codes, release)
    Path(out).write_text(render(pairs, threshold, top, len(codes)), encoding="utf-8")
    return pairs


def main(argv=None) -> int:
    from instructor.grade_class import discover

    ap = argparse.ArgumentParser(prog="python -m instructor.similarity", description=__doc__.split("\n\n")[0])
    ap.add_argument("submissions", help="nbgrader's submitted/ folder, or a flat folder of notebooks / .py files")
    ap.add_argument("--out", default="similarity.html", help="the HTML page to write")
    ap.add_argument("--assignment", default=None, help="nbgrader layout: the assignment folder")
    ap.add_argument("--threshold", type=float, default=0.5, help="list pairs at or above this similarity (0..1)")
    ap.add_argument("--top", type=int, default=50, help="list at most this many pairs")
    args = ap.parse_args(argv)
    pairs = report(discover(args.submissions, args.assignment), args.out, args.threshold, args.top)
    listed = [p for p in pairs if p.score >= args.threshold][: args.top]
    for p in listed[:10]:
        print(f"{p.score:.0%}  {p.a}  {p.b}")
    print(f"{len(listed)} pair(s) listed in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
