"""Helpers for writing checks: verdicts that say what was expected, what came back, and why.

A check is a plain function ``test_<part>_<property>(sub)`` (or ``(sub, ref)`` when it needs the
reference). It raises ``CheckFailed`` with a message for the student; ``SubmissionFailure``
(the submission's own code raised, hung or crashed) is turned into a message by the runner.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import torch
from hypothesis import HealthCheck, Phase, settings

from autograder.engine.submission import Obj, SubmissionFailure
from autograder.i18n import N_, check_name, tr, translate

# Derandomised: the same submission gets the same examples, so the same grade, on every run.
settings.register_profile(
    "grading",
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=12,
    print_blob=False,
    phases=(Phase.explicit, Phase.generate),  # no shrinking: each failing example may cost a time-out
    suppress_health_check=list(HealthCheck),
)
settings.load_profile("grading")

class CheckFailed(AssertionError):
    """The submission ran but did the wrong thing."""


def fail(message: str):
    raise CheckFailed(message)


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def _load_failures(sub) -> list:
    """The cells (or the module) of the submission that raised while loading."""
    report = getattr(sub, "report", None)
    cells = getattr(report, "cells", None) if report is not None else getattr(sub, "load_report", None)
    return [c for c in cells or [] if not getattr(c, "ok", True)]


def cell_label(sub, number: int) -> str:
    """A cell of the submission as a student finds it (what it defines, its section), or "cell N"."""
    for cell in getattr(getattr(sub, "program", None), "cells", None) or []:
        if cell.number == number:
            return cell.label
    return tr("cell {number}").format(number=number)


def _is_module(sub) -> bool:
    program = getattr(sub, "program", None)
    return getattr(getattr(program, "path", None), "suffix", "") == ".py"


def need(sub, name: str, kind: str = "class") -> None:
    """The submission defines ``name`` as a class / function."""
    kinds = sub.names()
    if name not in kinds:
        failed = _load_failures(sub)
        if _is_module(sub):
            cause = (f": the module stopped with {failed[0].error_type}: {failed[0].message}"
                     + (f"\n{failed[0].traceback}" if failed[0].traceback else "")) if failed else ""
            fail(tr("`{name}` is not defined by the module{cause}").format(name=name, cause=cause) if cause else
                 tr("`{name}` is not defined by the module: define it at module level, with this name")
                  .format(name=name))
        where = (tr(" ({cell} raised {kind}: {message})").format(cell=cell_label(sub, failed[0].number),
                                                              kind=failed[0].error_type, message=failed[0].message)
                 + their_lines(failed[0])) if failed else ""
        fail(tr("`{name}` is not defined: run its cell, and check the cells above it for "
               "errors{where}")
              .format(name=name, where=where))
    if kinds[name] != kind:
        fail(tr("`{name}` should be a {kind}, but it is a {actual}")
              .format(name=name, kind=kind, actual=kinds[name]))


# how a submission's code stopped without an answer (see explain): no probe runs after these
_STOPPED = ("Timeout", "ProcessDied", "ProtocolError", "OutputTooLarge", "Unsendable")


@contextmanager
def owned_by(sub, *causes):
    """One failure per cause. ``causes``: (owner, probe) pairs, where ``owner`` is the name of the
    check that reports a cause and ``probe(sub)`` says why that cause is present in ``sub`` (or
    ""). The body is a check's measurement; if it fails while an owner's cause is present, the
    check fails with "not measured: ..." naming the owner, never with the owner's message again.
    It still fails (a check that cannot measure never passes), so no submission earns more than
    without it. Owners never defer to the checks they own (no cycles)."""
    try:
        yield
    except (CheckFailed, SubmissionFailure) as exc:
        if isinstance(exc, SubmissionFailure) and (exc.not_implemented or exc.kind in _STOPPED):
            raise  # a stub, or code that hung or crashed: reported as it is, never run again to probe
        # each owner's probe runs once per submission (its verdict is the submission's, not this check's):
        # a submission whose every call is slow (a huge answer) pays for it once, not once per check
        known = sub.__dict__.setdefault("_gptlab_probes", {})
        for owner, probe in causes:
            key = (owner, probe)  # the same probe object: a module-level cause of a check module
            if key not in known:
                try:
                    known[key] = probe(sub)
                except (CheckFailed, SubmissionFailure):
                    known[key] = ""
            why = known[key]
            if why:
                fail(tr("not measured: {why}; the check '{owner}' reports the cause (fix it first)")
                     .format(why=translate(why), owner=check_name(owner)))
        raise


def fails(measure, why: str):
    """A probe for ``owned_by``: ``why`` when ``measure(sub)`` (an owner's own check) fails, else ""."""
    def probe(sub) -> str:
        try:
            measure(sub)
        except SubmissionFailure as exc:
            return "" if exc.not_implemented or exc.kind in _STOPPED else why
        except CheckFailed:
            return why
        return ""
    return probe


def tensor(value, what: str, shape=None, dtype=None, finite: bool = True) -> torch.Tensor:
    """``value`` must be a tensor of this shape and dtype (``None`` entries of ``shape`` are free)."""
    if isinstance(value, Obj) or not isinstance(value, torch.Tensor):
        kind = value.handle.type if isinstance(value, Obj) else type(value).__name__
        fail(tr("{what} should return a tensor, got a {got}").format(what=what, got=kind))
    if shape is not None:
        ok = len(value.shape) == len(shape) and all(e is None or e == g for e, g in zip(shape, value.shape))
        if not ok:
            want = "(" + ", ".join("*" if e is None else str(e) for e in shape) + ")"
            fail(tr("{what}: expected shape {expected}, got {got}")
                  .format(what=what, expected=want, got=tuple(value.shape)))
    if dtype is not None and value.dtype != dtype:
        fail(tr("{what}: expected dtype {expected}, got {got}")
              .format(what=what, expected=dtype, got=value.dtype))
    if finite and value.is_floating_point() and not torch.isfinite(value).all():
        fail(tr("{what}: the result holds NaN or infinite values").format(what=what))
    return value


def close(got: torch.Tensor, expected: torch.Tensor, what: str, atol: float, rtol: float = 0.0, hint: str = "") -> None:
    """Elementwise |got - expected| <= atol + rtol * |expected|, with the worst entry in the message."""
    got = tensor(got, what, shape=tuple(expected.shape))
    diff = (got.double() - expected.double()).abs()
    bound = atol + rtol * expected.double().abs()
    if not (diff <= bound).all():
        worst = int((diff - bound).argmax())
        index = tuple(int(i) for i in torch.unravel_index(torch.tensor(worst), expected.shape))
        message = (tr("{what}: at index {index} expected {expected:.6g}, got {got:.6g} (max abs difference {diff:.3g})")
                   .format(what=what, index=index, expected=expected.flatten()[worst].item(),
                           got=got.flatten()[worst].item(), diff=diff.max().item()))
        fail(message + (tr(". Hint: {hint}").format(hint=hint) if hint else ""))


def number(value, what: str) -> float:
    """A Python number (or a 0-d tensor) as a float."""
    if isinstance(value, torch.Tensor) and value.dim() == 0:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        fail(tr("{what} should be a number, got {got}")
              .format(what=what, got=type(value).__name__ if not isinstance(value, Obj) else value.handle.type))
    if not math.isfinite(value):
        fail(tr("{what} is {value}, not a finite number (look for a division by zero, a log of 0, or a "
               "learning rate so large that the values overflow)").format(what=what, value=value))
    return float(value)


def chi_square_p(observed: torch.Tensor, expected_probs: torch.Tensor) -> float:
    """p-value of Pearson's chi-square goodness-of-fit test (categories with expected count > 0)."""
    n = observed.sum()
    expected = expected_probs.double() * n
    keep = expected > 0
    if (observed[~keep] > 0).any():
        return 0.0
    stat = ((observed.double()[keep] - expected[keep]) ** 2 / expected[keep]).sum()
    dof = int(keep.sum()) - 1
    if dof <= 0:
        return 1.0
    return float(torch.special.gammaincc(torch.tensor(dof / 2.0, dtype=torch.float64), stat / 2.0))


def their_lines(exc: BaseException) -> str:
    """The submission's own failing lines (its cell, named by content, and the line), on lines of
    their own after a message; "" when the error did not pass through the submission's code."""
    where = getattr(exc, "traceback", "")
    return f"\n{where}" if where else ""


def not_implemented(exc: BaseException) -> bool:
    return isinstance(exc, SubmissionFailure) and exc.not_implemented


def explain(exc: BaseException) -> str:
    """The message a student reads for a check that did not pass."""
    if isinstance(exc, CheckFailed):
        return str(exc)
    if isinstance(exc, SubmissionFailure):
        if exc.not_implemented:
            return tr("not implemented yet ({what} raised NotImplementedError)").format(what=exc.what)
        if exc.kind == "Timeout":
            return tr("{what} {problem}: an infinite loop, or far too much work?").format(what=exc.what,
                                                                                        problem=exc.message)
        if exc.kind in ("ProcessDied", "ProtocolError", "OutputTooLarge", "Unsendable"):
            return f"{exc.what}: {exc.message}"
        text = tr("{what} raised {kind}: {message}").format(what=exc.what, kind=exc.kind, message=exc.message)
        hint = likely_cause(exc.what, exc.message)
        if hint:
            text += tr(". Hint: {hint}").format(hint=hint)
        return text + their_lines(exc)
    return tr("the check could not run ({kind}: {detail})").format(kind=type(exc).__name__, detail=str(exc)[:300])


# The commonest raw PyTorch errors of each part and their likely cause: (what was called, a piece of
# the error message, the hint). The first match wins; a message names one cause, where to look.
_CAUSES = (
    ("get_batch", "stack expects each tensor to be equal size",
     N_("a window ran past the end of the data: the starts must lie in 0 .. len(data) - block_size - 1, "
     "and torch.randint's upper bound is exclusive (look at the line that draws the starts)")),
    ("Head", "must match the size of tensor",
     N_("x has T <= block_size positions but the mask is (block_size, block_size): slice it to the first T rows "
     "and columns of self.tril (look at the masked_fill line of Head.forward)")),
    ("Head", "Expected size for first two dimensions of batch2 tensor",
     N_("the attention weights and the values disagree in length: both must cover the same T positions")),
    ("GPTLanguageModel", "must match the size of tensor",
     N_("the position embeddings must cover the T positions of idx: torch.arange(T), not torch.arange(self.block_size) "
     "(look at the line that computes pos_emb in GPTLanguageModel.forward)")),
    ("GPTLanguageModel", "index out of range in self",
     N_("a position index >= block_size reached position_embedding_table (or a token id >= vocab_size the "
     "token table): positions are torch.arange(T) with T = idx.shape[1]")),
    ("train", "does not require grad",
     N_("the loss was detached from the graph (.detach(), .item(), or computed under torch.no_grad()) before "
     "loss.backward(): call backward on the loss that model(x, y) returns")),
    ("", "Expected target size",
     N_("cross_entropy wants logits of shape (B*T, C) and targets of shape (B*T,): flatten both before the call "
     "(reshape)")),
    ("", "Expected input batch_size",
     N_("cross_entropy wants logits of shape (B*T, C) and targets of shape (B*T,): flatten both before the call "
     "(reshape)")),
    ("", "mat1 and mat2 shapes cannot be multiplied",
     N_("a Linear layer received vectors of another size than its in_features: check the sizes given to nn.Linear")),
)


def likely_cause(what: str, message: str) -> str:
    """The likely cause of a raw PyTorch error raised by the submission, or ""."""
    for called, piece, hint in _CAUSES:
        if what.startswith(called) and piece in message:
            return translate(hint)
    return ""


def transplant(student, reference, what: str) -> None:
    """Load the student's parameters into the reference's module (both ``Obj``), in the contract's
    terms: every parameter the contract names must be there with its shape; buffers (the causal
    mask) are the student's business (another name, non-persistent, none at all), so the
    reference keeps its own where the student's has none of that name. Messages name the
    student's attributes, never PyTorch's raw load_state_dict text."""
    got, want = student.state_dict(), reference.state_dict()
    is_param = lambda key: key.rsplit(".", 1)[-1] in ("weight", "bias")  # noqa: E731
    mapped = {}
    for key, value in want.items():
        if key in got:
            if tuple(got[key].shape) != tuple(value.shape):
                fail(tr("{what}.{key}: expected shape {expected}, got {got}")
                      .format(what=what, key=key, expected=tuple(value.shape), got=tuple(got[key].shape)))
            mapped[key] = got[key]
        elif is_param(key):
            parts = key.split(".")
            for i in range(1, len(parts)):  # name the outermost attribute that is missing
                prefix = ".".join(parts[:i])
                if not any(k.startswith(prefix + ".") for k in got):
                    fail(tr("{what} has no {prefix} (the contract's layout has it): check its name in "
                           "__init__")
                          .format(what=what, prefix=prefix))
            fail(tr("{what} has no parameter {key} (the contract's layout has it, shape {shape})")
                  .format(what=what, key=key, shape=tuple(value.shape)))
        else:
            mapped[key] = value
    extra = [k for k in got if k not in want and is_param(k)]
    expect(not extra, tr("{what} has parameters the contract does not define: {names}")
                       .format(what=what, names=', '.join(extra[:3])))
    reference.load_state_dict(mapped)
