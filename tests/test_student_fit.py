"""The lab as a student meets it (issue 26): the notebook's code composes, check cells show only their
report, Head names one T per failure, decode's hint names the cause, ``pytest autograder`` grades the
notebook of the student's language, and routine notes are recognised by kind in every language."""

from __future__ import annotations

import contextlib
import io
import re
import shutil

import pytest
import torch

from tests.conftest import ASSIGNMENT, code_cell, read_reference

SETUP = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"
# a vectorised get_batch as students write it: one unfold, then x and y as slices of the windows,
# so y is NOT contiguous in memory (the stacked reference's is)
UNFOLD_GET_BATCH = '''
def get_batch(data, block_size, batch_size):
    ix = torch.randint(len(data) - block_size, (batch_size,))
    windows = data.unfold(0, block_size + 1, 1)[ix]  # (B, T+1)
    return windows[:, :-1], windows[:, 1:]
'''


def _namespace(*grade_ids: str, extra: str = "") -> dict:
    nb, ns = read_reference(), {}
    exec(SETUP, ns)  # noqa: S102 - the reference's own code
    for grade_id in grade_ids:
        exec(code_cell(nb, grade_id).source, ns)  # noqa: S102
    if extra:
        exec(extra, ns)  # noqa: S102
    return ns


def _visible_failures(part: str, ns: dict) -> list[str]:
    from autograder.notebook import run_part

    return [f"{name}: {message}" for name, message in run_part(part, ns)[0] if message]


def test_vectorised_get_batch_composes_with_the_bigram_code():
    """A get_batch that passes its checks feeds the bigram model of the text (and the GPT) without a crash:
    the text prescribes reshape, which takes the non-contiguous y that view refuses."""
    ns = _namespace("bigram_code", "gpt_code", "head_code", "multihead_code", "feedforward_code",
                    "decoder_block_code", extra=UNFOLD_GET_BATCH)
    assert _visible_failures("get_batch", ns) == []  # it is a right get_batch
    data = torch.arange(1000) % 65
    xb, yb = ns["get_batch"](data, 8, 4)
    assert not yb.is_contiguous()  # the case that crashed: targets.view(B*T) on a non-contiguous y
    with pytest.raises(RuntimeError, match="view"):
        yb.view(32)
    for model in (ns["BigramLanguageModel"](65), ns["GPTLanguageModel"](65, 16, 2, 1, 8)):
        _, loss = model(xb, yb)  # the training cells' call
        loss.backward()
        assert torch.isfinite(loss)


def test_the_bigram_text_prescribes_reshape_not_view():
    nb = read_reference()
    text = "\n".join(c.source for c in nb.cells if "Part `bigram`" in c.source or c.get("id") == "bigram-md")
    assert "reshape" in text and "view the logits" not in text
    assert "Tensor.view)" not in code_cell(nb, "bigram_code").source


def test_check_cell_shows_only_its_report():
    """check() prints its report and returns None: the cell shows no stray Out[n] number."""
    from autograder.notebook import check

    ns = _namespace("tokenizer_code")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        result = check("tokenizer", ns)
    assert result is None
    assert "[PASS] tokenizer:" in out.getvalue() and "visible checks passed" in out.getvalue()


def test_head_names_one_T_per_failure():
    """An unsliced mask fails on every T < block_size: every message of the part names the same T."""
    ns = _namespace("head_code")
    source = code_cell(read_reference(), "head_code").source.replace("self.tril[:T, :T] == 0", "self.tril == 0")
    exec(source, ns)  # noqa: S102
    messages = _visible_failures("head", ns)
    assert messages
    ts = {t for m in messages for t in re.findall(r"\(T = (\d+)", m)}
    assert len(ts) == 1, messages


def test_decode_of_a_tensor_names_the_cause():
    ns = _namespace("tokenizer_code")
    source = code_cell(read_reference(), "tokenizer_code").source
    source = source.replace("            ids = ids.tolist()\n", "            pass\n").replace("self.itos[int(i)]", "self.itos[i]")
    exec(source, ns)  # noqa: S102
    messages = _visible_failures("tokenizer", ns)
    assert any("KeyError" in m and "elements of a tensor are tensors" in m for m in messages), messages


