"""The registry of the lab's parts (``parts.toml``) and the one discovery of a part's checks.

Read by every process that grades or reports (the grading run, the notebook's check cells, the
instructor's tools, the tests), so it imports nothing heavy: reading the registry never waits
for torch. The check modules are imported only by ``checks_of``.

    PARTS                 the part ids, in the notebook's order
    part(id)              a Part: title, points, bonus, names, parameters, grade_id, cell_points, modules
    parameters(name)      the contract's parameter names of a name or method ("Head", "Head.forward"), for messages
    rubric()              ({id: points}, {bonus ids}) for scoring
    hidden_counts()       {id: number of hidden checks}: checks/hidden_manifest.json, written by
                          ``python -m autograder.engine.hidden_count`` for handouts without hidden/
    check_part(module, name)  the part a function of a check module is a check of, or None
    checks_of(id, hidden) [(label, function, keyword arguments)]: the part's checks, parametrisations
                          expanded; pytest's collection (conftest) keeps exactly the same functions
    check_weight(id, fn, hidden)  a check's weight in its part ([parts.<id>.weights]; 1 by default)
"""

from __future__ import annotations

import functools
import importlib
import json
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

HERE = Path(__file__).resolve().parent
REGISTRY = HERE / "parts.toml"
CHECKS = HERE / "checks"
HIDDEN = CHECKS / "hidden"
HIDDEN_COUNTS = CHECKS / "hidden_manifest.json"


class RegistryError(ValueError):
    """parts.toml is not a valid registry."""


@dataclass(frozen=True)
class Part:
    id: str
    title: str
    points: Fraction
    bonus: bool
    names: tuple[str, ...]
    parameters: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (name or "Class.method", parameter names)
    weights: tuple[tuple[str, int], ...] = ()  # (check property or "hidden", weight); 1 when not declared

    def weight(self, function_name: str, hidden: bool = False) -> int:
        """A check's weight within its part: the registry's ``[parts.<id>.weights]`` entry for its
        property (``test_<id>_<property>``), or for ``hidden`` (every hidden check of the part, run
        here or pending), else 1. Each case of a parametrised check weighs this much."""
        key = "hidden" if hidden else function_name.removeprefix(f"test_{self.id}_")
        return dict(self.weights).get(key, 1)

    @property
    def grade_id(self) -> str:
        """The nbgrader grade id of the part's check cell."""
        return f"check_{self.id}"

    @property
    def cell_points(self) -> float:
        """The check cell's nbgrader points: a bonus part's score is extra credit, so its cell is worth 0."""
        return 0.0 if self.bonus else float(self.points)

    @property
    def visible_module(self) -> str:
        return f"autograder.checks.test_{self.id}"

    @property
    def hidden_module(self) -> str:
        return f"autograder.checks.hidden.test_{self.id}_hidden"


def read(path: Path | None = None) -> tuple[Part, ...]:
    """The parts declared in a registry file (default: autograder/parts.toml), validated."""
    with open(path or REGISTRY, "rb") as f:
        data = tomllib.load(f)
    table = data.get("parts")
    if not isinstance(table, dict) or not table:
        raise RegistryError("parts.toml declares no [parts.<id>] table")
    out = []
    for pid, spec in table.items():
        if not pid.isidentifier() or pid != pid.lower():
            raise RegistryError(f"part id {pid!r}: use a lower-case Python identifier")
        unknown = set(spec) - {"title", "points", "bonus", "names", "parameters", "weights"}
        if unknown:
            raise RegistryError(f"part {pid}: unknown keys {sorted(unknown)}")
        try:
            points = Fraction(str(spec["points"]))
        except (KeyError, ValueError) as exc:
            raise RegistryError(f"part {pid}: points must be a number ({exc})") from None
        if points < 0 or points * 10_000 != int(points * 10_000):
            raise RegistryError(f"part {pid}: points must be >= 0 with at most 4 decimals")
        names = spec.get("names", [])
        if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
            raise RegistryError(f"part {pid}: names must be a list of strings")
        params = spec.get("parameters", {})
        if not (isinstance(params, dict) and all(
                isinstance(v, list) and all(isinstance(a, str) and a.isidentifier() for a in v) for v in params.values())):
            raise RegistryError(f"part {pid}: parameters must map names to lists of parameter names")
        weights = spec.get("weights", {})
        if not (isinstance(weights, dict) and all(
                isinstance(k, str) and k.isidentifier() and type(v) is int and 1 <= v <= 1000
                for k, v in weights.items())):
            raise RegistryError(f"part {pid}: weights must map check properties to whole numbers 1..1000")
        out.append(Part(pid, str(spec.get("title", pid)), points, bool(spec.get("bonus", False)), tuple(names),
                        tuple((k, tuple(v)) for k, v in params.items()), tuple(weights.items())))
    return tuple(out)


