"""The adversarial bank, as data: hostile submissions and the exact grade each must get.

Each case: an ``id``, the bullet of issue 4 it covers, how its submission is built (edits of the
reference notebook, or raw bytes), the expected score of every part, and a time budget for the
whole ``pytest autograder`` run. Expected scores are written per part as

- ``FULL``: the part's points from ``autograder/parts.toml`` (what the reference earns);
- ``ZERO``;
- ``Only(...)``: exactly the named checks of the part pass (names as in results.json, without the
  ``part: `` prefix; a name matches all its parametrisations), so the score is
  points * len(passing) / len(checks), counted on the reference's own list of checks.

Parts not named in ``expect`` are FULL. ``base = ZERO`` makes every unnamed part ZERO. Two more specs,
for the cases of issue 13 on worker deaths whose exact cost depends on timing: ``BELOW`` (strictly less
than full) and ``ANY`` (not compared: the case is about the other parts).

The cases of issue 13 (at the end) cover: a report whatever the notebook's JSON (invalid for nbformat,
list metadata, 100,000-deep nesting, millions of values), IPython transforms in the worker, one time
budget per submission and deadline-bounded reads, the cap on answers, the disk quota, the shared
locator (links, hard links, FIFOs refused), deaths charged to the code that causes them, exact points.
Cases with a budget of ``SLOW_BUDGET_S`` or more carry the ``slow_bank`` marker.

Decisions on the "lying return value" bullet (what the contract accepts):
- non-contiguous, transposed-back or aliased tensors with the right values: accepted (full marks);
- float64 logits with the right values: accepted (the contract fixes shapes and values, not dtype);
- a ``generate`` that returns a view of a buffer it mutates on its next call: accepted, since each
  answer is copied when it is returned (the values of that call are right);
- int logits, NaN / inf, lists instead of tensors, tensors on the meta device: lose the checks
  that read those values (tensors must live on a real device: meta has no values to read).

Time budgets (s) are for a loaded 2-core machine: a clean run takes 10-25 s here. A hang costs a
per-call limit (10 s + 3 s grace) per check that meets it, a cell limit (20 s + 3 s) at load time.
"""

from __future__ import annotations

import json
import os
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from tests.adversarial import helpers as H

FULL, ZERO = "full", "zero"


@dataclass(frozen=True)
class Only:
    passing: tuple[str, ...]

    def __init__(self, *passing: str):
        object.__setattr__(self, "passing", tuple(passing))


@dataclass
class Case:
    id: str
    bullet: str
    why: str
    edits: tuple = ()  # edits of the reference notebook (helpers.prepend, ...), applied in order
    raw: Callable[[Path], Path] | None = None  # or: write the submission yourself (folder -> path)
    module: bool = False  # write the edited notebook as a percent-format .py module
    expect: dict = field(default_factory=dict)
    base: str = FULL
    budget_s: float = 75.0
    context: Callable[[Path], dict] | None = None  # folder -> values the edits / checks need
    source_of: Callable[[dict], tuple] | None = None  # context -> edits (for edits that need the context)
    after: Callable[["H.Run"], list[str]] | None = None  # extra checks on the run: problems found
    args: tuple = ()  # extra options of pytest autograder (``--time-budget 15``)

    def build(self, folder: Path) -> tuple[Path, dict]:
        folder.mkdir(parents=True, exist_ok=True)
        ctx = self.context(folder) if self.context else {}
        if self.raw is not None:
            return self.raw(folder), ctx
        nb = H.reference_nb()
        for edit in (*self.edits, *(self.source_of(ctx) if self.source_of else ())):
            nb = edit(nb)
        sub = folder / "submission"
        sub.mkdir(exist_ok=True)
        if self.module:
            path = sub / "gpt_lab.py"
            path.write_text(H.as_module(nb))
        else:
            import nbformat

            path = sub / "gpt_lab.ipynb"
            nbformat.write(nb, path)
        return path, ctx


# The checkout under test: hostile payloads aim at it (never at a fixed path of some machine), so a run
# from any checkout tests that checkout's sandbox and can damage nothing else.
CHECKOUT = str(H.REPO)


def d(src: str) -> str:
    return textwrap.dedent(src).strip("\n").replace("@CHECKOUT@", CHECKOUT) + "\n"


# -- pieces of hostile code --------------------------------------------------------------------------

HEAD = "head_code"
HEAD_RETURN = "        return out\n        ### END SOLUTION"


def head_forward(body: str):
    """Head.forward runs ``body`` (indented 8 spaces) just before it returns ``out``."""
    return H.substitute(HEAD, HEAD_RETURN, textwrap.indent(d(body), " " * 8) + HEAD_RETURN)


ZEROS_HEAD = head_forward("out = torch.zeros_like(out)")
CRASH_HEAD = head_forward("raise ValueError('my head is broken')")

# The checks of part head that a Head whose forward returns zeros (or a constant) honestly passes:
# nothing there reads the values except through equalities between two of its outputs.
# "mask moves with the module" (the mask a registered buffer) is structure too: a wrong forward keeps it
HEAD_ZEROS = Only("structure", "mask moves with the module", "output shape", "causal", "batch elements independent")
# ... and that a Head whose forward never answers (raises, hangs, crashes, exits) passes.
HEAD_DEAD = Only("structure", "mask moves with the module")
# logits of no use: every gpt check fails but the one that its tensors live on the input device
GPT_WRONG_LOGITS = Only("tensors on the input device")

GPT_RETURN = "        return logits, loss\n        ### END SOLUTION"
GPT_RETURN_NONE = "            return logits, None\n"


def gpt_logits(expr: str):
    """GPTLanguageModel.forward returns ``expr`` (of ``logits``) in place of its logits."""
    def edit(nb):
        nb = H.substitute("gpt_code", GPT_RETURN_NONE, f"            return {expr}, None\n")(nb)
        return H.substitute("gpt_code", GPT_RETURN, f"        return {expr}, loss\n        ### END SOLUTION")(nb)
    return edit


GENERATE_LOOP = "        for _ in range(max_new_tokens):\n            idx_cond"


def generate_prelude(body: str):
    return H.substitute("gpt_code", GENERATE_LOOP,
                        textwrap.indent(d(body), " " * 8) + GENERATE_LOOP)


TRAIN_START = "    losses = []\n"


def train_prelude(body: str):
    return H.substitute("train_code", TRAIN_START, textwrap.indent(d(body), " " * 4) + TRAIN_START)


FORK_BOMB = d("""
    import os, time
    # guarded: only inside the grader's PID namespace (the worker is PID 1 there), at most 500 forks
    if os.getpid() == 1:
        for _ in range(500):
            if os.fork() == 0:
                try:
                    time.sleep(1000)
                finally:
                    os._exit(0)
""")

PATCH_TORCH_AND_GRADER = d("""
    import sys, types, torch
    import torch.testing
    torch.allclose = lambda *a, **k: True
    torch.equal = lambda *a, **k: True
    torch.testing.assert_close = lambda *a, **k: None
    torch.isfinite = lambda t, *a, **k: torch.ones_like(t, dtype=torch.bool)
    # a naive grader imports pytest in the student's process: make its helpers lie too
    fake_pytest = types.ModuleType("pytest")
    fake_pytest.approx = lambda expected, *a, **k: type("A", (), {"__eq__": lambda s, o: True})()
    fake_pytest.fail = fake_pytest.skip = lambda *a, **k: None
    sys.modules["pytest"] = fake_pytest
    try:
        import pytest as _real_pytest
        _real_pytest.fail = _real_pytest.skip = lambda *a, **k: None
    except Exception:
        pass
    # the grader's modules importable here: make their checks and answers lie
    import autograder.engine.wire as P, autograder.engine.worker_ops as R
    try:
        import autograder.checks.verdicts as C
        C.close = C.expect = C.tensor = C.fail = lambda *a, **k: None
        C.CheckFailed = type("Never", (Exception,), {})
    except Exception:
        pass
    _dispatch = R.Runtime.dispatch
    def dispatch(self, request, timeout=None):
        answer = _dispatch(self, request, timeout)
        if not answer.get("ok") and answer.get("error", {}).get("type") != "Timeout":
            return {"ok": True, "value": None}  # turn every failure into a success
        return answer
    R.Runtime.dispatch = dispatch
    _send = P.send
    P.send = lambda sock, message: _send(sock, {**message, "verdict": "passed", "score": 100})
""")

