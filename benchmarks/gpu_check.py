"""The CUDA path, checked end to end: grades on CPU and GPU compared, the lecture model trained.

    python benchmarks/gpu_check.py                 # on a machine with CUDA: the full check
    python benchmarks/gpu_check.py --device cpu    # the CPU fallback (what runs where no GPU is)
    benchmarks/gpu_check.sh [options]              # the same, its output also written to $OUT/gpu_check.log

With CUDA (``--device auto`` finds it):
1. pre-flight: can a process started like the grading worker (its environment, its address-space
   limit) use the GPU?
2. grading: the reference, the untouched student notebook and a few mutants of the reference
   (tests/bank/mutants.py) are each graded with ``pytest autograder --device cpu``, then
   ``--device cuda`` twice (the second for determinism on the GPU); every per-part score and every
   check's status must be the same in every run. A table is printed; any difference -> exit 1.
3. training: the lecture configuration (instructor/train.py, 10.8 M parameters, 5,000 steps) on the
   GPU: validation loss at each evaluation, ms per step, the loss reached and the time (the
   published figure is about 1.48), peak GPU memory (torch.cuda.max_memory_allocated); then a sample.
4. the time of each of these steps.

Without CUDA (the fallback): the grading runs are cpu then cpu again (still equality and
determinism), the training is the ``tiny`` configuration for a few steps, and the output says at
its top and bottom that no GPU was there.

``--swap NAME=OTHER`` grades OTHER in place of NAME in every run after the first: a self-test of
the comparison (the run must then fail). Exit status: 0 when every grade matched, 1 when one
differed or could not be read, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

REFERENCE = ROOT / "solutions" / "gpt_lab.ipynb"
ASSIGNMENT = ROOT / "assignment" / "gpt_lab.ipynb"
# One mutant for each part whose check runs tensors on the submission's device in a way that a
# device-placement bug or a GPU kernel could change: attention scale (head), positions (gpt),
# sampling (generate, the CUDA RNG), get_batch's RNG, eval mode (estimate_loss), the training loop.
DEFAULT_MUTANTS = ("head_scale_n_embd", "gpt_pos_all_zero", "gen_raw_logits", "gb_python_random",
                   "el_no_eval", "train_no_zero_grad")
WORKER_MEMORY_MB = 6144  # the grading worker's RLIMIT_AS (autograder/engine/worker_control.py, Worker.memory_mb)
PUBLISHED_LECTURE_VAL = 1.48  # /work/shared/notes/grading-facts.md: the lecture GPU configuration's best val loss


def banner(gpu: bool, device_name: str) -> str:
    if gpu:
        return f"GPU CHECK on {device_name}: grading cpu vs cuda, lecture training on cuda"
    return ("NO GPU HERE: CPU FALLBACK. Grading is compared cpu vs cpu and a tiny model is trained; "
            "the CUDA path is NOT checked by this run")


# -- submissions ---------------------------------------------------------------------------------


def build_submissions(names: list[str], folder: Path) -> dict[str, Path]:
    """name -> notebook path: 'reference', 'assignment', or a mutant id of tests/bank/mutants.py."""
    from tests.bank.mutants import ALL_MUTANTS
    from tests.conftest import read_reference, write_edit

    by_id = {m.id: m for m in ALL_MUTANTS}
    out: dict[str, Path] = {}
    reference = None
    for name in names:
        if name == "reference":
            out[name] = REFERENCE
        elif name == "assignment":
            out[name] = ASSIGNMENT
        elif name in by_id:
            reference = reference if reference is not None else read_reference()
            out[name] = write_edit(by_id[name], folder, reference)
        else:
            raise SystemExit(f"unknown submission {name!r}: 'reference', 'assignment' or a mutant id "
                             f"of tests/bank/mutants.py")
    return out


# -- grading -------------------------------------------------------------------------------------


@dataclasses.dataclass
class Grade:
    parts: dict[str, float]  # part -> score
    checks: dict[str, str]  # check name -> status
    messages: dict[str, str]  # part -> the first failing check's message
    error: str = ""  # the run produced no results.json
    seconds: float = 0.0


def grade(path: Path, device: str, out_json: Path, timeout: float) -> Grade:
    from autograder.engine.command import grader_command

    cmd = grader_command(path, out_json, reference=REFERENCE, device=device)
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        tail = (proc.stdout + proc.stderr)[-600:]
    except subprocess.TimeoutExpired:
        tail = f"grading ran past {timeout:g} s"
    seconds = time.perf_counter() - start
    try:
        data = json.loads(out_json.read_text())
    except (OSError, ValueError):
        return Grade({}, {}, {}, error=f"no results.json: {tail.strip()}", seconds=seconds)
    parts: dict[str, float] = {}
    checks: dict[str, str] = {}
    messages: dict[str, str] = {}
    for t in data.get("tests", []):
        part = (t.get("tags") or ["?"])[0]
        parts[part] = parts.get(part, 0.0) + float(t.get("score", 0.0))
        checks[t["name"]] = t.get("status", "?")
        if t.get("status") != "passed" and part not in messages:
            messages[part] = f"{t['name']}: {(str(t.get('output') or '').splitlines() or [''])[0]}"
    if device == "cuda" and "no GPU is available here" in str(data.get("output", "")):
        return Grade(parts, checks, messages, seconds=seconds,
                     error="the grader found no GPU and graded on the CPU (its --device cuda fallback)")
    return Grade(parts, checks, messages, seconds=seconds)


def same_score(a: float, b: float) -> bool:
    # the scores are sums of the same rubric fractions in the same order: any real difference is a
    # whole check's share (>= 0.01 points); 1e-9 only absorbs float summation noise
    return abs(a - b) <= 1e-9


def compare(grades: dict[str, list[Grade]], run_names: list[str]) -> tuple[list[str], list[str]]:
    """Print the table (one row per submission, one column per part); return (differences, parts)."""
    parts: list[str] = []
    for runs in grades.values():
        for g in runs:
            parts += [p for p in g.parts if p not in parts]
    diffs: list[str] = []
    width = max(12, *(len(n) for n in grades)) + 1
    cols = [max(len(p), 4 * len(run_names) + 3) + 1 for p in parts]  # room for 'a|b|c' in a cell
    header = f"{'submission':<{width}}" + "".join(f"{p:>{w}}" for p, w in zip(parts, cols)) + "  same"
    print(f"per-part scores; a cell 'a|b|...' lists the runs ({' | '.join(run_names)}) where they differ")
    print(header)
    print("-" * len(header))
    for name, runs in grades.items():
        cells, ok = [], True
        for run, g in zip(run_names, runs):
            if g.error:
                ok = False
                diffs.append(f"{name} [{run}]: {g.error}")
        for p in parts:
            values = [g.parts.get(p) for g in runs]
            if all(v is not None for v in values) and all(same_score(v, values[0]) for v in values):
                cells.append(f"{values[0]:.2f}")
            else:
                ok = False
                cells.append("|".join("-" if v is None else f"{v:.2f}" for v in values))
                detail = "; ".join(f"{run}: {'-' if v is None else f'{v:g}'} ({g.messages.get(p, 'all passed')})"
                                   for run, v, g in zip(run_names, values, runs))
                diffs.append(f"{name} / {p}: {detail}")
        first = runs[0].checks
        for run, g in zip(run_names[1:], runs[1:]):
            changed = sorted(c for c in set(first) | set(g.checks) if first.get(c) != g.checks.get(c))
            if changed and not g.error:
                ok = False
                diffs.append(f"{name}: checks whose status differs between {run_names[0]} and {run}: "
                             + ", ".join(f"{c} ({first.get(c, '-')} -> {g.checks.get(c, '-')})" for c in changed[:5])
                             + (f" (+{len(changed) - 5} more)" if len(changed) > 5 else ""))
        print(f"{name:<{width}}" + "".join(f"{c:>{w}}" for c, w in zip(cells, cols)) + ("  yes" if ok else "  NO"))
    return diffs, parts


def grade_all(subs: dict[str, Path], runs: list[str], swap: dict[str, Path], out: Path, jobs: int,
              timeout: float, timings: list) -> dict[str, list[Grade]]:
    grades: dict[str, list[Grade | None]] = {name: [None] * len(runs) for name in subs}
    for i, device in enumerate(runs):  # one device at a time: the runs of one device share the machine
        start = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = {}
            for name, path in subs.items():
                graded = swap.get(name, path) if i > 0 else path
                target = out / f"run{i}-{device}" / f"{name}.json"
                target.parent.mkdir(parents=True, exist_ok=True)
                futures[pool.submit(grade, graded, device, target, timeout)] = name
            for fut in concurrent.futures.as_completed(futures):
                grades[futures[fut]][i] = fut.result()
        seconds = time.perf_counter() - start
        timings.append((f"grading run {i + 1} ({device}, {len(subs)} submissions)", seconds))
        slowest = max(g[i].seconds for g in grades.values())
        print(f"grading run {i + 1} on {device}: {seconds:.1f} s ({len(subs)} submissions, {jobs} at a time; "
              f"slowest {slowest:.1f} s)", flush=True)
    return grades  # type: ignore[return-value]


# -- CUDA under the worker's limits ------------------------------------------------------------


def worker_env() -> dict:
    """The environment the grading worker gets (autograder/engine/worker_control.py, Worker.start): a short PATH,
    no LD_LIBRARY_PATH, so a CUDA driver found only through the caller's environment is not found."""
    env = {"PATH": "/usr/bin:/bin", "HOME": tempfile.gettempdir(), "TMPDIR": tempfile.gettempdir(),
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), "LANG": "C.UTF-8"}
    for key in ("GPTLAB_DATA", "CUDA_VISIBLE_DEVICES"):
        if key in os.environ:
            env[key] = os.environ[key]
    return env


