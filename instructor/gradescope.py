"""Gradescope autograder for gpt-lab.

    python -m instructor.gradescope OUT.zip            # build the zip to upload ("Configure Autograder")
    python -m instructor.gradescope OUT.zip --lang es  # the same, its messages always in Spanish
    python -m instructor.gradescope run [--root DIR]   # what run_autograder calls on Gradescope

The zip (unpacked by Gradescope into /autograder/source) holds:

    setup.sh          apt python3, a venv at /autograder/venv, torch==2.13.0 (CPU index), the project
    run_autograder    finds the notebook in /autograder/submission, grades it, writes results/results.json
    pyproject.toml    dependencies; packages autograder, data, instructor
    autograder/       every check, autograder/checks/hidden/ included (their results are after_published)
    solutions/gpt_lab.ipynb   the reference solution the hidden checks compare with
    data/             the dataset loader (and tiny Shakespeare itself when it is available here)
    instructor/gradescope.py  this file (the ``run`` step)
    LANG              (with ``--lang``) the language of the messages; without it, each notebook's own
                      (``metadata.gptlab.lang``: the Spanish notebook gets Spanish messages)

``run_autograder`` takes its root from ``GPTLAB_GRADESCOPE_ROOT`` (default /autograder) and its Python
from ``GPTLAB_PYTHON`` (default ROOT/venv/bin/python), so that a test can run it in a temporary folder
laid out like Gradescope's (source/, submission/, results/). It always leaves a results.json: when
the grader cannot run or writes none, a zero-score one that says the autograder failed (not the
student), for the course staff to rerun.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

from autograder.engine.report import write_json

REPO = Path(__file__).resolve().parent.parent
TORCH_VERSION = "2.13.0"
TORCH_INDEX = "https://download.pytorch.org/whl/cpu"
# Gradescope's limit per submission (its default, 10 minutes; set GPTLAB_GRADESCOPE_LIMIT_S to the
# course's). A grading run gets half of it, so a submission is graded in time on a slow or shared
# machine too: the submission's own budget (``--time-budget``) is that half less a reserve for
# pytest's start-up, the reference, the hidden checks and the report; past the half, the run is
# killed and a zero report written.
PLATFORM_LIMIT_S = float(os.environ.get("GPTLAB_GRADESCOPE_LIMIT_S", 600))
_HALF = PLATFORM_LIMIT_S / 2
GRADE_TIMEOUT_S = _HALF - min(15.0, _HALF * 0.1)  # from this wrapper's start, the pytest run is killed here
# start-up (~10 s), the reference and the hidden checks (~20 s) and a reserve come out of the half
SUBMISSION_BUDGET_S = _HALF - min(60.0, _HALF * 0.4)
NOTEBOOK = "gpt_lab.ipynb"
_SKIP = {"__pycache__", ".pytest_cache", ".hypothesis", ".ipynb_checkpoints"}

SETUP_SH = f"""#!/usr/bin/env bash
# Gradescope: runs once, when the autograder image is built.
set -euxo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends python3 python3-pip python3-venv
python3 -m venv /autograder/venv
/autograder/venv/bin/pip install --upgrade pip
/autograder/venv/bin/pip install torch=={TORCH_VERSION} --index-url {TORCH_INDEX}
/autograder/venv/bin/pip install -e /autograder/source
# the dataset (verified by size and SHA-256): bundled, or downloaded now while there is a network
cd /autograder/source && /autograder/venv/bin/python -c "from data import load_text; load_text()" \\
    || echo "warning: tiny Shakespeare not available; the notebook's data cells will fail (the checks do not need it)"
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope: runs once per submission. Never ends without results/results.json.
ROOT="${GPTLAB_GRADESCOPE_ROOT:-/autograder}"
PYTHON="${GPTLAB_PYTHON:-$ROOT/venv/bin/python}"
RESULTS="$ROOT/results/results.json"
mkdir -p "$ROOT/results"
rm -f "$RESULTS"
cd "$ROOT/source" || true
"$PYTHON" -m instructor.gradescope run --root "$ROOT"
status=$?
if [ ! -s "$RESULTS" ]; then
    cat > "$RESULTS" <<'EOF'
{"score": 0, "output": "The autograder failed to run (a problem on our side, not in your submission). Course staff will rerun it; please let them know.", "visibility": "visible", "stdout_visibility": "hidden", "tests": []}
EOF
fi
exit 0
"""


# -- building the zip ------------------------------------------------------------------------------


def pyproject_text() -> str:
    from instructor.handout import pyproject_text as handout_pyproject

    text = handout_pyproject().replace('name = "gpt-lab-handout"', 'name = "gpt-lab-grader"')
    # the grader's zip holds the hidden checks and instructor/ too: found like every other package
    return text.replace('include = ["autograder*", "data*"]', 'include = ["autograder*", "data*", "instructor*"]')


def _files(lang: str | None = None) -> dict[str, Path | str]:
    """Path in the zip -> a file of the repository or the text to write."""
    files: dict[str, Path | str] = {"setup.sh": SETUP_SH, "run_autograder": RUN_AUTOGRADER, "pyproject.toml": pyproject_text()}
    if lang:
        files["LANG"] = lang + "\n"
    for path in sorted((REPO / "autograder").rglob("*")):
        rel = path.relative_to(REPO)
        if path.is_file() and not (set(rel.parts) & _SKIP) and path.suffix != ".pyc":
            files[str(rel)] = path
    files["solutions/gpt_lab.ipynb"] = REPO / "solutions" / NOTEBOOK
    files["data/__init__.py"] = REPO / "data" / "__init__.py"
    files["instructor/__init__.py"] = REPO / "instructor" / "__init__.py"
    files["instructor/gradescope.py"] = REPO / "instructor" / "gradescope.py"
    try:
        sys.path.insert(0, str(REPO))
        from data import CACHE_PATH, verify

        verify(CACHE_PATH)
        files["data/tinyshakespeare.txt"] = CACHE_PATH
    except Exception:  # noqa: BLE001 - not here: setup.sh downloads it
        pass
    return files


def build(out: str | Path, lang: str | None = None) -> Path:
    out = Path(out)
    if out.suffix != ".zip":
        out = out.with_name(out.name + ".zip")
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, content in _files(lang).items():
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            executable = name in ("setup.sh", "run_autograder")
            info.external_attr = ((0o755 if executable else 0o644) | stat.S_IFREG) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            data = content.encode() if isinstance(content, str) else content.read_bytes()
            z.writestr(info, data)
    return out


# -- running on Gradescope -------------------------------------------------------------------------


def find_submission(folder: Path) -> tuple[Path | None, str]:
    """The notebook (or .py module) to grade in Gradescope's submission folder, and a note: the shared
    locator's choice (``autograder.engine.load.choose_submission``: links, hard links and special files
    refused, never followed). With several notebooks and none named gpt_lab.ipynb, Gradescope grades
    the shallowest one and says so (a student cannot resubmit while the autograder runs)."""
    from autograder.engine.load import SubmissionError, choose_submission

    try:
        return choose_submission(folder, several="shallowest")
    except SubmissionError as exc:
        return None, str(exc)


def run(root: Path) -> int:
    started = time.monotonic()
    source, results = root / "source", root / "results" / "results.json"
    results.parent.mkdir(parents=True, exist_ok=True)
    submission, note = find_submission(root / "submission")
    from autograder.engine.command import grader_command
    from autograder.engine.report import zero_report

    if submission is None:  # every part at 0, each saying why: the student sees what to upload
        empty = not any(p for p in (root / "submission").glob("*")) if (root / "submission").is_dir() else True
        write_json(results, zero_report(note, code="no_submission" if empty else "unreadable",
                                        status="missing" if empty else "error"))
        print(note)
        return 0

    lang_file = source / "LANG"  # the zip's forced language, if it was built with --lang
    lang = lang_file.read_text().strip() if lang_file.is_file() else ""
    cmd = grader_command(submission, results, root=source, reference=source / "solutions" / NOTEBOOK,
                         time_budget=SUBMISSION_BUDGET_S, extra=["--lang", lang] if lang else [])
    print("$", " ".join(cmd), flush=True)
    try:
        proc = subprocess.run(cmd, cwd=source, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=max(1.0, GRADE_TIMEOUT_S - (time.monotonic() - started)),
                              env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
        log, rc = proc.stdout, proc.returncode
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout or ""
        log, rc = out.decode("utf-8", "replace") if isinstance(out, bytes) else out, None
    print(log[-20000:])
    data = None
    if rc in (0, 1):
        try:
            data = json.loads(results.read_text())
        except (OSError, ValueError):
            data = None
    if data is None:
        why = f"did not finish within {GRADE_TIMEOUT_S:g} s" if rc is None else f"exited with status {rc} and no results"
        try:
            data = zero_report(f"the grading run {why}; course staff will look at it and rerun it",
                               code="grading_timeout" if rc is None else "grader_exited",
                               status="timeout" if rc is None else "error")
        except Exception:  # noqa: BLE001 - the grader's own package is broken: the plain message
            data = {"score": 0, "tests": [], "visibility": "visible", "stdout_visibility": "hidden",
                    "output": f"The autograder failed ({why}): a problem on our side or a submission that stops "
                              "the grader. Course staff will look at it and rerun it."}
    if note:
        data["output"] = (note + "\n" + data.get("output", "")).strip()
    data["execution_time"] = round(time.monotonic() - started, 1)
    write_json(results, data)
    return 0


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["run"]:
        ap = argparse.ArgumentParser(prog="python -m instructor.gradescope run")
        ap.add_argument("--root", default=os.environ.get("GPTLAB_GRADESCOPE_ROOT", "/autograder"))
        args = ap.parse_args(argv[1:])
        return run(Path(args.root))
    ap = argparse.ArgumentParser(prog="python -m instructor.gradescope", description=__doc__.split("\n\n")[0])
    ap.add_argument("out", help="the zip to write (upload it as the autograder on Gradescope)")
    ap.add_argument("--lang", default=None, help="the messages' language, en or es (default: each notebook's own)")
    args = ap.parse_args(argv)
    print(f"wrote {build(args.out, lang=args.lang)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