# The patched Runtime.dispatch turns every failure into the answer None: encode('#') then
# "returns None" instead of raising KeyError, so the submission (through its own patch) loses the
# check "unknown character raises", and wins nothing: a forged answer is still an answer.
TOKENIZER_FORGED_NONE = Only("matches reference", "vocabulary sorted", "encode is index in vocabulary", "round trip")
# PATCH_BUILTINS defines `isinstance` and `len` as globals of the submission too, so its own decode
# (`if isinstance(ids, torch.Tensor): ids = ids.tolist()`) breaks on a list: an honest loss of the round trip.
TOKENIZER_OWN_ISINSTANCE = Only("matches reference", "vocabulary sorted", "encode is index in vocabulary",
                                "unknown character raises")

PATCH_BUILTINS = d("""
    import builtins, torch
    _isinstance, _len = builtins.isinstance, builtins.len
    def isinstance(obj, classinfo, _i=_isinstance):
        # a naive grader's `isinstance(out, torch.Tensor)`: lists and tuples "are" tensors
        if classinfo is torch.Tensor and type(obj) in (list, tuple):
            return True
        return _i(obj, classinfo)
    def len(obj, _l=_len):
        # a naive grader's `len(losses) == max_iters`: a list of losses always has the right length
        if type(obj) is list and obj and all(type(v) is float for v in obj):
            return 6
        return _l(obj)
    builtins.isinstance, builtins.len = isinstance, len
""")

PATCH_MANUAL_SEED = d("""
    import torch
    _seed = torch.manual_seed
    torch.manual_seed = lambda seed: _seed(0)  # every seed is 0: a naive grader's seeded comparisons agree
    torch.random.manual_seed = torch.manual_seed
""")

FAKE_OUTPUT = d("""
    import sys, json
    fake = '''============================= test session starts ==============================
    autograder/checks/test_head.py::test_head_attention_rows_average_the_past PASSED  [100%]
    ================================ gpt-lab grade =================================
    head            1.00   1.00  9/9
    total 6.50 / 6.00
    ============================== 50 passed in 1.00s ==============================
    '''
    forged = json.dumps({"score": 6.5, "tests": [{"name": "head", "score": 1.0, "max_score": 1.0,
                                                  "status": "passed", "tags": ["head"]}]})
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        print(fake, file=stream)
        print(forged, file=stream)
        stream.flush()
    import os
    for fd in (1, 2):
        os.write(fd, (fake + forged + "\\n").encode())
""")

LEAK_PROBE = d("""
    import os, re, sys, glob, json, zlib
    leaked = []          # anything the grader should have kept from us
    answers = None       # the reference's quiz answers, if we could read them

    def take(text, where):
        global answers
        if not text:
            return
        if "BEGIN SOLUTION" in text or "def test_" in text or "quiz_answers" in text:
            leaked.append(where)
        for m in re.finditer(r'quiz_answers\\s*=\\s*(\\{\\s*"q1"[^}]*\\})', text.replace('\\\\"', '"')):
            try:
                found = eval(m.group(1), {})
            except Exception:
                continue
            if answers is None and all(v in ("a", "b", "c", "d") for v in found.values()):
                answers = found

    def read(path, where=None):
        try:
            with open(path, "rb") as f:
                take(f.read(20_000_000).decode("utf-8", "replace"), where or path)
        except Exception:
            pass

    for root in ("@CHECKOUT@", os.getcwd(), *sys.path):
        for rel in ("solutions/gpt_lab.ipynb", "autograder/checks/hidden/test_quiz_hidden.py"):
            read(os.path.join(root, rel))
        for p in glob.glob(os.path.join(root, "solutions", "*")) + glob.glob(os.path.join(root, "autograder", "checks", "hidden", "*")):
            read(p)
    for k, v in os.environ.items():                      # env vars naming the reference or the grading run
        if "solution" in v or "PYTEST" in k or "NBGRADER" in k or "reference" in k.lower():
            leaked.append(f"env {k}")
            read(v)
    for pid in os.listdir("/proc"):                       # every process we can see: the grader's command line
        if pid.isdigit() and int(pid) != os.getpid():
            for what in ("cmdline", "environ"):
                try:
                    raw = open(f"/proc/{pid}/{what}", "rb").read().decode("utf-8", "replace")
                except Exception:
                    continue
                for arg in raw.split("\\0"):
                    if arg.endswith(".ipynb") or "solutions" in arg or "--reference" in arg:
                        leaked.append(f"/proc/{pid}/{what}")
                        read(arg.split("=", 1)[-1])
            read(f"/proc/{pid}/cwd/solutions/gpt_lab.ipynb", f"/proc/{pid}/cwd")
    try:                                                  # the parent process
        read(f"/proc/{os.getppid()}/cwd/solutions/gpt_lab.ipynb", "/proc/ppid/cwd")
    except Exception:
        pass
    for name, mod in list(sys.modules.items()):          # anything of the reference loaded in this process
        if "quiz_answers" in (getattr(mod, "__dict__", None) or {}) or "hidden" in name or "solution" in name:
            leaked.append(f"sys.modules[{name!r}]")
""")

LEAK_GIT = d("""
    import os, re, zlib
    leaked, answers = [], None
    for top, dirs, files in os.walk("@CHECKOUT@/.git/objects"):
        for f in files:
            try:
                raw = zlib.decompress(open(os.path.join(top, f), "rb").read())
            except Exception:
                continue
            if raw.startswith(b"blob") and b"BEGIN SOLUTION" in raw and b"quiz_answers" in raw:
                text = raw.decode("utf-8", "replace").replace('\\\\"', '"')
                for m in re.finditer(r'quiz_answers\\s*=\\s*(\\{\\s*"q1"[^}]*\\})', text):
                    try:
                        found = eval(m.group(1), {})
                    except Exception:
                        continue
                    if all(v in ("a", "b", "c", "d") for v in found.values()):
                        leaked.append(os.path.join(top, f))
                        answers = found
""")


def quiz_from_leak(wrong: dict) -> str:
    """The quiz cell of a leaking submission: the leaked answers if any, else deliberately wrong
    ones (every answer differs from the reference's). If something leaked but no answers came out
    of it, quiz_answers is left empty, so the score tells the two apart."""
    return d(f"""
        if answers is not None:
            quiz_answers = dict(answers)
        elif leaked:
            quiz_answers = {{}}
        else:
            quiz_answers = {wrong!r}
        if leaked:  # shows in the grader's notes (cell errors), for the record
            raise RuntimeError(f"leaked: {{sorted(set(leaked))[:8]}}")
    """)


QUIZ_WRONG_ONLY = Only("answers well formed")


def leak_edits(probe: str):
    def edits(ctx):
        return (H.after_imports(probe), H.replace_cell("quiz_code", quiz_from_leak(ctx["wrong_quiz"])))
    return edits


def wrong_quiz_context(folder: Path) -> dict:
    return {"wrong_quiz": H.wrong_quiz()}


# -- forged results file and writes outside the sandbox ----------------------------------------------


def forge_context(folder: Path) -> dict:
    # the grade-json path is a fixed, well-known place (as /autograder/results/results.json on
    # Gradescope), so the hostile code can know it without reading the grader's command line
    return {"json": str(folder / "out" / "results.json")}


def forge_edits(ctx):
    path = ctx["json"]
    forged = {"score": 99.0, "tests": [{"name": f"{p}: forged", "score": 9.0, "max_score": 1.0, "status": "passed",
                                        "tags": [p]} for p in H.PARTS]}
    return (H.after_imports(d(f"""
        import os, sys, json, time, subprocess
        FORGED = {json.dumps(forged)!r}
        targets = [{path!r}]
        try:   # the grader's command line, if visible
            for pid in os.listdir("/proc"):
                if pid.isdigit():
                    args = open(f"/proc/{{pid}}/cmdline", "rb").read().split(b"\\0")
                    if b"--grade-json" in args:
                        targets.append(args[args.index(b"--grade-json") + 1].decode())
        except Exception:
            pass
        wrote = []
        for t in targets:
            try:
                os.makedirs(os.path.dirname(t), exist_ok=True)
                with open(t, "w") as f:
                    f.write(FORGED)
                wrote.append(t)
            except Exception as exc:
                print("could not forge", t, exc)
        # a process that outlives this one and rewrites the file after the grader has written it
        code = ("import os,time,sys\\nos.setsid()\\nend=time.time()+60\\n"
                "while time.time()<end:\\n"
                "    for t in sys.argv[2:]:\\n"
                "        try: open(t,'w').write(sys.argv[1])\\n"
                "        except Exception: pass\\n"
                "    time.sleep(0.2)\\n")
        subprocess.Popen([sys.executable, "-c", code, FORGED, *targets, "{H.STRAY_MARK}"],
                         start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import atexit
        atexit.register(lambda: [open(t, "w").write(FORGED) for t in targets])
    """)), ZEROS_HEAD)


