"""The lab in Spanish (issue 17): the Spanish notebook is the English one translated, cell for cell,
and graded the same, with the grader's messages in Spanish.

* parity: the Spanish notebooks (instructor and student) have the same cells, code, grade ids, points and
  tags as the English ones; only prose (markdown, comments, docstrings) and one line of the setup cell
  (``LAB_LANGUAGE = "es"``) differ; the committed Spanish student notebook is what the generator makes;
* the translation layer: every translatable cell has a current translation; an English cell that changes
  makes its translation stale (the generator refuses it, ``update`` marks it fuzzy with the old English);
* the messages: every message of the grader has a current Spanish translation with the same placeholders,
  the compiled catalogue is up to date, and ``_()`` is only ever given a literal;
* grading: the Spanish reference gets full marks, the untouched Spanish notebook exactly what the untouched
  English one gets, and the messages of a Spanish run are in Spanish (``pytest autograder`` and nbgrader).
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

pytest.importorskip("babel")

from autograder import parts  # noqa: E402
from instructor import i18n  # noqa: E402
from instructor.generate import release_path, render, render_source  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SOURCE = REPO / "solutions" / "gpt_lab.ipynb"
LANG = "es"


@pytest.fixture(scope="module")
def english():
    return nbformat.read(SOURCE, as_version=4)


@pytest.fixture(scope="module")
def spanish(english):
    return i18n.translate(english, LANG)


# -- the notebooks -----------------------------------------------------------------------------------------

def test_every_cell_has_a_current_translation(english):
    catalog = i18n.read_po(i18n.po_path(LANG), locale=LANG)
    assert i18n.problems(english, catalog) == []
    translatable = [c for c in english.cells if i18n.translatable(c)]
    assert len(translatable) > 50 and all(c.cell_type == "markdown" for c in translatable[:2])


def test_instructor_notebooks_have_the_same_cells_and_code(english, spanish):
    assert i18n.parity(english, spanish, LANG) == []
    assert spanish.metadata["gptlab"]["lang"] == LANG and "gptlab" not in english.metadata
    assert [c.id for c in spanish.cells] == [c.id for c in english.cells]
    changed = [c.id for c, e in zip(spanish.cells, english.cells) if c.source != e.source]
    assert len(changed) > 50  # translated indeed, not a copy


def test_student_notebooks_have_the_same_cells_grade_ids_and_points(english):
    en = nbformat.read(release_path("en"), as_version=4)
    es = nbformat.read(release_path(LANG), as_version=4)
    assert i18n.parity(en, es, LANG) == []
    grades = lambda nb: [(c.metadata.get("nbgrader", {}).get("grade_id"),  # noqa: E731
                          c.metadata.get("nbgrader", {}).get("points")) for c in nb.cells]
    assert grades(en) == grades(es) and sum(1 for g, _ in grades(es) if g) > 20
    checks = lambda nb: [c.source for c in nb.cells if c.cell_type == "code" and "check(" in c.source]  # noqa: E731
    assert checks(en) == checks(es) and len(checks(es)) == len(parts.ids())  # one check cell per part
    code = "".join(c.source for c in es.cells if c.cell_type == "code")
    assert "# TU CÓDIGO AQUÍ\nraise NotImplementedError()" in code and "YOUR CODE HERE" not in code


def test_committed_spanish_notebook_is_generated():
    assert release_path(LANG).read_text(encoding="utf-8") == render(SOURCE, LANG), (
        "assignment/es/gpt_lab.ipynb is out of date: run `python -m instructor.generate --lang es`")


def test_parity_catches_changed_code_and_metadata(english, spanish):
    """The parity check can fail: a translation that changes code, a grade id or the points is caught."""
    for cell_id, edit in (("head-code", lambda c: setattr(c, "source", c.source.replace("** -0.5", "** -0.25"))),
                          ("check-head", lambda c: c.metadata.nbgrader.__setitem__("points", 99)),
                          ("setup", lambda c: setattr(c, "source", c.source.replace('"es"', '"en"'))),
                          ("tokenizer-code", lambda c: setattr(c, "source", c.source.replace(
                              '"""Tokenizador', 'x = 1\n    """Tokenizador')))):
        broken = copy.deepcopy(spanish)
        edit(next(c for c in broken.cells if c.id == cell_id))
        found = i18n.parity(english, broken, LANG)
        assert len(found) == 1 and found[0].startswith(f"cell {cell_id}:"), (cell_id, found)
    shuffled = copy.deepcopy(spanish)
    shuffled.cells[3], shuffled.cells[4] = shuffled.cells[4], shuffled.cells[3]
    assert i18n.parity(english, shuffled, LANG)


def test_changed_english_cell_makes_its_translation_stale(english, tmp_path):
    changed = copy.deepcopy(english)
    cell = next(c for c in changed.cells if c.id == "data-md")
    before = cell.source
    cell.source = cell.source.replace("as one string", "as a single string")
    source = tmp_path / "gpt_lab.ipynb"
    nbformat.write(changed, source)
    with pytest.raises(i18n.TranslationError, match=r"cell data-md: stale"):
        i18n.translate(changed, LANG)
    po = tmp_path / "es.po"
    po.write_bytes(i18n.po_path(LANG).read_bytes())
    for _ in range(2):  # the second update keeps what the first one recorded
        todo = i18n.update_notebook(LANG, source=source, path=po)
        assert todo == ["cell data-md: stale: marked fuzzy (the English cell changed since it was translated)"]
        entry = i18n.read_po(po, locale=LANG).get(cell.source, context="data-md")
        assert entry.fuzzy and entry.previous_id == [before]  # the old English, for the translator to compare
        assert "una sola cadena" in entry.string  # the old translation kept, for the translator to revise
    assert subprocess.run([sys.executable, "-m", "instructor.generate", "--lang", LANG, "--source", str(source),
                           "--dest", str(tmp_path / "out.ipynb")], cwd=REPO, capture_output=True).returncode == 1
    assert not (tmp_path / "out.ipynb").exists()


def test_new_english_cell_without_translation_fails(english):
    changed = copy.deepcopy(english)
    changed.cells.insert(5, nbformat.v4.new_markdown_cell("A new paragraph.", id="new-md"))
    with pytest.raises(i18n.TranslationError, match="cell new-md: no translation"):
        i18n.translate(changed, LANG)


# -- the grader's messages -----------------------------------------------------------------------------------

def test_every_message_has_a_current_translation():
    assert i18n.message_problems(LANG) == []
    assert i18n.untranslatable_calls() == []
    assert i18n.format_mismatches() == []
    assert len([m for m in i18n.extract_messages() if m.id]) > 100


def test_compiled_catalogue_is_up_to_date():
    compiled = i18n.compiled(i18n.read_po(i18n.message_po_path(LANG), locale=LANG))
    assert i18n.message_mo_path(LANG).read_bytes() == compiled, "run `python -m instructor.i18n compile`"


def test_message_checks_can_fail():
    """A stale (fuzzy) or missing translation and a lost placeholder are reported."""
    catalog = i18n.read_po(i18n.message_po_path(LANG), locale=LANG)
    messages = [m for m in catalog if m.id and i18n.placeholders(m.id)]
    fuzzy, lost, gone = messages[0], messages[1], messages[2]
    fuzzy.flags.add("fuzzy")
    lost.string = re.sub(r"\{[^{}]*\}", "", lost.string)
    del catalog[gone.id]
    found = i18n.message_problems(LANG, catalog)
    assert len(found) == 3, found
    assert any("stale" in f for f in found) and any("placeholders" in f for f in found) \
        and any("no translation" in f for f in found)


def test_format_check_can_fail(tmp_path):
    (tmp_path / "m.py").write_text('fail(tr("got {got}, expected {expected}").format(got=1))\n'
                                   'fail(tr("no value for {this}"))\n'
                                   'fail(tr("fine {x:.2f}").format(x=1.0))\n')
    found = i18n.format_mismatches(tmp_path)
    assert len(found) == 2 and found[0].startswith("m.py:1:") and found[1].startswith("m.py:2:")


def test_messages_switch_language():
    from autograder import i18n as rt
    from autograder.checks.verdicts import explain
    from autograder.engine.submission import SubmissionFailure

    stub = SubmissionFailure("Head.forward", "NotImplementedError", "")
    english = explain(stub)
    with rt.using("es"):
        assert rt.language() == "es"
        spanish = explain(stub)
    assert rt.language() == "en" and explain(stub) == english
    assert "not implemented yet" in english and "todavía no está implementad" in spanish
    assert "Head.forward" in spanish and "NotImplementedError" in spanish and "not implemented" not in spanish
    assert rt.set_language("xx") == "en"  # an unknown language: English


# -- grading ----------------------------------------------------------------------------------------------------

def _english_fragments() -> list[str]:
    """Literal pieces (at least 16 characters) of the English messages whose Spanish differs: none of them
    may appear in the output of a Spanish grading run."""
    catalog = i18n.read_po(i18n.message_po_path(LANG), locale=LANG)
    pieces = set()
    for msg in catalog:
        if msg.id and msg.string and msg.string != msg.id:
            for piece in re.split(r"\{[^{}]*\}", msg.id):
                piece = piece.strip(" .,:;()")
                if len(piece) >= 16 and piece not in msg.string:
                    pieces.add(piece)
    return sorted(pieces)


def _grade(path: Path, out: Path, *extra: str) -> dict:
    subprocess.run([sys.executable, "-m", "pytest", str(REPO / "autograder"), "-q", "-p", "no:cacheprovider",
                    "--rootdir", str(REPO), "--submission", str(path), "--reference", str(SOURCE),
                    "--grade-json", str(out), *extra], cwd=REPO, capture_output=True, text=True, timeout=600)
    return json.loads(out.read_text())


def _by_part(data: dict) -> dict:
    parts: dict[str, float] = {}
    for t in data["tests"]:
        parts[t["tags"][0]] = round(parts.get(t["tags"][0], 0.0) + t["score"], 6)
    return parts


@pytest.fixture(scope="module")
def graded(tmp_path_factory, spanish):
    """Three grading runs: the Spanish reference, the untouched Spanish and English notebooks."""
    folder = tmp_path_factory.mktemp("spanish")
    ref = folder / "referencia.ipynb"
    ref.write_text(render_source(SOURCE, LANG), encoding="utf-8")
    return {"es_reference": _grade(ref, folder / "ref.json"),
            "es_stub": _grade(release_path(LANG), folder / "es.json"),
            "en_stub": _grade(release_path("en"), folder / "en.json")}


def test_spanish_reference_gets_full_marks(graded):
    data = graded["es_reference"]
    failed = [t["name"] for t in data["tests"] if t["score"] < t["max_score"]]
    assert failed == []
    from autograder import parts

    rubric, _ = parts.rubric()
    assert data["score"] == pytest.approx(float(sum(rubric.values())))


def test_untouched_spanish_notebook_earns_what_the_english_one_earns(graded):
    es, en = graded["es_stub"], graded["en_stub"]
    assert _by_part(es) == _by_part(en)
    assert es["score"] == en["score"] == pytest.approx(sum(t["score"] for t in en["tests"] if t["tags"] == ["multihead"]))
    assert [(t["name"], t["score"]) for t in es["tests"]] and len(es["tests"]) == len(en["tests"])


def test_spanish_run_messages_are_in_spanish(graded):
    es, en = graded["es_stub"], graded["en_stub"]
    fragments = _english_fragments()
    es_text = "\n".join([es.get("output", "")] + [t.get("output", "") for t in es["tests"]])
    en_text = "\n".join([en.get("output", "")] + [t.get("output", "") for t in en["tests"]])
    assert [f for f in fragments if f in es_text] == []
    assert [f for f in fragments if f in en_text], "the English run should show English messages"
    assert "todavía no está implementad" in es_text and "not implemented yet" in en_text
    assert "todavía no está implementad" not in en_text


def test_lang_option_overrides_the_notebook(tmp_path):
    data = _grade(release_path("en"), tmp_path / "en-es.json", "--lang", "es", "-k", "tokenizer")
    text = "\n".join(t.get("output", "") for t in data["tests"])
    assert "todavía no está implementad" in text and "not implemented yet" not in text


def test_check_cell_speaks_the_notebook_language():
    """``check()`` in the student's kernel reads LAB_LANGUAGE from the globals it is given."""
    code = ("import io, contextlib\nfrom autograder.notebook import check\n"
            "for lang in ('es', None):\n"
            "    ns = {'LAB_LANGUAGE': lang} if lang else {}\n"
            "    buf = io.StringIO()\n"
            "    with contextlib.redirect_stdout(buf):\n"
            "        check('tokenizer', ns)\n"
            "    print('=====', lang)\n"
            "    print(buf.getvalue())\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300).stdout
    es_text, en_text = out.split("===== None")
    assert "comprobaciones visibles superadas" in es_text and "visible checks passed" not in es_text
    assert "visible checks passed" in en_text


# -- nbgrader ------------------------------------------------------------------------------------------------

def _have_data() -> bool:
    from data import CACHE_PATH, ENV_VAR

    return CACHE_PATH.is_file() or bool(os.environ.get(ENV_VAR))


@pytest.mark.skipif(not _have_data(), reason="tiny Shakespeare is not available offline")
@pytest.mark.nbgrader
def test_spanish_nbgrader_course(tmp_path, spanish):
    """The Spanish course: its release is the committed Spanish notebook; nbgrader autograde gives the
    Spanish reference full marks, the untouched Spanish notebook the given MultiHeadAttention's points,
    and the check cells' lines are in Spanish."""
    pytest.importorskip("nbgrader")
    from nbgrader.api import Gradebook

    from autograder import parts
    from instructor.course_init import init

    root = init(tmp_path / "curso", lang=LANG)
    env = {**os.environ, "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
    run = lambda *cmd: subprocess.run([sys.executable, "-m", "nbgrader", *cmd], cwd=root, env=env,  # noqa: E731
                                      capture_output=True, text=True, timeout=600)
    proc = run("generate_assignment", "gpt_lab")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    release = nbformat.read(root / "release" / "gpt_lab" / "gpt_lab.ipynb", as_version=4)
    committed = nbformat.read(release_path(LANG), as_version=4)
    assert [(c.cell_type, c.source) for c in release.cells] == [(c.cell_type, c.source) for c in committed.cells]
    reference = copy.deepcopy(spanish)
    for student, nb in (("referencia", reference), ("sin_tocar", committed)):
        folder = root / "submitted" / student / "gpt_lab"
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / "gpt_lab.ipynb")
    proc = run("autograde", "gpt_lab")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rubric, bonus = parts.rubric()
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        scores = {s: {g.name: g.score for g in gb.find_submission_notebook("gpt_lab", "gpt_lab", s).grades
                      if g.cell.cell_type == "code"} for s in ("referencia", "sin_tocar")}
    assert sum(scores["referencia"].values()) == pytest.approx(float(sum(rubric.values())))
    assert {n: s for n, s in scores["sin_tocar"].items() if s} == {"check_multihead": float(rubric["multihead"])}
    graded = nbformat.read(root / "autograded" / "sin_tocar" / "gpt_lab" / "gpt_lab.ipynb", as_version=4)
    head = next(c for c in graded.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "check_head")
    text = head.outputs[0]["text"]
    assert "[FAIL] head:" in text and "todavía no está implementad" in text and "not implemented yet" not in text
    assert text.splitlines()[-1] == f"head: 0 de {float(rubric['head']):.4g} puntos".replace(".", ",")  # 0,75
    # the routine notes (slow cells skipped, stubs) are recognised in Spanish too: no grader report cell
    assert not any(c.get("id") == "gptlab-grader-report" for c in graded.cells)
    full = nbformat.read(root / "autograded" / "referencia" / "gpt_lab" / "gpt_lab.ipynb", as_version=4)
    head = next(c for c in full.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "check_head")
    assert "[PASS] head: estructura" in head.outputs[0]["text"]


# -- the handout and Gradescope --------------------------------------------------------------------------------

def test_spanish_handout(tmp_path):
    from instructor.handout import build

    out = build(tmp_path / "material", lang=LANG)
    assert (out / "assignment" / "gpt_lab.ipynb").read_bytes() == release_path(LANG).read_bytes()
    readme = (out / "README.md").read_text(encoding="utf-8")
    assert readme.startswith("# gpt-lab: un GPT") and "{hidden_checks}" not in readme and "comprobaciones ocultas" in readme
    assert (out / "autograder" / "locale" / LANG / "LC_MESSAGES" / "gptlab.mo").is_file()
    assert not (out / "solutions").exists() and not (out / "autograder" / "checks" / "hidden").exists()


def test_gradescope_zip_can_force_a_language():
    from instructor.gradescope import _files

    assert _files(LANG)["LANG"] == "es\n" and "LANG" not in _files()
    assert f"autograder/locale/{LANG}/LC_MESSAGES/gptlab.mo" in _files()


def test_spanish_mistake_reads_in_spanish(tmp_path):
    """A typical mistake (the mask not sliced to T) graded in Spanish: the owner check's message, the
    "not measured" of the checks that defer to it and the cell named by its content are all Spanish."""
    source = render_source(SOURCE, LANG)
    assert source.count("self.tril[:T, :T] == 0") == 1
    wrong = tmp_path / "mascara.ipynb"
    wrong.write_text(source.replace("self.tril[:T, :T] == 0", "self.tril == 0"), encoding="utf-8")
    data = _grade(wrong, tmp_path / "mascara.json", "-k", "head")
    outputs = {t["name"]: t.get("output", "") for t in data["tests"] if t["tags"] == ["head"]}
    assert sum(t["score"] for t in data["tests"] if t["tags"] == ["head"]) < sum(
        t["max_score"] for t in data["tests"] if t["tags"] == ["head"])
    text = "\n".join([data.get("output", "")] + list(outputs.values()))
    assert "Pista: x tiene T <= block_size posiciones" in text and "la celda que define `Head`" in text
    assert "no medido: Head lanza un error con entradas más cortas que block_size" in text
    assert "la comprobación 'forma de la salida' informa de la causa" in text
    assert [f for f in _english_fragments() if f in text] == []
    assert "not measured" not in text and "the cell defining" not in text
