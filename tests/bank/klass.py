"""A class of submissions for the class-level tests (grade_class, summary, exports, similarity):
honest students (the reference and valid alternatives of tests/bank, each student with others),
one plagiarist (an honest student's notebook renamed, commented and reformatted), a mutant,
a broken notebook (not valid JSON), a tampered one (a check cell edited, another stripped of its
nbgrader metadata), one that runs past the class's time limit, a crashing module, a text file,
and a roster student who submitted nothing."""

from __future__ import annotations

import ast
import copy
import re
import shutil
from pathlib import Path

import nbformat

from tests.bank.alternatives import ALL_ALTERNATIVES
from tests.bank.mutants import ALL_MUTANTS
from tests.conftest import ASSIGNMENT, REFERENCE, apply_edit, read_reference

# each honest student's own way (no alternative shared by two students, so no honest pair shares
# code that the rest of the class does not also hold)
HONEST = {
    "alice": ["head_einsum", "tok_itos_list", "train_zero_grad_after_step", "gpt_flat_logits"],
    "bob": ["head_manual_softmax", "gb_arange_indexing", "gen_categorical", "el_inference_mode"],
    "carol": ["head_torch_where", "bigram_ce_class_dim", "train_model_zero_grad", "block_named_residual"],
    "erin": ["gpt_reshape", "gpt_pos_emb_weight_slice"],  # not mha_batched: it edits a locked cell (tampering)
}
PLANTED = ("alice", "mallory")  # mallory copied alice
MISSING = "zoe"  # on the roster, no submission
# the class's --timeout: twice the slowest honest grading seen here (10 s alone, 65 s with 3 jobs on
# 2 cores shared with other work)
TIMEOUT_S = 120
# 60 cells that never end: the grader stops the first after 20 s and each later one after 5 s, up
# to its load budget of 150 s: past TIMEOUT_S
HUNG = "".join("# %%\nwhile True:\n    pass\n" for _ in range(60))
CRASH = "import os\nos._exit(1)\n"
RENAMES = {"wei": "attn_scores", "out": "result", "logits": "scores", "idx": "tokens", "loss": "objective",
           "losses": "history", "stoi": "char_to_id"}


def _alternative(edit_id: str):
    return next(a for a in ALL_ALTERNATIVES if a.id == edit_id)


def honest(student: str) -> nbformat.NotebookNode:
    nb = read_reference()
    for edit_id in HONEST.get(student, []):
        nb = apply_edit(nb, _alternative(edit_id))
    return nb


def plagiarise(nb) -> nbformat.NotebookNode:
    """A copy that hides its origin the usual ways: names changed, comments added, reformatted."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader") or {}
        if cell.cell_type != "code" or not meta.get("solution"):
            continue
        source = ast.unparse(ast.parse(cell.source))  # reformatted: quotes, spacing, blank lines, no comments
        for old, new in RENAMES.items():
            source = re.sub(rf"\b{old}\b", new, source)
        cell.source = "# my own work\n" + source.replace("\n    def ", "\n\n    # a method\n    def ")
    return nb


def tampered() -> nbformat.NotebookNode:
    nb = read_reference()
    for cell in nb.cells:
        gid = (cell.metadata.get("nbgrader") or {}).get("grade_id")
        if gid == "check_head":
            cell.source = "print(1.0)  # full marks please\n"
        elif gid == "check_gpt":
            del cell.metadata["nbgrader"]
    return nb


def build(root: Path) -> dict:
    """Write the class under root/submitted (a flat folder) and root/roster.csv."""
    subs = Path(root) / "submitted"
    subs.mkdir(parents=True)
    nbformat.write(read_reference(), subs / "dan.ipynb")  # the reference itself: an honest student
    for student in HONEST:
        nbformat.write(honest(student), subs / f"{student}.ipynb")
    nbformat.write(plagiarise(honest(PLANTED[0])), subs / f"{PLANTED[1]}.ipynb")
    mutant = next(m for m in ALL_MUTANTS if m.id == "head_no_scale")
    nbformat.write(apply_edit(read_reference(), mutant), subs / "mutant.ipynb")
    (subs / "broken.ipynb").write_text('{"cells": [{"cell_type": "code", "source": "x = 1"')  # cut short
    nbformat.write(tampered(), subs / "tampered.ipynb")
    (subs / "hung.py").write_text(HUNG)
    (subs / "crash.py").write_text(CRASH)
    (subs / "notes.txt").write_text("my answers are in the notebook, sorry\n")
    students = ["dan", *HONEST, PLANTED[1], "mutant", "broken", "tampered", "hung", "crash", "notes", MISSING]
    roster = Path(root) / "roster.csv"
    roster.write_text("student,name,email\n" + "".join(f"{s},{s.title()} Doe,{s}@uni.example\n" for s in students))
    reference = Path(shutil.copy(REFERENCE, Path(root) / "reference.ipynb"))
    return {"subs": subs, "roster": roster, "students": students, "reference": reference, "release": ASSIGNMENT}