def forged_file_is_gone(run: "H.Run") -> list[str]:
    import time

    time.sleep(3)  # give a surviving forger time to strike after the grader wrote the file
    try:
        data = json.loads(Path(run.json_path).read_text())
    except (OSError, ValueError) as exc:
        return [f"results.json unreadable 3 s after the run: {exc}"]
    if data.get("score") == 99.0 or any("forged" in t.get("name", "") for t in data.get("tests", [])):
        return ["results.json holds the forged results 3 s after the run"]
    if data != run.data:
        return ["results.json changed after the run ended"]
    return []


def outside_markers(folder: Path) -> dict:
    import sysconfig

    tag = f"gptlab-adv-marker-{os.getpid()}-{folder.name}"
    places = {
        "python stdlib": sysconfig.get_paths()["stdlib"],
        "the checkout's parent folder": str(H.REPO.parent),  # beside the checkout under test, never a fixed path
        "grader HOME": os.path.expanduser("~"),
        "/tmp": "/tmp",
        "repository": str(H.REPO),
        "submission folder": str(folder / "submission"),
        "grade-json folder": str(folder / "out"),
    }
    return {"markers": {k: os.path.join(v, tag) for k, v in places.items()}}


def write_markers_edits(ctx):
    paths = list(ctx["markers"].values())
    return (H.after_imports(d(f"""
        import os
        for p in {paths!r}:
            try:
                with open(p, "w") as f:
                    f.write("written by a graded submission")
            except Exception as exc:
                print("could not write", p, exc)
    """)),)


def no_markers(run: "H.Run") -> list[str]:
    problems = []
    for where, p in run.context["markers"].items():
        if os.path.exists(p):
            problems.append(f"the submission created a file in {where}: {p}")
            try:
                os.remove(p)
            except OSError:
                pass
    return problems


VANDAL = d("""
    import os, glob, shutil, subprocess
    for p in ["@CHECKOUT@/README.md", "@CHECKOUT@/autograder/parts.toml", "@CHECKOUT@/autograder/conftest.py",
              "@CHECKOUT@/solutions/gpt_lab.ipynb", *glob.glob("@CHECKOUT@/autograder/**/*.py", recursive=True),
              *glob.glob("@CHECKOUT@/data/*")]:
        for action in (lambda: open(p, "a").write("\\n# vandalised\\n"), lambda: os.remove(p),
                       lambda: os.chmod(p, 0), lambda: os.rename(p, p + ".bak")):
            try:
                action()
            except Exception:
                pass
    for d in ("@CHECKOUT@/autograder", "@CHECKOUT@/.git", "@CHECKOUT@/tests"):
        try:
            shutil.rmtree(d)
        except Exception:
            pass
    for f in os.listdir("."):                 # the working directory
        try:
            os.remove(f)
        except Exception:
            pass
    subprocess.run(["git", "-C", "@CHECKOUT@", "checkout", "--orphan", "vandal"], capture_output=True)
    subprocess.run(["git", "-C", "@CHECKOUT@", "rm", "-rf", "."], capture_output=True)
""")


def submission_unchanged(run: "H.Run") -> list[str]:
    before = run.context.get("submission_hashes")
    after = H.tree_hashes(run.submission.parent)
    return [] if before == after else [f"the submission's folder changed: {before} -> {after}"]


def snapshot_submission(folder: Path) -> dict:
    return {}


# -- raw (malformed) submissions -----------------------------------------------------------------


def raw_file(name: str, data: bytes | str):
    def write(folder: Path) -> Path:
        p = folder / "submission" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data if isinstance(data, bytes) else data.encode())
        return p
    return write


def missing_path(folder: Path) -> Path:
    return folder / "submission" / "no_such_notebook.ipynb"


def huge_notebook(folder: Path, mb: int = 50) -> Path:
    import nbformat

    nb = H.reference_nb()
    blob = "x" * (mb * 2**20)
    nb.cells[H.cell_index(nb, "head_code")].outputs = [nbformat.v4.new_output("stream", name="stdout", text=blob)]
    p = folder / "submission" / "gpt_lab.ipynb"
    p.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, p)
    assert p.stat().st_size > mb * 10**6
    return p


def py_syntax_error(folder: Path) -> Path:
    nb = H.reference_nb()
    nb = H.substitute(HEAD, "        B, T, C = x.shape\n", "        B, T, C = x.shape)\n")(nb)
    p = folder / "submission" / "gpt_lab.py"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(H.as_module(nb))
    return p


TOKENIZER_ALWAYS_EQUAL = H.substitute("tokenizer_code", "        return [self.stoi[ch] for ch in s]\n", (
    "        class Liar:\n"
    "            def __eq__(self, other): return True\n"
    "            def __ne__(self, other): return False\n"
    "            def __bool__(self): return True\n"
    "            def __hash__(self): return 0\n"
    "            def __len__(self): return len(s)\n"
    "            def __iter__(self): return iter(range(len(s)))\n"
    "        return Liar()\n"))


LYING_TENSOR = d("""
    class LyingTensor(torch.Tensor):
        def __eq__(self, other): return True
        def __ne__(self, other): return False
        def __bool__(self): return True
        def allclose(self, *a, **k): return True
        def equal(self, *a, **k): return True
        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            if func in (torch.equal, torch.allclose, torch.Tensor.__eq__, torch.Tensor.equal, torch.isclose):
                return True
            return super().__torch_function__(func, types, args, kwargs or {})
""")


# -- the bank -------------------------------------------------------------------------------------

