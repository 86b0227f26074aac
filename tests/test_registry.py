"""The registry of parts (autograder/parts.toml) is the one place a part is declared.

* The notebooks' check cells carry the registry's points (``instructor.generate --check``).
* Adding a part takes the three edits of docs/architecture.md, and changing a part's points one edit: in a
  temporary copy of the repository, a toy part is added and ``gpt``'s points are doubled; the reference and
  the untouched student notebook are then graded through ``pytest autograder`` and through real nbgrader, and
  both agree per part, the toy part included.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from autograder import parts as registry

REPO = Path(__file__).resolve().parent.parent


def test_registry_lists_the_contract_parts_in_notebook_order():
    assert registry.PARTS[:3] == ("tokenizer", "get_batch", "bigram") and registry.PARTS[-1] == "quiz"
    points, bonus = registry.rubric()
    assert bonus == {"bigram"} and sum(v for p, v in points.items() if p not in bonus) == 6


def test_check_cells_carry_the_registry_points():
    from instructor.generate import apply_registry

    for path in (REPO / "solutions" / "gpt_lab.ipynb", REPO / "assignment" / "gpt_lab.ipynb"):
        nb = nbformat.read(path, as_version=4)
        assert apply_registry(nb) == [], f"{path.name} disagrees with autograder/parts.toml"


def test_generate_reports_a_points_change_and_a_missing_check_cell(tmp_path):
    """The sync is not vacuous: a cell with other points is reported (and fixed); a registered part
    without its check cell is an error that names it."""
    from instructor.generate import RegistryMismatch, apply_registry

    nb = nbformat.read(REPO / "solutions" / "gpt_lab.ipynb", as_version=4)
    cell = next(c for c in nb.cells if (c.metadata.get("nbgrader") or {}).get("grade_id") == "check_head")
    cell.metadata["nbgrader"]["points"] = 3
    assert apply_registry(nb) == ["check_head: points 3 -> 0.75"] and cell.metadata["nbgrader"]["points"] == 0.75
    nb.cells.remove(cell)
    with pytest.raises(RegistryMismatch, match="check_head"):
        apply_registry(nb)


def test_registry_rejects_bad_declarations(tmp_path):
    bad = {"no parts": "", "bad points": "[parts.x]\npoints = 'many'\n", "unknown key": "[parts.x]\npoints = 1\ncolour = 2\n",
           "too precise": "[parts.x]\npoints = 0.00001\n", "not an identifier": "[parts.X-1]\npoints = 1\n"}
    for why, text in bad.items():
        path = tmp_path / "parts.toml"
        path.write_text(text)
        with pytest.raises(registry.RegistryError):
            registry.read(path)
        assert why


def test_collection_and_check_cells_use_one_rule():
    """What ``pytest autograder --collect-only`` collects is exactly what the check cells discover."""
    proc = subprocess.run([sys.executable, "-m", "pytest", "autograder", "--collect-only", "-q", "-p", "no:cacheprovider"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    collected = {line.split("::")[1].split("[")[0] for line in proc.stdout.splitlines() if "::" in line}
    discovered = {fn.__name__ for p in registry.PARTS for _, fn, _ in registry.checks_of(p, hidden=True)}
    assert collected and collected == discovered


# -- a toy part, added in three edits, graded through pytest and nbgrader ------------------------------

TOY_DECLARATION = """
[parts.toy]
title = "Toy: running sums"
points = 0.25
names = ["running_sums"]
"""

TOY_CHECKS = '''
"""Part toy: ``running_sums`` (a test of the registry: a part added in three edits)."""

from autograder.checks.verdicts import expect, need


def test_toy_running_sums(sub):
    need(sub, "running_sums", "function")
    got = sub.call("running_sums", [1, 2, 3, 4])
    expect(list(got) == [1, 3, 6, 10], f"running_sums([1, 2, 3, 4]) should be [1, 3, 6, 10], got {got}")


def test_toy_empty(sub):
    need(sub, "running_sums", "function")
    got = sub.call("running_sums", [])
    expect(list(got) == [], f"running_sums([]) should be [], got {got}")
'''

TOY_SOLUTION = """def running_sums(xs):
    ### BEGIN SOLUTION
    out, total = [], 0
    for x in xs:
        total += x
        out.append(total)
    return out
    ### END SOLUTION"""


def _copy_repository(dest: Path) -> Path:
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout.decode()
    for name in filter(None, files.split("\0")):
        src = REPO / name
        if src.is_file() and not src.is_symlink():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
        elif src.is_symlink():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(os.readlink(src), dest / name)
    data = REPO / "data" / "tinyshakespeare.txt"
    if data.is_file():
        shutil.copy2(data, dest / "data" / data.name)
    return dest


