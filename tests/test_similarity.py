"""instructor/similarity.py: per-part code from notebooks and modules, a class with a planted pair
(tests/bank/klass.py; no grading needed), and the HTML page opened in a real headless browser."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest

from instructor import similarity
from instructor.grade_class import discover
from tests.bank import klass as klass_bank
from tests.conftest import ASSIGNMENT, REFERENCE, REPO

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    root = tmp_path_factory.mktemp("sim")
    made = klass_bank.build(root)
    out = root / "similarity.html"
    pairs = similarity.report(discover(made["subs"]), out)
    return {"pairs": pairs, "html": out, "subs": made["subs"]}


def test_similarity_part_code_by_contract_names():
    code = similarity.part_code(REFERENCE)
    assert set(code) == set(similarity.PART_NAMES)
    assert code["head"].lstrip().startswith("class Head(nn.Module):") and "def forward" in code["head"]
    assert "def generate" in code["gpt"]  # generate is written inside GPTLanguageModel


def test_similarity_part_code_from_a_module_and_a_broken_cell(tmp_path):
    mod = tmp_path / "s.py"
    mod.write_text("import torch\n\ndef get_batch(data, block_size, batch_size):\n    return 1\n\nX = 3\n")
    assert similarity.part_code(mod) == {"get_batch": "def get_batch(data, block_size, batch_size):\n    return 1"}
    nb = nbformat.read(REFERENCE, as_version=4)
    (cell,) = [c for c in nb.cells if (c.metadata.get("nbgrader") or {}).get("grade_id") == "train_code"]
    cell.source = cell.source.replace("def train(", "def train((")
    nbformat.write(nb, tmp_path / "n.ipynb")
    assert "def train((" in similarity.part_code(tmp_path / "n.ipynb")["train"]
    (tmp_path / "bad.ipynb").write_text("{not json")
    assert similarity.part_code(tmp_path / "bad.ipynb") == {}


def test_similarity_planted_pair_first_and_no_honest_pair_near_it(page):
    pairs = page["pairs"]
    assert (pairs[0].a, pairs[0].b) == klass_bank.PLANTED, [(p.a, p.b, round(p.score, 2)) for p in pairs[:5]]
    assert pairs[0].score >= 0.5, pairs[0].score
    # every other pair, honest ones included, is well below: a human reads one pair, not the class
    assert all(p.score < 0.5 * pairs[0].score for p in pairs[1:]), [(p.a, p.b, round(p.score, 2)) for p in pairs[1:4]]
    shared = {m.part for m in pairs[0].parts if any(m.shared)}
    assert {"head", "tokenizer", "train", "gpt"} <= shared, shared  # alice's own parts, found through the renames


def test_similarity_normalises_names_comments_and_formatting():
    # the planted copy against its source, without the class's common code: the renamed, commented,
    # reformatted head is still found whole
    nb = klass_bank.honest("alice")
    with tempfile.TemporaryDirectory() as tmp:
        a, b = Path(tmp) / "a.ipynb", Path(tmp) / "b.ipynb"
        nbformat.write(nb, a)
        nbformat.write(klass_bank.plagiarise(nb), b)
        codes = {"a": similarity.part_code(a), "b": similarity.part_code(b)}
    assert codes["a"]["head"] != codes["b"]["head"] and "attn_scores" in codes["b"]["head"]
    (pair,) = similarity.compare(codes, release=ASSIGNMENT)
    head = next(m for m in pair.parts if m.part == "head")
    assert head.score > 0.9, (head.shared, head.sizes)
    # and an unrelated implementation of the same part is not
    other = {"a": codes["a"], "c": similarity.part_code(REFERENCE)}
    other["c"]["head"] = ("class Head(nn.Module):\n    def __init__(self, n_embd, head_size, block_size, dropout=0.0):\n"
                          "        super().__init__()\n        self.kqv = nn.ModuleList([nn.Linear(n_embd, head_size, "
                          "bias=False) for _ in range(3)])\n")
    (pair,) = similarity.compare(other, release=ASSIGNMENT)
    assert next(m for m in pair.parts if m.part == "head").score < 0.3


def test_similarity_page_lists_pairs_with_code_side_by_side(page):
    text = page["html"].read_text()
    assert text.count("class='pair'") == 1 and "data-a='alice' data-b='mallory'" in text
    assert "<mark>" in text and "never a grade" in text
    assert "attn_scores" in text  # mallory's side is shown as written


def test_similarity_cli(page, tmp_path):
    out = tmp_path / "s.html"
    proc = subprocess.run([sys.executable, "-m", "instructor.similarity", page["subs"], "--out", out],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0].split()[1:] == list(klass_bank.PLANTED) and "1 pair(s) listed" in proc.stdout


@pytest.mark.browser
@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs Debian's chromium and chromium-driver")
def test_similarity_page_in_a_headless_browser(page, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not try to download a driver
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        driver.set_page_load_timeout(60)
        driver.get(page["html"].resolve().as_uri())
        assert driver.title == "gpt-lab: similarity report"
        rows = driver.find_elements(By.CSS_SELECTOR, "#pairs tr.pair")
        assert rows, driver.page_source[:2000]
        first = rows[0]
        names = [td.text for td in first.find_elements(By.CSS_SELECTOR, "td.name")]
        assert names == list(klass_bank.PLANTED), names
        first.find_element(By.TAG_NAME, "a").click()
        assert driver.current_url.endswith("#pair-1")
        section = driver.find_element(By.ID, "pair-1")
        blocks = section.find_elements(By.CSS_SELECTOR, "pre.code")
        assert len(blocks) >= 2
        left, right = blocks[0], blocks[1]
        for block in (left, right):
            assert block.is_displayed() and block.size["width"] > 100 and block.size["height"] > 50
            assert block.find_elements(By.TAG_NAME, "mark"), "no shared code highlighted"
        assert left.location["y"] == right.location["y"] and left.location["x"] < right.location["x"]  # side by side
        heads = [h.text for h in section.find_elements(By.TAG_NAME, "h4")[:2]]
        assert heads == list(klass_bank.PLANTED)
        assert left.text != right.text  # each side's code as its student wrote it
    finally:
        driver.quit()