CASES: list[Case] = [
    # baselines: what honest code earns, against which the attacks are measured
    Case("reference", "baseline", "the reference untouched: full marks"),
    Case("reference_as_module", "baseline", "the reference's code cells as a .py module", module=True),
    Case("honest_head_zeros", "baseline", "Head.forward returns zeros: what the wrong Head of the patch cases earns",
         edits=(ZEROS_HEAD,), expect={"head": HEAD_ZEROS}),
    Case("honest_head_raises", "baseline", "Head.forward raises: what a Head that never answers earns",
         edits=(CRASH_HEAD,), expect={"head": HEAD_DEAD}),

    # infinite loops and slow cells
    Case("hang_at_load", "hang", "a cell that loops forever at load time is dropped after its limit",
         edits=(H.after_imports("while True:\n    pass\n"),), budget_s=110),
    Case("hang_at_load_alarm_blocked", "hang", "a cell that blocks SIGALRM and sleeps: the hard kill",
         edits=(H.after_imports(d("""
             import signal, time
             signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
             signal.signal(signal.SIGALRM, signal.SIG_IGN)
             time.sleep(10_000)
         """)),), budget_s=110),
    Case("hang_head_forward", "hang", "Head.forward loops forever: head keeps only its structure check",
         edits=(head_forward("while True:\n    pass"),), expect={"head": HEAD_DEAD}, budget_s=240),
    Case("hang_generate", "hang", "GPTLanguageModel.generate loops forever",
         edits=(generate_prelude("while True:\n    pass"),), expect={"generate": ZERO}, budget_s=150),
    Case("slow_train_alarm_ignored", "hang", "train ignores SIGALRM and sleeps: killed, worker restarted",
         edits=(train_prelude(d("""
             import signal, time
             signal.signal(signal.SIGALRM, signal.SIG_IGN)
             time.sleep(10_000)
         """)),), expect={"train": ZERO}, budget_s=150),

    # resources
    Case("memory_bomb_torch_at_load", "resources", "torch.empty(40 GiB) at import fails on the memory limit",
         edits=(H.after_imports("bomb = torch.empty(40 * 2**30, dtype=torch.uint8)\nbomb.fill_(1)\n"),)),
    Case("memory_bomb_list_at_load", "resources", "a Python list of 10**10 items at import",
         edits=(H.after_imports("bomb = [None] * (10**10)\nmore = [bytes(2**30) for _ in range(40)]\n"),)),
    Case("memory_bomb_in_train", "resources", "train allocates 40 GiB",
         edits=(train_prelude("bomb = torch.ones(40 * 2**30, dtype=torch.uint8)"),), expect={"train": ZERO}),
    Case("fork_bomb_at_load", "resources", "500 forked sleepers at import: killed past the process limit",
         edits=(H.after_imports(FORK_BOMB),), budget_s=110),
    Case("child_left_running", "resources", "a sleeping child (own session) started at import and left behind",
         edits=(H.after_imports(d(f"""
             import subprocess, sys
             subprocess.Popen(["sleep", "1013"])
             subprocess.Popen([sys.executable, "-c", "import os, time; os.setsid(); time.sleep(1013)", "{H.STRAY_MARK}"],
                              start_new_session=True)
         """)),)),
    Case("segfault_at_load", "resources", "ctypes.string_at(0) at import: the cell is dropped, the rest graded",
         edits=(H.after_imports("import ctypes\nctypes.string_at(0)\n"),), budget_s=100),
    Case("segfault_in_head_forward", "resources", "Head.forward segfaults: worker restarted for every check",
         edits=(head_forward("import ctypes\nctypes.string_at(0)"),), expect={"head": HEAD_DEAD}, budget_s=200),

    # exits and BaseExceptions
    Case("exits_at_load", "exit", "sys.exit, KeyboardInterrupt, SystemExit, BaseException, os._exit at import",
         edits=tuple(H.after_imports(s) for s in (
             "import os\nos._exit(0)\n", "raise BaseException('stop')\n", "raise SystemExit(0)\n",
             "raise KeyboardInterrupt\n", "import sys\nsys.exit(0)\n")), budget_s=100),
    Case("os_exit_in_head_forward", "exit", "os._exit(0) inside Head.forward",
         edits=(head_forward("import os\nos._exit(0)"),), expect={"head": HEAD_DEAD}, budget_s=200),
    Case("base_exceptions_in_calls", "exit",
         "KeyboardInterrupt in Head.forward, SystemExit in generate, BaseException in train, sys.exit(0) in get_batch",
         edits=(head_forward("raise KeyboardInterrupt"), generate_prelude("raise SystemExit(0)"),
                train_prelude("raise BaseException('stop')"),
                H.substitute("get_batch_code", "    ix = torch.randint", "    import sys\n    sys.exit(0)\n    ix = torch.randint")),
         expect={"head": HEAD_DEAD, "generate": ZERO, "train": ZERO, "get_batch": ZERO}),

    # monkeypatching at import
    Case("patch_torch_and_grader_wrong_head", "monkeypatch",
         "allclose/equal/assert_close/isfinite, pytest, autograder.checks.verdicts/runtime/protocol patched; Head returns zeros",
         edits=(H.after_imports(PATCH_TORCH_AND_GRADER), ZEROS_HEAD),
         expect={"head": HEAD_ZEROS, "tokenizer": TOKENIZER_FORGED_NONE}),
    Case("patch_torch_and_grader_reference", "monkeypatch",
         "the same patches over the reference: full marks, but for the one answer the patch itself forges",
         edits=(H.after_imports(PATCH_TORCH_AND_GRADER),), expect={"tokenizer": TOKENIZER_FORGED_NONE}),
    Case("patch_builtins_wrong_head", "monkeypatch", "isinstance / len lie; Head returns zeros",
         edits=(H.after_imports(PATCH_BUILTINS), ZEROS_HEAD),
         expect={"head": HEAD_ZEROS, "tokenizer": TOKENIZER_OWN_ISINSTANCE}),
    Case("patch_builtins_reference", "monkeypatch",
         "isinstance / len lie over the reference: full marks but for the round trip its own isinstance breaks",
         edits=(H.after_imports(PATCH_BUILTINS),), expect={"tokenizer": TOKENIZER_OWN_ISINSTANCE}),
    Case("patch_manual_seed_wrong_get_batch", "monkeypatch",
         "torch.manual_seed always seeds 0; get_batch always starts at 0",
         edits=(H.after_imports(PATCH_MANUAL_SEED),
                H.substitute("get_batch_code", "    ix = torch.randint(len(data) - block_size, (batch_size,))",
                             "    ix = torch.zeros(batch_size, dtype=torch.long)")),
         expect={"get_batch": Only("windows and shifted targets")}),
    Case("patch_manual_seed_reference", "monkeypatch", "torch.manual_seed always seeds 0, over the reference: full marks",
         edits=(H.after_imports(PATCH_MANUAL_SEED),)),

    # return values that lie
    Case("lying_tensor_subclass", "lies", "Head returns zeros as a Tensor subclass whose ==, bool, equal, allclose say yes",
         edits=(H.after_imports(LYING_TENSOR), head_forward("out = torch.zeros_like(out).as_subclass(LyingTensor)")),
         expect={"head": HEAD_ZEROS}),
    Case("always_equal_object", "lies", "encode returns an object equal to everything",
         edits=(TOKENIZER_ALWAYS_EQUAL,), expect={"tokenizer": Only("vocabulary sorted")}),
    Case("nan_head", "lies", "Head returns NaN", edits=(head_forward("out = torch.full_like(out, float('nan'))"),),
         expect={"head": HEAD_DEAD}),
    Case("inf_logits", "lies", "GPT logits are +inf", edits=(gpt_logits("torch.full_like(logits, float('inf'))"),),
         expect={"gpt": GPT_WRONG_LOGITS}),
    Case("float64_logits", "lies", "GPT logits as float64 with the right values: accepted",
         edits=(gpt_logits("logits.double()"),)),
    Case("int_logits", "lies", "GPT logits cast to int64", edits=(gpt_logits("logits.long()"),), expect={"gpt": GPT_WRONG_LOGITS}),
    Case("meta_device_head", "lies", "Head returns its output on the meta device (no values)",
         edits=(head_forward("out = out.to('meta')"),), expect={"head": HEAD_DEAD}),
    Case("noncontiguous_aliased", "lies",
         "non-contiguous Head output, aliased logits and a generate returning a view of a buffer it later mutates",
         edits=(head_forward("out = out.transpose(0, 1).contiguous().transpose(0, 1)"),
                gpt_logits("logits.transpose(0, 1).contiguous().transpose(0, 1)[:]"),
                H.substitute("gpt_code", "            idx = torch.cat((idx, idx_next), dim=1)  # (B, T+1)\n        return idx\n",
                             "            idx = torch.cat((idx, idx_next), dim=1)  # (B, T+1)\n"
                             "        buf = getattr(self, '_buf', None)\n"
                             "        if buf is not None:\n            buf.fill_(0)  # mutate what the last call returned\n"
                             "        self._buf = torch.zeros(idx.shape[0], idx.shape[1] + 16, dtype=idx.dtype)\n"
                             "        self._buf[:, :idx.shape[1]] = idx\n"
                             "        return self._buf[:, :idx.shape[1]]\n"))),
    Case("lists_instead_of_tensors", "lies", "get_batch returns lists of ints",
         edits=(H.substitute("get_batch_code", "    return x, y\n", "    return x.tolist(), y.tolist()\n"),),
         expect={"get_batch": ZERO}),

    # fake output, forged results, vandalism
    Case("fake_output", "forgery", "fake pytest lines, score table and JSON on stdout/stderr; Head returns zeros",
         edits=(H.after_imports(FAKE_OUTPUT), head_forward(FAKE_OUTPUT + "out = torch.zeros_like(out)")),
         expect={"head": HEAD_ZEROS}),
    Case("forge_results_json", "forgery",
         "writes forged results at the --grade-json path, from a surviving child and at exit; Head returns zeros",
         context=forge_context, source_of=forge_edits, expect={"head": HEAD_ZEROS}, after=forged_file_is_gone),
    Case("vandalise_repo", "forgery", "deletes / edits / chmods repository files, the working directory, git",
         edits=(H.after_imports(VANDAL),), after=submission_unchanged),
    Case("write_outside_sandbox", "forgery",
         "creates files in the stdlib, the checkout's parent folder, HOME, /tmp, the repo, the submission and results folders",
         context=outside_markers, source_of=write_markers_edits, after=no_markers),

    # reading the reference or the hidden checks
    Case("leak_reference_disk_env_proc", "leak",
         "reads solutions/, autograder/checks/hidden/, env vars, /proc/*, sys.modules for the quiz answers",
         context=wrong_quiz_context, source_of=leak_edits(LEAK_PROBE), expect={"quiz": QUIZ_WRONG_ONLY}),
    Case("leak_reference_git_objects", "leak", "reads the reference from the repository's .git objects (zlib)",
         context=wrong_quiz_context, source_of=leak_edits(LEAK_GIT), expect={"quiz": QUIZ_WRONG_ONLY}),

    # detecting the grading run
    Case("detect_grading_env", "detection",
         "Head returns zeros when NBGRADER_EXECUTION / PYTEST_CURRENT_TEST / pytest in sys.modules say 'graded'",
         edits=(head_forward(d("""
             import os, sys
             if (os.environ.get("NBGRADER_EXECUTION") or "PYTEST_CURRENT_TEST" in os.environ
                     or "pytest" in sys.modules or "_pytest" in sys.modules):
                 out = torch.zeros_like(out)
         """)),)),
    Case("detect_grader_modules", "detection", "Head returns zeros when autograder is in sys.modules (it is)",
         edits=(head_forward(d("""
             import sys
             if any(m.startswith("autograder") for m in sys.modules):
                 out = torch.zeros_like(out)
         """)),), expect={"head": HEAD_ZEROS}),

    # malformed submissions
    Case("not_json", "malformed", "a .ipynb that is not JSON", raw=raw_file("gpt_lab.ipynb", "this is not json {"), base=ZERO),
    Case("json_not_notebook", "malformed", "JSON that is not a notebook",
         raw=raw_file("gpt_lab.ipynb", json.dumps({"hello": [1, 2, 3]})), base=ZERO),
    Case("empty_notebook", "malformed", "a notebook without cells",
         raw=raw_file("gpt_lab.ipynb", json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})),
         base=ZERO),
    Case("binary_file", "malformed", "random bytes", raw=raw_file("gpt_lab.ipynb", bytes(range(256)) * 64), base=ZERO),
    Case("missing_path", "malformed", "a path that does not exist", raw=missing_path, base=ZERO),
    Case("syntax_error_in_head_cell", "malformed", "Head's cell does not compile; the other parts are graded",
         edits=(H.substitute(HEAD, "        B, T, C = x.shape\n", "        B, T, C = x.shape)\n"),), expect={"head": ZERO}),
    Case("syntax_error_in_py_module", "malformed", "a .py module whose Head cell does not compile",
         raw=py_syntax_error, expect={"head": ZERO}),
    Case("wrong_kinds_and_missing_names", "malformed",
         "Head is a function, train is a class, quiz_answers is a list, estimate_loss is missing",
         edits=(H.append_to_cell(HEAD, "def Head(*args, **kwargs):\n    return None\n"),
                H.append_to_cell("train_code", "class train:\n    pass\n"),
                H.replace_cell("quiz_code", "quiz_answers = ['b', 'c', 'a', 'd']\n"),
                H.replace_cell("estimate_loss_code", "pass\n")),
         expect={"head": ZERO, "train": ZERO, "quiz": ZERO, "estimate_loss": ZERO}),
    Case("huge_notebook_50mb", "malformed", "the reference with a 50 MB output blob", raw=huge_notebook, budget_s=90),
]