def cuda_preflight() -> tuple[bool, str]:
    """Can a process started like the grading worker (its environment, ``python -I``, its RLIMIT_AS)
    create a CUDA tensor? CUDA reserves much virtual address space when it starts, and finds its
    driver through the environment. When it cannot, each condition is tried alone to say which one
    breaks it."""
    mem = WORKER_MEMORY_MB * 1024 * 1024

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))

    def attempt(env, preexec) -> str:
        code = "import torch; x = torch.ones(4, device='cuda'); print(float((x * 2).sum().cpu()))"
        try:
            proc = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True,
                                  timeout=120, env=env, preexec_fn=preexec, cwd=tempfile.gettempdir())
        except subprocess.TimeoutExpired:
            return "timed out after 120 s"
        if proc.returncode == 0 and proc.stdout.strip() == "8.0":
            return ""
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        return lines[-1] if lines else f"exit {proc.returncode}"

    as_worker = attempt(worker_env(), limit)
    if not as_worker:
        return True, "ok"
    found = [f"as the worker: {as_worker}"]
    for what, env, preexec in (("plain (this environment, no limit)", None, None),
                               ("the worker's environment alone", worker_env(), None),
                               (f"the {WORKER_MEMORY_MB} MiB limit alone", None, limit)):
        error = attempt(env, preexec)
        found.append(f"{what}: {error or 'ok'}")
    return False, "; ".join(found)


