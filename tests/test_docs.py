"""The docs and the product agree: every command that README.md and docs/*.md show runs (``--help``)
and knows the options the docs give it, and every repository file they name exists."""

from __future__ import annotations

import functools
import importlib.util
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
_INLINE = re.compile(r"`([^`\n]+)`")
_FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```", re.M | re.S)
_PLACEHOLDER = re.compile(r"[<>*$]|^X/|\.\.\.")


def _snippets(doc: Path) -> list[str]:
    """Inline code and each line of the fenced blocks (comments after `#` dropped), except blocks
    marked ```text (an example of what a command prints, not commands or files)."""
    text = doc.read_text()
    found = [m.group(1).strip() for m in _INLINE.finditer(_FENCE.sub("", text))]
    for info, block in _FENCE.findall(text):
        if info.strip() != "text":
            found += [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]
    return found


def _commands() -> list[tuple[str, list[str]]]:
    """(doc, argv) for each `python -m ...`, `python benchmarks/...` and `pytest autograder` command,
    several on one line (`&&`) split apart."""
    out = []
    for doc in DOCS:
        for snippet in _snippets(doc):
            for part in re.split(r"&&|\s\|\s", snippet):
                part = part.strip()
                if part.startswith(("python ", "pytest autograder")):
                    try:
                        argv = shlex.split(part)
                    except ValueError:  # an unterminated quote in a shortened example
                        argv = part.split()
                    out.append((doc.name, argv))
    return out


def _tracked() -> list[str]:
    proc = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True)
    return proc.stdout.split()


def _ignored(path: str) -> bool:
    return subprocess.run(["git", "check-ignore", "-q", path], cwd=REPO).returncode == 0


@functools.lru_cache(maxsize=None)
def _help(argv: tuple[str, ...]) -> str:
    proc = subprocess.run([sys.executable, *argv, "--help"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{' '.join(argv)} --help failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
    return proc.stdout


def _options(argv: list[str]) -> list[str]:
    return [a.lstrip("[").split("=")[0].rstrip("]") for a in argv if a.lstrip("[").startswith("--")]


COMMANDS = _commands()


def test_docs_show_commands():
    # the extraction itself: the commands every instructor needs are found (a broken regex fails here)
    names = {" ".join(argv[:3]) for _, argv in COMMANDS}
    for expected in ("python -m instructor.grade_class", "python -m instructor.handout", "python -m instructor.gradescope"):
        assert any(n.startswith(expected) for n in names), names


@pytest.mark.parametrize("doc,argv", COMMANDS, ids=[" ".join(a)[:60] for _, a in COMMANDS])
@pytest.mark.commands
def test_docs_command_runs_help_and_knows_its_options(doc, argv):
    if argv[0] == "pytest":
        text = _help(("-m", "pytest", "autograder", "-p", "no:cacheprovider"))
        missing = [o for o in _options(argv) if o not in text]
        assert not missing, f"{doc}: `{' '.join(argv)}`: pytest autograder has no option {missing}"
        return
    if argv[1] == "-m":
        module = argv[2]
        spec = importlib.util.find_spec(module)
        assert spec is not None and spec.origin, f"{doc}: `{' '.join(argv)}`: no module {module}"
        source = Path(spec.origin).read_text()
        if "argparse" not in source:  # a module without options: running it would do its job, not help
            assert not _options(argv), f"{doc}: `{' '.join(argv)}`: {module} takes no options"
            return
        cmd = ("-m", module)
        rest = argv[3:]
    else:
        script = REPO / argv[1]
        assert script.is_file(), f"{doc}: `{' '.join(argv)}`: no file {argv[1]}"
        cmd, rest = (argv[1],), argv[2:]
    if rest and not rest[0].startswith("-") and rest[0] in ("train", "sample", "run"):
        cmd, rest = (*cmd, rest[0]), rest[1:]  # a subcommand: its own help
    text = _help(cmd)
    missing = [o for o in _options(rest) if o not in text]
    assert not missing, f"{doc}: `{' '.join(argv)}` has no option {missing}"


def _repo_paths() -> list[tuple[str, str]]:
    tops = {p.split("/")[0] for p in _tracked()}
    names = {Path(p).name for p in _tracked()}
    found = []
    for doc in DOCS:
        for snippet in _snippets(doc):
            for word in snippet.split():
                word = word.strip("`'\",;:()[]").rstrip(".")
                if _PLACEHOLDER.search(word) or "://" in word or word.startswith("-"):
                    continue
                if "/" in word and word.split("/")[0] in tops:
                    found.append((doc.name, word))
                elif "/" not in word and re.fullmatch(r"[\w.-]+\.(py|ipynb|toml|md|json)", word) and \
                        word.split(".")[0] and (word in names or not word.startswith(("results", "OUT"))):
                    found.append((doc.name, word))
    return sorted(set(found))


PATHS = _repo_paths()


def test_docs_name_repository_files():
    assert ("README.md", "autograder/parts.toml") in PATHS and ("instructor.md", "solutions/gpt_lab.ipynb") in PATHS


@pytest.mark.parametrize("doc,path", PATHS, ids=[f"{d}:{p}" for d, p in PATHS])
def test_docs_file_exists(doc, path):
    if "/" in path:
        if _ignored(path):  # a cache the docs describe (the dataset): it is made at run time
            return
        assert (REPO / path).exists(), f"{doc} names {path}, which is not in the repository"
    else:
        # a bare file name: some tracked file has it, or the product writes it (grep the code for it)
        tracked = {Path(p).name for p in _tracked()}
        made = any(path in p.read_text(errors="replace") for p in (REPO / "instructor").glob("*.py"))
        made = made or any(path in p.read_text(errors="replace") for p in (REPO / "autograder").glob("*.py"))
        assert path in tracked or made, f"{doc} names {path}: no such file in the repository or written by it"


def test_docs_agree_on_the_gradescope_zip_name():
    names = {a[3] for _, a in COMMANDS if a[:3] == ["python", "-m", "instructor.gradescope"] and len(a) > 3}
    assert len(names) == 1, f"the docs name the Gradescope zip differently: {sorted(names)}"