BY_ID = {c.id: c for c in CASES}
assert len(BY_ID) == len(CASES), "duplicate case ids"


# -- issue 13: always a report; bounded time, memory and disk; one locator; deaths; exact points ---------

ANY = "any"  # the part's score is not what the case is about (it depends on timing): not compared
BELOW = "below"  # strictly less than the part's full points


def nb_json() -> dict:
    """The reference notebook as plain JSON data (outputs cleared)."""
    import nbformat

    return json.loads(nbformat.writes(H.reference_nb()))


def json_notebook(change: Callable[[dict], object], name: str = "gpt_lab.ipynb"):
    """A submission: the reference's JSON changed in place by ``change`` and written as is (no nbformat
    validation on the way, so invalid notebooks stay invalid)."""
    def write(folder: Path) -> Path:
        data = nb_json()
        data = change(data) or data
        p = folder / "submission" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(data))
        return p
    return write


def _code_cells(data: dict) -> list[dict]:
    return [c for c in data["cells"] if c.get("cell_type") == "code"]


def _solution_cells(data: dict) -> list[dict]:
    return [c for c in _code_cells(data) if str(((c.get("metadata") or {}).get("nbgrader") or {}).get("grade_id", "")).endswith("_code")]


def invalid_for_nbformat(data: dict) -> None:
    # fails nbformat.validate: no outputs / execution_count, unknown keys, a string execution_count
    for c in _code_cells(data):
        c.pop("outputs", None)
        c["execution_count"] = "seven"
        c["unknown_field"] = {"x": 1}
    data["nbformat_minor"] = "five"
    data["extra"] = [1, 2, 3]


def metadata_is_list(data: dict) -> None:
    data["metadata"] = ["not", "a", "dict"]


def cell_metadata_is_list(data: dict) -> None:
    for c in _solution_cells(data):
        c["metadata"] = ["solution", True]


def tags_not_strings(data: dict) -> None:
    for c in _solution_cells(data):
        c.setdefault("metadata", {})["tags"] = [1, None, {"x": 2}]
    data["metadata"]["nbgrader"] = "not a dict"


def nbgrader_meta_is_list(data: dict) -> None:
    for c in _code_cells(data):
        md = c.get("metadata")
        if isinstance(md, dict) and isinstance(md.get("nbgrader"), dict) and md["nbgrader"].get("solution"):
            md["nbgrader"] = [md["nbgrader"]]


def source_as_lines(data: dict) -> None:
    for c in data["cells"]:
        if isinstance(c.get("source"), str):
            c["source"] = c["source"].splitlines(True)


def odd_sources(data: dict) -> None:
    # non-code cells holding code, a code cell whose source is a number, one whose source is a list of junk
    data["cells"].insert(0, {"cell_type": "code", "metadata": {}, "source": 12345, "outputs": []})
    data["cells"].insert(0, {"cell_type": "code", "metadata": {}, "source": [None, 3, ["x"]], "outputs": []})
    data["cells"].insert(0, {"cell_type": "raw", "metadata": {}, "source": "import os; os._exit(3)"})
    data["cells"].insert(0, "not a cell")


def as_nbformat3(data: dict) -> dict:
    cells = []
    for c in data["cells"]:
        if c["cell_type"] == "code":
            cells.append({"cell_type": "code", "input": c["source"], "language": "python", "outputs": [],
                          "metadata": c.get("metadata", {}), "collapsed": False})
        else:
            cells.append({"cell_type": "markdown", "source": c["source"], "metadata": {}})
    return {"metadata": {"name": ""}, "nbformat": 3, "nbformat_minor": 0, "worksheets": [{"cells": cells, "metadata": {}}]}


def v3_malformed(data: dict) -> dict:
    return {"nbformat": 3, "worksheets": ["junk", {"cells": "not a list"}, {"cells": [7, {"cell_type": "code"}]}]}


def deep_file(depth: int, inside_notebook: bool):
    def write(folder: Path) -> Path:
        p = folder / "submission" / "gpt_lab.ipynb"
        p.parent.mkdir(parents=True, exist_ok=True)
        nest = "[" * depth + "]" * depth
        if inside_notebook:
            data = nb_json()
            data["metadata"]["deep"] = "PLACEHOLDER"
            text = json.dumps(data).replace('"PLACEHOLDER"', nest)
        else:
            text = '{"cells": ' + nest + ', "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'
        p.write_text(text)
        return p
    return write


def many_json_values(folder: Path) -> Path:
    """A notebook whose output holds 3 million JSON numbers (16 MB of text)."""
    data = nb_json()
    head = next(c for c in _solution_cells(data) if c["metadata"]["nbgrader"]["grade_id"] == HEAD)
    text = json.dumps(data)
    p = folder / "submission" / "gpt_lab.ipynb"
    p.parent.mkdir(parents=True, exist_ok=True)
    blob = '{"output_type": "execute_result", "data": {"application/json": [' + ",".join(["0"] * 3_000_000) + \
        ']}, "metadata": {}, "execution_count": 1}'
    marker = json.dumps(head["source"])
    text = text.replace(marker, marker + ', "x_outputs": [' + blob + "]", 1)
    p.write_text(text)
    return p


def link_to(target_of: Callable[[Path], Path], name: str = "gpt_lab.ipynb", folder_level: bool = False):
    """A submission that is a symbolic link (``folder_level``: a folder holding one) to ``target_of(folder)``."""
    def write(folder: Path) -> Path:
        sub = folder / "submission" / "sub"
        sub.mkdir(parents=True, exist_ok=True)
        os.symlink(target_of(folder), sub / name)
        return sub if folder_level else sub / name
    return write


def reference_path(folder: Path) -> Path:
    return H.REFERENCE


