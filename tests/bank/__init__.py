"""Edits of the reference notebook: mutants (one bug each) and valid alternatives (full marks).

Two kinds of edit:
- ``Edit``: ONE textual replacement (``old`` -> ``new``, ``old`` occurring exactly once) in the code
  cell whose ``metadata.nbgrader.grade_id`` is ``cell_grade_id``;
- ``Rewrite``: the reference rewritten as a student might hand it in: several replacements, extra
  cells (a config dataclass, helpers, magics), cells reordered, or the whole lab as a ``.py``
  module (UTF-8, UTF-8 with a BOM and CRLF line ends, latin-1 with a PEP 263 coding line).
The reference's code is read from solutions/gpt_lab.ipynb at test time, never copied here. A
mutant's ``expect`` is a piece of the message its part must give (asserted by test_mutants).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Edit:
    id: str
    part: str  # the rubric part of the code it edits
    cell_grade_id: str
    old: str
    new: str
    why: str
    expect: str = ""  # mutants: a piece of the failure message of its part ("" = not asserted)


Mutant = Edit  # a bug: its part must lose points, every other part keep all of them
Alternative = Edit  # a valid implementation: every part keeps all its points

# the lab's code cells, in the notebook's order (what a .py submission holds)
LAB_CELLS = ("tokenizer_code", "get_batch_code", "bigram_code", "attention_trick_code", "head_code", "multihead_code",
             "feedforward_code", "decoder_block_code", "gpt_code", "estimate_loss_code", "train_code", "quiz_code")


def locked_grade_ids() -> frozenset[str]:
    """The grade ids of the released notebook's locked cells (check cells, code given complete):
    a notebook that edits one is graded all the same and flagged "tampered" by the class tools."""
    from instructor import tampering

    return frozenset(tampering.locked_cells(json.loads(tampering.RELEASE.read_text(encoding="utf-8"))))


def edits_locked_cell(edit) -> bool:
    """Whether a bank case, handed in as a notebook, changes the source of a locked cell."""
    if getattr(edit, "form", "ipynb") != "ipynb":
        return False  # a .py module has no cells to compare
    cells = {edit.cell_grade_id} if isinstance(edit, Edit) else {g for g, _, _ in edit.edits}
    return bool(cells & locked_grade_ids())


PY_HEADER = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"


@dataclass(frozen=True)
class Rewrite:
    id: str
    part: str  # mutants: the part that must lose points; alternatives: the part it is about
    why: str
    edits: tuple = ()  # (grade_id, old, new): each old occurs exactly once in that cell
    form: str = "ipynb"  # ipynb | py | py-bom-crlf | py-latin1
    prelude: str = ""  # a code cell (or module text) before the lab's code
    postlude: str = ""  # a code cell (or module text) after it
    extra_cells: tuple = ()  # (after grade_id, source): notebook cells inserted after that cell
    reverse: tuple = ()  # grade ids whose cells are put in reverse order (helpers after their users)
    expect: str = ""

    def code(self, reference) -> dict:
        """grade id -> the cell's source, edited."""
        from tests.conftest import EditError, code_cell

        sources = {g: code_cell(reference, g).source for g in LAB_CELLS}
        for grade_id, old, new in self.edits:
            count = sources[grade_id].count(old)
            if count != 1:
                raise EditError(f"rewrite {self.id}: {old!r} occurs {count} times in cell {grade_id}, expected once")
            sources[grade_id] = sources[grade_id].replace(old, new)
        return sources

    def write(self, folder: Path, reference) -> Path:
        import nbformat

        sources = self.code(reference)
        folder = Path(folder) / self.id
        folder.mkdir(parents=True, exist_ok=True)
        if self.form == "ipynb":
            nb = copy.deepcopy(reference)
            for c in nb.cells:
                gid = (c.metadata.get("nbgrader") or {}).get("grade_id")
                if c.cell_type == "code":
                    c.outputs, c.execution_count = [], None
                    if gid in sources:
                        c.source = sources[gid]
            for after, source in self.extra_cells:
                index = next(i for i, c in enumerate(nb.cells) if (c.metadata.get("nbgrader") or {}).get("grade_id") == after)
                nb.cells.insert(index + 1, nbformat.v4.new_code_cell(source))
            if self.prelude:
                first = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
                nb.cells.insert(first + 1, nbformat.v4.new_code_cell(self.prelude))
            if self.postlude:
                nb.cells.append(nbformat.v4.new_code_cell(self.postlude))
            if self.reverse:
                spots = [i for i, c in enumerate(nb.cells) if (c.metadata.get("nbgrader") or {}).get("grade_id") in self.reverse]
                moved = [nb.cells[i] for i in spots][::-1]
                for i, cell in zip(spots, moved):
                    nb.cells[i] = cell
            path = folder / "gpt_lab.ipynb"
            nbformat.write(nb, path)
            return path
        order = [g for g in LAB_CELLS if g not in self.reverse] + list(reversed([g for g in LAB_CELLS if g in self.reverse]))
        future = "".join(line for line in self.prelude.splitlines(True) if line.startswith("from __future__"))
        prelude = "".join(line for line in self.prelude.splitlines(True) if not line.startswith("from __future__"))
        text = future + PY_HEADER + "\n" + prelude + "\n\n" + "\n\n\n".join(sources[g] for g in order) + "\n" + self.postlude
        path = folder / "submission.py"
        if self.form == "py":
            path.write_bytes(text.encode("utf-8"))
        elif self.form == "py-bom-crlf":
            path.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode("utf-8"))
        elif self.form == "py-latin1":
            path.write_bytes(("# -*- coding: latin-1 -*-\n" + text).encode("latin-1"))
        else:
            raise ValueError(f"unknown form {self.form!r}")
        return path


# the reference's MultiHeadAttention.forward, the text that the batched mutant and alternative replace
MHA_FORWARD = (
    "out = torch.cat([h(x) for h in self.heads], dim=-1)  # (B, T, num_heads * hs)\n"
    "        out = self.dropout(self.proj(out))  # (B, T, C)\n"
    "        return out"
)

# the reference's estimate_loss body, shared by the mutant and alternative banks
EL_BODY = (
    "    out = {}\n    model.eval()\n    for split in (\"train\", \"val\"):\n"
    "        losses = torch.zeros(eval_iters)\n        for k in range(eval_iters):\n"
    "            x, y = get_batch_fn(split)\n            _, loss = model(x, y)\n"
    "            losses[k] = loss.item()\n        out[split] = losses.mean().item()\n"
    "    model.train()\n    return out"
)