@functools.lru_cache(maxsize=None)
def _registry() -> tuple[Part, ...]:
    return read()


def all_parts() -> tuple[Part, ...]:
    return _registry()


def part(pid: str) -> Part:
    for p in _registry():
        if p.id == pid:
            return p
    raise KeyError(f"unknown part {pid!r}; parts are {', '.join(ids())}")


def ids() -> tuple[str, ...]:
    return tuple(p.id for p in _registry())


@functools.lru_cache(maxsize=None)
def parameters(name: str) -> tuple[str, ...]:
    """The contract's parameter names of ``name`` ("get_batch", "Head", "Head.forward"), as the registry
    declares them; () for a name it does not declare. For messages only."""
    for p in _registry():
        for declared, params in p.parameters:
            if declared == name:
                return params
    return ()


def rubric(path: Path | None = None) -> tuple[dict[str, Fraction], set[str]]:
    """({part: points}, {bonus parts}) of the registry at ``path`` (default: this lab's)."""
    parts = read(path) if path else _registry()
    if path:
        unknown = [p.id for p in parts if p.id not in ids()]
        if unknown:
            raise RegistryError(f"{path} names parts the lab does not have: {unknown}")
    return {p.id: p.points for p in parts}, {p.id for p in parts if p.bonus}


def hidden_counts() -> dict[str, int]:
    """How many hidden checks each part has at grading time (the manifest; {} if absent)."""
    try:
        return {k: int(v) for k, v in json.loads(HIDDEN_COUNTS.read_text()).items()}
    except (OSError, ValueError, AttributeError):
        return {}


def module_part(module_name: str) -> str | None:
    """The part whose check module this is (``autograder.checks.test_<id>`` or its hidden one)."""
    for p in _registry():
        if module_name in (p.visible_module, p.hidden_module):
            return p.id
    return None


def check_part(module_name: str, name: str, obj=None) -> str | None:
    """The part that ``module_name.name`` is a check of: a function ``test_<id>_<property>`` in that
    part's own check module. Anything else (helpers, a stray test elsewhere) is no check."""
    pid = module_part(module_name)
    if pid is None or not name.startswith(f"test_{pid}_") or (obj is not None and not callable(obj)):
        return None
    return pid


def check_weight(pid: str, function_name: str, hidden: bool = False) -> int:
    """The weight of the check ``function_name`` of part ``pid`` (see ``Part.weight``)."""
    return part(pid).weight(function_name, hidden)


def is_hidden(module_name: str) -> bool:
    return module_name.startswith("autograder.checks.hidden.")


def _marks(fn, name: str):
    return [m for m in getattr(fn, "pytestmark", []) if m.name == name]


def checks_of(pid: str, hidden: bool = False) -> list[tuple[str, object, dict]]:
    """[(label, function, keyword arguments)] of a part's checks, parametrisations expanded.
    ``hidden`` adds the hidden checks when their module is present (the instructor's tools count
    them; the notebook never runs them)."""
    p = part(pid)
    names = [p.visible_module] + ([p.hidden_module] if hidden else [])
    found = []
    for module_name in names:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:  # a part with no (visible / hidden) checks module
                continue
            raise
        for name, fn in vars(module).items():
            if check_part(module_name, name, fn) != pid:
                continue
            label = name.removeprefix(f"test_{pid}_").replace("_", " ")
            cases = [(label, {})]
            for mark in _marks(fn, "parametrize"):
                argname, values = mark.args[0], mark.args[1]
                cases = [(f"{lab} [{v}]", {**kw, argname: v}) for lab, kw in cases for v in values]
            found.extend((lab, fn, kw) for lab, kw in cases)
    return found


PARTS = ids()