def reference_copy(folder: Path) -> Path:
    import shutil

    (folder / "elsewhere").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(H.REFERENCE, folder / "elsewhere" / "gpt_lab.ipynb")
    return folder / "elsewhere" / "gpt_lab.ipynb"


def linked_folder(folder: Path) -> Path:
    """A folder whose only content is a link to a folder holding the reference."""
    target = reference_copy(folder).parent
    sub = folder / "submission" / "sub"
    sub.mkdir(parents=True, exist_ok=True)
    os.symlink(target, sub / "work")
    return sub


def hard_link(folder: Path) -> Path:
    sub = folder / "submission" / "sub"
    sub.mkdir(parents=True, exist_ok=True)
    copy = reference_copy(folder)
    os.link(copy, sub / "gpt_lab.ipynb")
    return sub / "gpt_lab.ipynb"


def fifo(folder_level: bool):
    def write(folder: Path) -> Path:
        sub = folder / "submission" / "sub"
        sub.mkdir(parents=True, exist_ok=True)
        os.mkfifo(sub / "gpt_lab.ipynb")
        return sub if folder_level else sub / "gpt_lab.ipynb"
    return write


def honest_next_to_link(folder: Path) -> Path:
    """An honest notebook and, next to it, a link named like a notebook: the whole folder is refused."""
    import nbformat

    sub = folder / "submission" / "sub"
    sub.mkdir(parents=True, exist_ok=True)
    nbformat.write(H.reference_nb(), sub / "gpt_lab.ipynb")
    os.symlink(H.REFERENCE, sub / "reference.ipynb")
    return sub


def exact_points(run: "H.Run") -> list[str]:
    """Per-check max_score values add up to each part's points exactly (at 4 decimals)."""
    from fractions import Fraction

    if not run.data:
        return []
    from autograder import parts

    rubric = parts.rubric()[0]
    sums: dict[str, Fraction] = {}
    for t in run.data["tests"]:
        sums[t["tags"][0]] = sums.get(t["tags"][0], Fraction(0)) + Fraction(str(t["max_score"]))
        if Fraction(str(t["max_score"])) * 10_000 != int(Fraction(str(t["max_score"])) * 10_000):
            return [f"{t['name']}: max_score {t['max_score']} has more than 4 decimals"]
    wrong = [f"{p}: {float(s)} != {float(rubric[p])}" for p, s in sums.items() if s != rubric.get(p)]
    total = sum((Fraction(str(t["score"])) for t in run.data["tests"]), Fraction(0))
    if Fraction(str(run.data["score"])) != total:
        wrong.append(f"score {run.data['score']} != the sum of the tests' scores {float(total)}")
    return [f"max_score values do not add up to the part's points: {wrong}"] if wrong else []


def tmp_untouched(paths: list[str]):
    def check(run: "H.Run") -> list[str]:
        found = [p for p in paths if os.path.exists(p)]
        for p in found:
            try:
                os.remove(p)
            except OSError:
                pass
        return [f"the submission wrote {found}"] if found else []
    return check


FILL_DISK = d("""
    import os
    written = 0
    try:
        for i in range(60):                       # 60 files of 50 MB: 3 GB, under the per-file limit each
            with open(f"fill{i}.bin", "wb") as f:
                for _ in range(50):
                    f.write(b"\\0" * 2**20)
                    written += 2**20
    except OSError as exc:
        print("stopped after", written >> 20, "MB:", exc)
""")

MANY_FILES = d("""
    import os
    os.makedirs("many", exist_ok=True)
    try:
        for i in range(150_000):
            open(f"many/{i}", "w").close()
    except OSError as exc:
        print("stopped:", exc)
""")

TRICKLE = d("""
    import os, stat, struct, time, signal
    signal.signal(signal.SIGALRM, signal.SIG_IGN)  # no soft limit: only the grader's deadline stops this
    for fd in sorted(int(f) for f in os.listdir("/proc/self/fd")):
        try:
            if stat.S_ISSOCK(os.fstat(fd).st_mode):
                os.write(fd, struct.pack("!Q", 100_000))
                for _ in range(100_000):
                    os.write(fd, b" ")
                    time.sleep(1.0)
        except OSError:
            pass
""")

FORGED_HEADER = d("""
    import os, stat, struct
    for fd in sorted(int(f) for f in os.listdir("/proc/self/fd")):
        try:
            if stat.S_ISSOCK(os.fstat(fd).st_mode):
                os.write(fd, struct.pack("!Q", 200 * 2**20))   # announces 200 MB, over the answer cap
                os.write(fd, b"[" * 65536)
        except OSError:
            pass
""")

DEEP_ANSWER = d("""
    import os, stat, struct
    for fd in sorted(int(f) for f in os.listdir("/proc/self/fd")):
        try:
            if stat.S_ISSOCK(os.fstat(fd).st_mode):
                body = b"[" * 200_000 + b"]" * 200_000   # valid JSON, 400 KB, nested 200,000 deep
                os.write(fd, struct.pack("!Q", len(body)) + body)
        except OSError:
            pass
""")

KILL_ON_THIRD_CALL = d("""
    import os, builtins
    n = getattr(builtins, "_gptlab_adv_calls", 0) + 1
    builtins._gptlab_adv_calls = n
    if n == 3:
        os._exit(7)
""")

DELAYED_KILL = d("""
    import os, threading, builtins
    if not getattr(builtins, "_gptlab_adv_armed", False):
        builtins._gptlab_adv_armed = True
        threading.Timer(1.5, lambda: os._exit(9)).start()   # strikes during whatever check runs next
""")

SLOW_CELLS = tuple(H.after_imports(f"import time\ntime.sleep(7)  # slow cell {i}\n") for i in range(4))


def magic_heavy_cell(magics: int, lines: int) -> str:
    return "\n".join("%time _ = 1" for _ in range(magics)) + "\n" + "\n".join(f"_v{i} = {i}" for i in range(lines)) + "\n"