# -- training ------------------------------------------------------------------------------------


def train_and_sample(device: str, config: str, steps: int | None, eval_iters: int | None, sample_tokens: int,
                     timings: list) -> dict:
    import torch

    from data import load_text
    from instructor import train as T

    cfg = dataclasses.replace(T.PRESETS[config])
    if steps is not None:
        cfg.max_iters = steps
        cfg.eval_interval = min(cfg.eval_interval, max(1, steps))
    if eval_iters is not None:
        cfg.eval_iters = eval_iters
    ns = T.load_definitions(T.REFERENCE)
    text = load_text()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    print(f"training: config {config!r} ({cfg.n_layer} layers, n_embd {cfg.n_embd}, block {cfg.block_size}, "
          f"batch {cfg.batch_size}), {cfg.max_iters} steps, evaluation every {cfg.eval_interval} "
          f"({cfg.eval_iters} batches) on {device}", flush=True)
    print(f"{'step':>6} {'train s':>8} {'ms/step':>8} {'train':>7} {'val':>7}")
    last = [0, 0.0]

    def on_eval(step, seconds, tr, va):
        per_step = (seconds - last[1]) / (step - last[0]) * 1000 if step > last[0] else float("nan")
        print(f"{step:>6} {seconds:>8.1f} {per_step:>8.1f} {tr:>7.4f} {va:>7.4f}", flush=True)
        last[:] = [step, seconds]

    start = time.perf_counter()
    model, tok, evals = T.train(cfg, ns, text, device, on_eval=on_eval, progress=False)
    wall = time.perf_counter() - start
    timings.append((f"training ({config}, {cfg.max_iters} steps, evaluation included)", wall))
    step, trained_s, tr, va = evals[-1]
    n_params = sum(p.numel() for p in model.parameters())
    result = {"steps": step, "train_s": trained_s, "wall_s": wall, "train": tr, "val": va,
              "best_val": min(e[3] for e in evals), "params": n_params,
              "ms_per_step": trained_s / max(1, step) * 1000}
    if device == "cuda":
        result["peak_gpu_bytes"] = torch.cuda.max_memory_allocated()
    start = time.perf_counter()
    torch.manual_seed(1337)
    result["sample"] = T.sample(model, tok, "ROMEO:", sample_tokens, device=device)
    timings.append((f"sampling ({sample_tokens} tokens)", time.perf_counter() - start))
    return result


# -- main ----------------------------------------------------------------------------------------


