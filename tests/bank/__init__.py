"""Edits of the reference notebook: mutants (one bug each) and valid alternatives (full marks).

An edit is ONE textual replacement (``old`` -> ``new``, ``old`` occurring exactly once) in the code
cell whose ``metadata.nbgrader.grade_id`` is ``cell_grade_id``; the reference's code is read from
solutions/gpt_lab.ipynb at test time, never copied here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Edit:
    id: str
    part: str  # the rubric part of the code it edits
    cell_grade_id: str
    old: str
    new: str
    why: str


Mutant = Edit  # a bug: its part must lose points, every other part keep all of them
Alternative = Edit  # a valid implementation: every part keeps all its points


# the reference's MultiHeadAttention.forward, the text that the batched mutant and alternative replace
MHA_FORWARD = (
    "out = torch.cat([h(x) for h in self.heads], dim=-1)  # (B, T, num_heads * hs)\n"
    "        out = self.dropout(self.proj(out))  # (B, T, C)\n"
    "        return out"
)