CASES += [
    # always a report, whatever the notebook's JSON
    Case("nbformat_invalid", "report", "a notebook that fails nbformat validation (no outputs, string counts, extra keys)",
         raw=json_notebook(invalid_for_nbformat)),
    Case("notebook_metadata_list", "report", "the notebook's metadata is a list", raw=json_notebook(metadata_is_list)),
    Case("cell_metadata_list", "report", "every solution cell's metadata is a list", raw=json_notebook(cell_metadata_is_list)),
    Case("odd_tags_and_nbgrader_meta", "report", "tags that are not strings, notebook nbgrader metadata a string",
         raw=json_notebook(tags_not_strings)),
    Case("nbgrader_meta_list", "report", "nbgrader metadata of the solution cells is a list",
         raw=json_notebook(nbgrader_meta_is_list)),
    Case("sources_as_line_lists", "report", "sources stored as lists of lines (the other valid form)",
         raw=json_notebook(source_as_lines)),
    Case("odd_cells", "report", "a cell that is a string, sources that are a number or junk, code in a raw cell",
         raw=json_notebook(odd_sources)),
    Case("nbformat3_notebook", "report", "the reference as an nbformat 3 notebook (worksheets, input)",
         raw=json_notebook(as_nbformat3)),
    Case("nbformat3_malformed", "report", "an nbformat 3 notebook whose worksheets are junk", raw=json_notebook(v3_malformed),
         base=ZERO),
    Case("deep_nesting_100k", "report", "cells nested 100,000 levels deep (RecursionError in a parser)",
         raw=deep_file(100_000, inside_notebook=False), base=ZERO, budget_s=40),
    Case("deep_metadata_100k", "report", "the reference with a metadata value nested 100,000 deep",
         raw=deep_file(100_000, inside_notebook=True), base=ZERO, budget_s=40),
    Case("deep_nesting_500", "report", "the reference with a metadata value nested 500 deep: parsed, graded",
         raw=deep_file(500, inside_notebook=True)),
    Case("three_million_json_values", "report", "an output of 3 million JSON numbers: refused before parsing",
         raw=many_json_values, base=ZERO, budget_s=40),
    Case("json_top_level_list", "report", "a JSON list", raw=raw_file("gpt_lab.ipynb", "[1, 2, 3]"), base=ZERO, budget_s=40),
    Case("cells_not_a_list", "report", "cells is an object",
         raw=raw_file("gpt_lab.ipynb", json.dumps({"cells": {"a": 1}, "nbformat": 4})), base=ZERO, budget_s=40),
    Case("empty_file", "report", "an empty .ipynb", raw=raw_file("gpt_lab.ipynb", b""), base=ZERO, budget_s=40),
    Case("utf16_notebook", "report", "the notebook in UTF-16",
         raw=raw_file("gpt_lab.ipynb", json.dumps({"cells": [], "nbformat": 4}).encode("utf-16")), base=ZERO, budget_s=40),
    Case("unknown_suffix", "report", "a text file that is neither a notebook nor a module",
         raw=raw_file("gpt_lab.txt", "def Head(): pass\n"), base=ZERO, budget_s=40),

    # IPython input transforms run in the worker, under the cell's limit
    Case("looping_input_transformer", "transform",
         "a cell of 300 line magics over 3,000 lines (IPython's transformer takes ~25 s): dropped at its limit",
         edits=(H.after_imports(magic_heavy_cell(300, 3000)),), budget_s=110),
    Case("transformer_gives_up", "transform", "600 line magics: IPython's transformer raises; that cell alone fails",
         edits=(H.after_imports(magic_heavy_cell(600, 5)),)),
    Case("ipython_syntax_graded", "transform", "magics and shell lines in the solution cells still grade",
         edits=(H.append_to_cell("tokenizer_code", "%matplotlib inline\n!echo hello\nx_ = !ls\n%time _ = 1\n"),
                H.append_to_cell(HEAD, "%who\n"))),
    Case("cell_magics", "transform", "a %%bash cell is skipped, a %%time cell runs",
         edits=(H.after_imports("%%bash\nexit 1\n"), H.after_imports("%%time\nimport os\n"))),

    # one wall-clock budget, deadline-bounded reads, a cap on answers
    Case("budget_spent_at_load", "time", "four 7 s cells with a 15 s budget: nothing graded, the run ends in time",
         edits=SLOW_CELLS, base=ZERO, budget_s=60, args=("--time-budget", "15")),
    Case("trickle_answer", "time", "Head.forward writes its answer one byte per second, ignoring SIGALRM",
         edits=(head_forward(TRICKLE),), expect={"head": HEAD_DEAD}, budget_s=240),
    Case("trickle_at_load", "time", "a cell trickles bytes into the grader's socket at load",
         edits=(H.after_imports(TRICKLE),), budget_s=110),
    Case("answer_60mb", "memory", "Head.forward returns a 60 MB tensor: refused, the grading process stays small",
         edits=(head_forward("out = torch.zeros(15_000_000)"),), expect={"head": HEAD_DEAD}, budget_s=120),
    Case("answer_forged_header", "memory", "Head.forward announces a 200 MB answer on the socket",
         edits=(head_forward(FORGED_HEADER),), expect={"head": HEAD_DEAD}, budget_s=150),
    Case("answer_deep_json", "memory", "Head.forward sends the grader a JSON answer nested 200,000 deep",
         edits=(head_forward(DEEP_ANSWER),), expect={"head": HEAD_DEAD}, budget_s=150),
    Case("answer_three_million_floats", "memory", "Head.forward returns a Python list of 3 million floats",
         edits=(head_forward("out = [0.5] * 3_000_000"),), expect={"head": HEAD_DEAD}, budget_s=120),

    # disk
    Case("disk_fill_at_load", "disk", "writes 3 GB at load: stopped at the quota, the rest graded",
         edits=(H.after_imports(FILL_DISK),), budget_s=110),
    Case("disk_fill_in_head_forward", "disk", "Head.forward writes 3 GB on its first call (errors ignored), answers right",
         edits=(head_forward("import builtins\nif not getattr(builtins, '_gptlab_adv_filled', False):\n"
                             "    builtins._gptlab_adv_filled = True\n" + textwrap.indent(FILL_DISK, "    ")),),
         budget_s=150),
    Case("many_files_at_load", "disk", "150,000 files at load", edits=(H.after_imports(MANY_FILES),), budget_s=120),
    Case("write_shm_and_tmp", "disk", "writes to /dev/shm, /tmp and /var/tmp",
         edits=(H.after_imports(d(f"""
             for p in ("/dev/shm/{H.STRAY_MARK}-shm", "/tmp/{H.STRAY_MARK}-tmp", "/var/tmp/{H.STRAY_MARK}-vtmp"):
                 try:
                     open(p, "w").write("x" * 1000)
                 except OSError as exc:
                     print("refused", p, exc)
         """)),),
         after=tmp_untouched([f"/dev/shm/{H.STRAY_MARK}-shm", f"/tmp/{H.STRAY_MARK}-tmp", f"/var/tmp/{H.STRAY_MARK}-vtmp"])),

    # one locator: links and special files refused
    Case("symlink_to_reference", "locator", "the submission is a symbolic link to solutions/gpt_lab.ipynb",
         raw=link_to(reference_path), base=ZERO, budget_s=40),
    Case("folder_with_symlink_to_reference", "locator", "a folder whose gpt_lab.ipynb links to the reference",
         raw=link_to(reference_path, folder_level=True), base=ZERO, budget_s=40),
    Case("linked_folder", "locator", "a folder holding only a link to a folder with the reference", raw=linked_folder,
         base=ZERO, budget_s=40),
    Case("hard_link", "locator", "the submission is a hard link (another name of a file)", raw=hard_link, base=ZERO,
         budget_s=40),
    Case("fifo_submission", "locator", "the submission is a FIFO (a read would block forever)", raw=fifo(False),
         base=ZERO, budget_s=40),
    Case("fifo_in_folder", "locator", "a folder whose gpt_lab.ipynb is a FIFO", raw=fifo(True), base=ZERO, budget_s=40),
    Case("symlink_to_dev_zero", "locator", "a link to /dev/zero (a read never ends)", raw=link_to(lambda f: Path("/dev/zero")),
         base=ZERO, budget_s=40),
    Case("dangling_symlink", "locator", "a link to nothing", raw=link_to(lambda f: f / "nothing.ipynb"), base=ZERO, budget_s=40),
    Case("py_symlink", "locator", "a .py module that is a link", raw=link_to(reference_path, name="gpt_lab.py"),
         base=ZERO, budget_s=40),
    Case("honest_notebook_next_to_link", "locator", "an honest notebook next to a link named like a notebook",
         raw=honest_next_to_link, base=ZERO, budget_s=40),

    # worker deaths: charged to the code that causes them, the rest graded in a fresh worker
    Case("kill_on_third_head_forward", "death", "Head.forward ends the process on its third call in a process",
         edits=(head_forward(KILL_ON_THIRD_CALL),), expect={"head": BELOW}, budget_s=200),
    Case("delayed_kill_from_head", "death",
         "Head.forward arms a timer that ends the process 1.5 s later, during another part's check",
         edits=(head_forward(DELAYED_KILL),), expect={"head": ANY}, budget_s=240),
    Case("fork_bomb_in_head_forward", "death", "Head.forward forks 500 sleepers",
         edits=(head_forward(FORK_BOMB.replace("if os.getpid() == 1:", "if True:")),), expect={"head": HEAD_DEAD},
         budget_s=200),

    Case("huge_notebook_95mb", "memory", "the reference with a 95 MB output (just under the 100 MB cap): graded",
         raw=lambda folder: huge_notebook(folder, 95), budget_s=110),

    # the grading process's own memory cap is not the worker's
    Case("worker_uses_1_6gb", "memory", "Head.forward's first call fills a 1.6 GB tensor (the worker's limit is 6 GiB)",
         edits=(head_forward("import builtins\nif not getattr(builtins, '_gptlab_adv_big', False):\n"
                             "    builtins._gptlab_adv_big = True\n    _big = torch.ones(400_000_000)\n"
                             "    assert float(_big[-1]) == 1.0\n    del _big"),), budget_s=120),

    # exact points
    Case("exact_points_partial", "points", "Head returns zeros: shares add up exactly, 4 decimals",
         edits=(ZEROS_HEAD,), expect={"head": HEAD_ZEROS}, after=exact_points),
    Case("exact_points_full", "points", "the reference as a .py module: 6.5 of 6.5 exactly", module=True,
         after=exact_points),
]


# -- issue 23: the worker sees nothing of the host and cannot outgrow its share ---------------------------
# Each payload runs at load and records in ``builtins._gptlab_adv_learned`` whatever it got that a confined
# worker must not get; Head.forward returns zeros when anything was recorded. So each case expects full
# marks, and loses part head the moment its defence is gone (tests/test_confinement.py shows that, with
# the defence switched off).

LEARNED_HEAD = head_forward("""
    import builtins
    if getattr(builtins, "_gptlab_adv_learned", None):
        out = torch.zeros_like(out)
""")