def parse_swap(items: list[str], names: list[str], folder: Path) -> dict[str, Path]:
    swap = {}
    for item in items:
        name, sep, other = item.partition("=")
        if not sep or name not in names:
            raise SystemExit(f"--swap {item!r}: expected NAME=OTHER with NAME one of {', '.join(names)}")
        swap[name] = build_submissions([other], folder)[other]
    return swap


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto",
                        help="auto: cuda when torch sees a GPU, else the CPU fallback")
    parser.add_argument("--submissions", default=",".join(("reference", "assignment", *DEFAULT_MUTANTS)),
                        help="comma-separated: reference, assignment, mutant ids (default: %(default)s)")
    parser.add_argument("--swap", action="append", default=[], metavar="NAME=OTHER",
                        help="grade OTHER instead of NAME in the runs after the first (self-test: must fail)")
    parser.add_argument("--jobs", type=int, default=max(1, min(8, (os.cpu_count() or 2) // 2)),
                        help="gradings at a time (default: half the cores, at most 8)")
    parser.add_argument("--grade-timeout", type=float, default=600.0, help="seconds per grading run")
    parser.add_argument("--no-train", action="store_true", help="grading comparison only")
    parser.add_argument("--config", help="training preset (default: lecture on cuda, tiny on the fallback)")
    parser.add_argument("--train-steps", type=int, help="default: the preset's max_iters (lecture 5000), "
                                                         "20 on the fallback")
    parser.add_argument("--eval-iters", type=int, help="batches per evaluation (default: the preset's)")
    parser.add_argument("--sample-tokens", type=int, default=300)
    parser.add_argument("--out", type=Path, help="keep every results.json here (default: a temporary folder)")
    args = parser.parse_args(argv)

    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("--device cuda: no CUDA GPU is available here", file=sys.stderr)
        return 2
    gpu = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    device_name = torch.cuda.get_device_name(0) if gpu else "cpu"
    print("=" * 100)
    print(banner(gpu, device_name))
    print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, python {sys.version.split()[0]}")
    print("=" * 100, flush=True)

    started = time.perf_counter()
    timings: list[tuple[str, float]] = []
    diffs: list[str] = []
    notes: list[str] = []
    if gpu:
        t0 = time.perf_counter()
        ok, why = cuda_preflight()
        timings.append(("pre-flight: CUDA in a process started like the worker", time.perf_counter() - t0))
        print(f"pre-flight: CUDA in a process started like the grading worker (its environment, python -I, "
              f"RLIMIT_AS {WORKER_MEMORY_MB} MiB): {why}", flush=True)
        if not ok:
            notes.append(f"the CUDA pre-flight failed ({why}): the grading worker (autograder/engine/worker_control.py) "
                         "cannot use the GPU as it is started now")

    names = [n.strip() for n in args.submissions.split(",") if n.strip()]
    work = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="gpu-check-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        subs = build_submissions(names, work / "submissions")
        swap = parse_swap(args.swap, names, work / "submissions")
        runs = ["cpu", "cuda", "cuda"] if gpu else ["cpu", "cpu"]
        grades = grade_all(subs, runs, swap, work, max(1, args.jobs), args.grade_timeout, timings)
        run_names = [f"{d}#{i + 1}" for i, d in enumerate(runs)]
        diffs, _ = compare(grades, run_names)
    finally:
        if not args.out:
            shutil.rmtree(work, ignore_errors=True)
    print(f"grades identical across {' / '.join(run_names)}: {'yes' if not diffs else 'NO'}")
    for d in diffs:
        print(f"  DIFFERENCE {d}")
    sys.stdout.flush()

    if not args.no_train:
        config = args.config or ("lecture" if gpu else "tiny")
        steps = args.train_steps if args.train_steps is not None else (None if gpu else 20)
        r = train_and_sample("cuda" if gpu else "cpu", config, steps, args.eval_iters, args.sample_tokens, timings)
        print(f"training: {r['params']:,} parameters; {r['steps']} steps in {r['train_s']:.1f} s of training "
              f"({r['ms_per_step']:.1f} ms/step), {r['wall_s']:.1f} s with evaluation; "
              f"val loss reached {r['val']:.4f} (best {r['best_val']:.4f})"
              + (f"; published figure for the lecture configuration about {PUBLISHED_LECTURE_VAL}"
                 if config == "lecture" else ""))
        if gpu:
            print(f"peak GPU memory (torch.cuda.max_memory_allocated): {r['peak_gpu_bytes'] / 2**20:.1f} MiB")
        else:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"no GPU: peak resident memory of this process {peak:.0f} MiB")
        print("sample (prompt 'ROMEO:'):")
        print(r["sample"])

    print("time of each step:")
    for what, seconds in timings:
        print(f"  {seconds:8.1f} s  {what}")
    print(f"  {time.perf_counter() - started:8.1f} s  total")
    for note in notes:
        print(f"NOTE: {note}")
    print("=" * 100)
    verdict = "PASS: every grade identical" if not diffs else f"FAIL: {len(diffs)} difference(s) in the grades"
    print(f"{verdict}. " + banner(gpu, device_name))
    print("=" * 100)
    return 0 if not diffs else 1


if __name__ == "__main__":
    sys.exit(main())
