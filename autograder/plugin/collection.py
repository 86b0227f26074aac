"""Which checks run: exactly those the registry's one rule finds (``parts.check_part``, as the
notebook's check cells use), in the registry's order; a module that cannot be collected costs its
own checks and leaves a note."""

from __future__ import annotations

from autograder import parts as registry
from autograder.plugin.grading import grading_of


def part_of(item) -> str | None:
    """The part an item checks: the registry's one rule (``registry.check_part``), as the check cells use."""
    module = getattr(item, "module", None)
    return registry.check_part(module.__name__, item.originalname) if module is not None else None


def is_hidden(item) -> bool:
    return registry.is_hidden(item.module.__name__)


def pytest_collection_modifyitems(session, config, items):
    """Keep exactly the checks the registry's discovery finds (``parts.checks_of``), in the
    registry's order, each part's visible checks before its hidden ones."""
    order = {p: i for i, p in enumerate(registry.PARTS)}
    kept = [it for it in items if part_of(it)]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[it for it in items if not part_of(it)])
        items[:] = kept
    items.sort(key=lambda it: (order[part_of(it)], is_hidden(it)))


def pytest_collectreport(report):
    if report.failed:
        try:
            grading = grading_of()
            if grading is not None:
                grading.notes.append(f"could not collect {report.nodeid or 'the checks'}: "
                                     f"{str(report.longrepr).strip().splitlines()[-1][:300] if report.longrepr else ''}")
        except Exception:  # noqa: BLE001 - a note is not worth a crash
            pass