PROBE_HOST = d("""
    import builtins, os, sys
    learned = builtins._gptlab_adv_learned = []
    # what the worker may see: its own folder and the Python it runs on (and the folders on the way there)
    roots = {os.path.realpath(p) for p in (os.getcwd(), sys.prefix, sys.base_prefix, *sys.path) if p}
    def allowed(path):
        return any(path == r or path.startswith(r + "/") or r.startswith(path + "/") for r in roots)
    for top in ("/tmp", "/var/tmp", "/run", "/var/run", "/home", "/root", "/srv", "/mnt", "/media", "/var/lib"):
        for folder, dirs, files in os.walk(top):
            dirs[:] = [x for x in dirs if not any(os.path.join(folder, x) == r or os.path.join(folder, x).startswith(r + "/") for r in roots)]
            learned += [os.path.join(folder, n) for n in dirs + files if not allowed(os.path.join(folder, n))]
            if len(learned) > 200:
                break
    for path in ("/etc/shadow", "/etc/gshadow", "/etc/sudoers", "/root/.bash_history", "/etc/hostname"):
        try:
            open(path, "rb").read(10)
            learned.append(path)
        except OSError:
            pass
    print("learned", len(learned), learned[:10])
""")

PROBE_SOCKETS = d("""
    import builtins, os, socket, stat
    learned = builtins._gptlab_adv_learned = []
    for top in ("/run", "/var/run", "/tmp", "/var/tmp", "/dev", "/home", "/root", "/var/lib"):
        for folder, dirs, files in os.walk(top):
            for name in files:
                path = os.path.join(folder, name)
                try:
                    if stat.S_ISSOCK(os.lstat(path).st_mode):
                        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                        s.settimeout(1)
                        s.connect(path)
                        learned.append(path)
                        s.close()
                except OSError:
                    pass
    for name in ("\\0/tmp/.X11-unix/X0", "\\0/org/freedesktop/systemd1/notify", "\\0gptlab-adv-abstract"):
        try:
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(1)
            s.connect(name)
            learned.append(repr(name))
        except OSError:
            pass
    print("connected", learned)
""")

THREAD_BOMB = d("""
    import builtins, threading
    threading.stack_size(65536)
    stop, started = threading.Event(), 0
    try:
        for _ in range(3000):
            threading.Thread(target=stop.wait, daemon=True).start()
            started += 1
    except RuntimeError:
        pass
    stop.set()
    print("threads started", started)
    builtins._gptlab_adv_learned = started >= 1000
""")

MEMORY_ACROSS_CHILDREN = d("""
    import builtins, os, time
    # three children of 2.3 GB each: each under the worker's 6 GiB per process, 6.9 GB together. Each holds
    # its memory once it has it (a child that exits early would free its share for the next one): what
    # counts is what the children still alive hold together at the end
    kids = []
    for i in range(3):
        pid = os.fork()
        if pid == 0:
            try:
                chunks = []
                for k in range(23):
                    chunks.append(bytearray(b"x") * (100 << 20))
                    with open(f"gptlab-adv-mem-{i}", "w") as f:
                        f.write(str(k + 1))
                time.sleep(60)
            finally:
                os._exit(0)
        kids.append(pid)

    def held(i):
        try:
            return int(open(f"gptlab-adv-mem-{i}").read() or 0)
        except (OSError, ValueError):
            return 0

    dead = set()
    end = time.monotonic() + 14
    while time.monotonic() < end:
        for i, k in enumerate(kids):
            if i not in dead and os.waitpid(k, os.WNOHANG) != (0, 0):
                dead.add(i)  # stopped (the memory cap's OOM kill): it holds nothing now
        if all(i in dead or held(i) == 23 for i in range(3)):
            break
        time.sleep(0.2)
    for i, k in enumerate(kids):  # the last word: who is still alive, holding its memory
        if i not in dead and os.waitpid(k, os.WNOHANG) != (0, 0):
            dead.add(i)
    got = sum(held(i) for i in range(3) if i not in dead)
    for k in kids:
        try:
            os.kill(k, 9)
        except OSError:
            pass
    print("held together (100 MB chunks):", got)
    builtins._gptlab_adv_learned = got * 100 > 6144
""")

PRIVILEGED_CALLS = d("""
    import builtins, ctypes, ctypes.util, os
    libc = ctypes.CDLL(None, use_errno=True)
    learned = builtins._gptlab_adv_learned = []
    try:
        sc = ctypes.CDLL(ctypes.util.find_library("seccomp") or "libseccomp.so.2")
        nr = lambda name: sc.seccomp_syscall_resolve_name(name.encode())
    except OSError:
        nr = {"add_key": 248, "keyctl": 250, "bpf": 321, "perf_event_open": 298}.get
    def in_child(fn):
        pid = os.fork()
        if pid == 0:
            try:
                os._exit(0 if fn() == 0 else 3)
            except BaseException:
                os._exit(4)
        return os.waitpid(pid, 0)[1] >> 8 == 0
    attempts = {
        "root": lambda: os.geteuid(),
        "add_key": lambda: 0 if libc.syscall(nr("add_key"), b"user", b"gptlab-adv-key", b"left for the next", 17, -3) > 0 else -1,
        "unshare user namespace": lambda: libc.unshare(0x10000000),
        "unshare mount namespace": lambda: libc.unshare(0x00020000),
        "ptrace": lambda: libc.ptrace(0, 0, None, None),
        "mount": lambda: libc.mount(b"none", b"/tmp", b"tmpfs", 0, None),
        "bpf": lambda: 0 if libc.syscall(nr("bpf"), 0, None, 0) >= 0 else -1,
        "perf_event_open": lambda: 0 if libc.syscall(nr("perf_event_open"), None, 0, -1, -1, 0) >= 0 else -1,
        "chroot": lambda: libc.chroot(b"/tmp"),
    }
    for name, fn in attempts.items():
        if in_child(fn):
            learned.append(name)
    print("allowed:", learned)
""")


def sockets_context(folder: Path) -> dict:
    """A host socket the worker must not reach: listening, in the case's folder under /tmp."""
    import socket as _socket

    path = folder / "host.sock"
    listener = _socket.socket(_socket.AF_UNIX)
    listener.bind(str(path))
    listener.listen(16)
    listener.setblocking(False)
    _LISTENERS[str(path)] = listener
    return {"listener": str(path)}


_LISTENERS: dict = {}


def socket_untouched(run: "H.Run") -> list[str]:
    listener = _LISTENERS.pop(run.context["listener"], None)
    if listener is None:
        return []
    try:
        listener.accept()
        return [f"the submission connected to the host's socket {run.context['listener']}"]
    except (BlockingIOError, OSError):
        return []
    finally:
        listener.close()


CONFINEMENT_CASES = [
    Case("probe_host_files", "confinement",
         "lists /tmp (other runs' folders), /run, /home, /root; reads /etc/shadow: learns nothing",
         edits=(H.after_imports(PROBE_HOST), LEARNED_HEAD)),
    Case("connect_host_sockets", "confinement",
         "connects to every Unix socket it finds (a host one listening in /tmp) and abstract ones: none reached",
         edits=(H.after_imports(PROBE_SOCKETS), LEARNED_HEAD), context=sockets_context, after=socket_untouched),
    Case("thread_bomb_at_load", "confinement", "starts 3,000 threads (64 KiB stacks): capped with the processes",
         edits=(H.after_imports(THREAD_BOMB), LEARNED_HEAD)),
    Case("memory_across_children", "confinement",
         "three children of 2.3 GB each (6.9 GB, each under the per-process limit): never together past 6 GiB",
         edits=(H.after_imports(MEMORY_ACROSS_CHILDREN), LEARNED_HEAD), budget_s=120),
    Case("privileged_calls", "confinement",
         "root? add_key, unshare (user, mount), ptrace, mount, bpf, perf_event_open, chroot: all refused",
         edits=(H.after_imports(PRIVILEGED_CALLS), LEARNED_HEAD)),
]
CASES += CONFINEMENT_CASES

# Cases whose run may take past this long on a loaded 2-core machine (a hang, a kill and a reload, a
# replayed load) carry the ``slow_bank`` marker: CI runs them as a separate step (``-m slow_bank``),
# the rest (``-m "not slow_bank"``) within its 15 minutes.
SLOW_BUDGET_S = 110


def is_slow(case: Case) -> bool:
    return case.budget_s >= SLOW_BUDGET_S


BY_ID = {c.id: c for c in CASES}
assert len(BY_ID) == len(CASES), "duplicate case ids"