def _add_toy_part(root: Path) -> None:
    # edit 1: declare it (and change gpt's points: one edit)
    toml = root / "autograder" / "parts.toml"
    text = toml.read_text().replace("[parts.gpt]\ntitle = \"GPT model\"\npoints = 0.5", "[parts.gpt]\ntitle = \"GPT model\"\npoints = 1.0")
    assert text != toml.read_text()
    toml.write_text(text + TOY_DECLARATION)
    # edit 2: its checks
    (root / "autograder" / "checks" / "test_toy.py").write_text(TOY_CHECKS.lstrip())
    # edit 3: the solution cell and the check cell in the source notebook
    source = root / "solutions" / "gpt_lab.ipynb"
    nb = nbformat.read(source, as_version=4)
    at = next(i for i, c in enumerate(nb.cells) if (c.metadata.get("nbgrader") or {}).get("grade_id") == "check_tokenizer") + 1
    solution = nbformat.v4.new_code_cell(TOY_SOLUTION, metadata={"nbgrader": {
        "grade": False, "solution": True, "locked": False, "grade_id": "toy_code", "schema_version": 3}})
    check = nbformat.v4.new_code_cell('from autograder.notebook import check\ncheck("toy", globals())', metadata={
        "nbgrader": {"grade": True, "solution": False, "locked": True, "grade_id": "check_toy", "points": 0,
                     "schema_version": 3}})
    nb.cells[at:at] = [solution, check]
    nbformat.write(nb, source)


def _env() -> dict:
    bin_dir = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""), "PYTHONDONTWRITEBYTECODE": "1"}


def _run(cmd, cwd) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode in (0, 1), f"{cmd} -> {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


def _pytest_parts(results: Path) -> dict[str, tuple[float, float]]:
    out: dict[str, list[float]] = {}
    for t in json.loads(results.read_text())["tests"]:
        s = out.setdefault(t["tags"][0], [0.0, 0.0])
        s[0] += t["score"]
        s[1] += t["max_score"]
    return {p: (round(a, 4), round(b, 4)) for p, (a, b) in out.items()}


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    pytest.importorskip("nbgrader")
    if not (REPO / "data" / "tinyshakespeare.txt").is_file() and not os.environ.get("GPTLAB_DATA"):
        pytest.skip("tiny Shakespeare is not available offline")
    root = _copy_repository(tmp_path_factory.mktemp("toy") / "gpt-lab")
    _add_toy_part(root)
    # the English edition: the Spanish one waits for the toy's cells to be translated (generate says so)
    generate = _run([sys.executable, "-m", "instructor.generate", "--lang", "en"], root)
    stub = root / "assignment" / "gpt_lab.ipynb"
    results = {}
    for name, path in (("reference", root / "solutions" / "gpt_lab.ipynb"), ("stub", stub)):
        out = root / f"{name}.json"
        _run([sys.executable, "-m", "pytest", "autograder", "-q", "-p", "no:cacheprovider", "--submission", str(path),
              "--grade-json", str(out)], root)
        results[name] = _pytest_parts(out)
    course = root.parent / "course"
    _run([sys.executable, "-m", "instructor.course_init", str(course)], root)
    _run([sys.executable, "-m", "nbgrader", "generate_assignment", "gpt_lab"], course)
    for name, path in (("reference", root / "solutions" / "gpt_lab.ipynb"), ("stub", stub)):
        folder = course / "submitted" / name / "gpt_lab"
        folder.mkdir(parents=True)
        shutil.copy(path, folder / "gpt_lab.ipynb")
    _run([sys.executable, "-m", "nbgrader", "autograde", "gpt_lab"], course)
    from nbgrader.api import Gradebook

    nbgrader = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for name in ("reference", "stub"):
            sub = gb.find_submission_notebook("gpt_lab", "gpt_lab", name)
            nbgrader[name] = {g.name.removeprefix("check_"): (round(g.score, 4), float(g.max_score))
                              for g in sub.grades if g.name.startswith("check_")}
    release = nbformat.read(course / "release" / "gpt_lab" / "gpt_lab.ipynb", as_version=4)
    return {"root": root, "generate": generate, "pytest": results, "nbgrader": nbgrader, "release": release}


@pytest.mark.nbgrader  # the toy part's fixture runs real nbgrader (generate, autograde)
def test_toy_part_graded_by_pytest(toy):
    assert "check_toy: points 0 -> 0.25" in toy["generate"] and "check_gpt: points 0.5 -> 1.0" in toy["generate"]
    ref, stub = toy["pytest"]["reference"], toy["pytest"]["stub"]
    assert ref["toy"] == (0.25, 0.25) and stub["toy"] == (0.0, 0.25)
    assert ref["gpt"] == (1.0, 1.0)


@pytest.mark.nbgrader  # the toy part's fixture runs real nbgrader (generate, autograde)
def test_toy_part_graded_by_nbgrader_as_by_pytest(toy):
    for name in ("reference", "stub"):
        nb, py = toy["nbgrader"][name], toy["pytest"][name]
        assert nb["toy"] == py["toy"] and nb["gpt"] == py["gpt"], (name, nb, py)
        for part, (score, _) in py.items():  # every part: the same score (the bonus part's as extra credit)
            assert nb[part][0] == pytest.approx(score, abs=1e-4), (name, part, nb[part], py[part])
    assert toy["nbgrader"]["reference"]["gpt"][1] == 1.0


@pytest.mark.nbgrader  # the toy part's fixture runs real nbgrader (generate, autograde)
def test_toy_part_reaches_the_release(toy):
    sources = [c.source for c in toy["release"].cells]
    assert 'from autograder.notebook import check\ncheck("toy", globals())' in sources
    assert not any("total += x" in s for s in sources)