# -- which notebook `pytest autograder` grades ------------------------------------------------------------------

def _assignment_copy(tmp_path, es_written: int = 0, en_written: int = 0):
    import nbformat

    folder = tmp_path / "assignment"
    (folder / "es").mkdir(parents=True)
    for src, dest, written in ((ASSIGNMENT, folder / "gpt_lab.ipynb", en_written),
                               (ASSIGNMENT.parent / "es" / "gpt_lab.ipynb", folder / "es" / "gpt_lab.ipynb", es_written)):
        nb = nbformat.read(src, as_version=4)
        stubs = [c for c in nb.cells if c.cell_type == "code" and "raise NotImplementedError()" in c.source]
        for cell in stubs[:written]:  # a part written: its stub replaced
            cell.source = cell.source.replace("raise NotImplementedError()", "pass  # written")
        nbformat.write(nb, dest)
    return folder


@pytest.mark.parametrize("es_written,en_written,graded", [
    (0, 0, "gpt_lab.ipynb"),  # nothing written yet: the English notebook, as before
    (3, 0, "es/gpt_lab.ipynb"),  # the student works in Spanish
    (1, 4, "gpt_lab.ipynb"),
    (11, 11, "gpt_lab.ipynb"),
])
def test_default_submission_is_the_notebook_worked_in(tmp_path, es_written, en_written, graded):
    from autograder.plugin.options import choice_note, default_submission

    folder = _assignment_copy(tmp_path, es_written, en_written)
    chosen, other = default_submission(folder)
    assert chosen == folder / graded and other is not None and other != chosen
    assert f"pytest autograder --submission {other}" in choice_note(chosen, other)


def test_default_submission_without_a_translation(tmp_path):
    from autograder.plugin.options import default_submission

    folder = tmp_path / "assignment"
    folder.mkdir()
    shutil.copy(ASSIGNMENT, folder / "gpt_lab.ipynb")
    assert default_submission(folder) == (folder / "gpt_lab.ipynb", None)


def test_the_repository_default_is_the_english_notebook_while_both_are_untouched():
    from autograder.plugin.options import DEFAULT_SUBMISSION, default_submission

    assert default_submission()[0] == DEFAULT_SUBMISSION


# -- notes by kind ---------------------------------------------------------------------------------------------

def test_routine_notes_are_left_out_by_kind_in_every_language():
    """Grading the Spanish notebook printed ten 'nota: celda 25: tiene la etiqueta slow' lines: the filter
    matched English text. Notes carry a kind now."""
    from autograder import i18n
    from autograder.engine.load import Note, read_submission
    from autograder.plugin.summary import shown_notes

    for lang, path in (("es", ASSIGNMENT.parent / "es" / "gpt_lab.ipynb"), ("en", ASSIGNMENT)):
        with i18n.using(lang):
            skipped = read_submission(path).skipped
        assert len(skipped) >= 5 and shown_notes(skipped) == [], (lang, skipped[:3])
    other = ["sandbox: no namespaces here", Note("celda 3: otra cosa", "")]
    assert shown_notes(skipped + other) == other


# -- numbers the Spanish way in Spanish messages -------------------------------------------------------------

def test_scores_are_written_the_way_the_message_language_writes_numbers():
    """Spanish messages write decimal commas ("0,10 de 0,50", as the Spanish text does: "4,17"); English
    ones are unchanged."""
    from fractions import Fraction

    from autograder import i18n
    from autograder.engine.report import Outcome, PartScore, table
    from autograder.notebook import check

    part = PartScore("tokenizer", Fraction(1, 2), False, [Outcome("tokenizer", "x", "x", False, "passed"),
                                                          Outcome("tokenizer", "y", "y", False, "failed", "no")])
    ns = _namespace("tokenizer_code")
    shown = {}
    for lang in ("en", "es"):
        with i18n.using(lang):
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                check("tokenizer", {**ns, "LAB_LANGUAGE": lang})
            shown[lang] = table([part]) + "\n" + out.getvalue()
    assert "0.25" in shown["en"] and "total 0.25 / 0.50" in shown["en"] and "of 0.50 points" in shown["en"]
    assert "0,25" in shown["es"] and "0,50" in shown["es"] and not re.search(r"\d\.\d", shown["es"]), shown["es"]
