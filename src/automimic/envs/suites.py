"""Named Meta-World task lists (MT10, MT50, ML10, ML45) and the difficulty tiers, as automimic env ids.

Suites are read from the installed ``metaworld`` package (``metaworld.env_dict``), in its order, so
they follow whatever Meta-World release is installed; only the tiers are kept here.

**Difficulty tiers** (easy 28, medium 11, hard 6, very hard 5 of the MT50 tasks) are the split DP3
(Ze et al. 2024, "3D Diffusion Policy", appendix) uses, after Seo et al. 2022 (Masked World Models).
The lists below were transcribed from DP3's appendix and could not be cross-checked against the paper
offline; ``tests/test_suites.py`` checks that they partition MT50 exactly (sizes 28/11/6/5), so a
misspelt name fails, but not that each task sits in the tier the paper gives it.
"""

from __future__ import annotations

import difflib
import hashlib
from typing import Sequence

#: Env id prefix of Meta-World tasks.
PREFIX = "metaworld/"

#: Difficulty tiers (DP3 after Seo et al. 2022), easiest first; Meta-World v3 task names.
TIERS: dict[str, tuple[str, ...]] = {
    "easy": (
        "button-press-v3", "button-press-topdown-v3", "button-press-topdown-wall-v3", "button-press-wall-v3",
        "coffee-button-v3", "dial-turn-v3", "door-close-v3", "door-lock-v3", "door-open-v3", "door-unlock-v3",
        "drawer-close-v3", "drawer-open-v3", "faucet-close-v3", "faucet-open-v3", "handle-press-v3",
        "handle-press-side-v3", "handle-pull-v3", "handle-pull-side-v3", "lever-pull-v3", "peg-unplug-side-v3",
        "plate-slide-v3", "plate-slide-back-v3", "plate-slide-back-side-v3", "plate-slide-side-v3", "reach-v3",
        "reach-wall-v3", "window-close-v3", "window-open-v3",
    ),
    "medium": (
        "basketball-v3", "bin-picking-v3", "box-close-v3", "coffee-pull-v3", "coffee-push-v3", "hammer-v3",
        "peg-insert-side-v3", "push-wall-v3", "soccer-v3", "sweep-v3", "sweep-into-v3",
    ),
    "hard": ("assembly-v3", "hand-insert-v3", "pick-out-of-hole-v3", "pick-place-v3", "push-v3", "push-back-v3"),
    "very hard": ("shelf-place-v3", "disassemble-v3", "stick-pull-v3", "stick-push-v3", "pick-place-wall-v3"),
}

#: Suite names :func:`suite_tasks` accepts.
SUITES = ("mt10", "mt50", "ml10-train", "ml10-test", "ml45-train", "ml45-test")


def _task_lists() -> dict[str, list[str]]:
    from metaworld.env_dict import ML10_V3, ML45_V3, MT10_V3, MT50_V3

    return {"mt10": list(MT10_V3), "mt50": list(MT50_V3), "ml10-train": list(ML10_V3["train"]),
            "ml10-test": list(ML10_V3["test"]), "ml45-train": list(ML45_V3["train"]),
            "ml45-test": list(ML45_V3["test"])}


def suite_tasks(name: str) -> list[str]:
    """The env ids of suite ``name`` (one of :data:`SUITES`), in Meta-World's order.

    ``suite_tasks("mt10")`` -> ``["metaworld/reach-v3", "metaworld/push-v3", ...]``.
    """
    lists = _task_lists()
    if name not in lists:
        raise ValueError(f"unknown suite {name!r}; suites: {', '.join(SUITES)}")
    return [PREFIX + task for task in lists[name]]


def _task_id(name: str, known: Sequence[str], where: str) -> str:
    """``push-v3`` or ``metaworld/push-v3`` -> ``metaworld/push-v3`` (a one-line error for anything else)."""
    task = name.strip().removeprefix(PREFIX)
    if task in known:
        return PREFIX + task
    close = difflib.get_close_matches(task, known, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise ValueError(f"{where}: unknown suite or Meta-World task {name.strip()!r}{hint}; suites: {', '.join(SUITES)}; "
                     f"tasks: {', '.join(sorted(known))}")


def resolve_tasks(spec: str, exclude: Sequence[str] = ()) -> list[str]:
    """The env ids a command-line spec names, less ``exclude``.

    ``spec`` is a suite name (``mt10``, ``ml45-test``, ...) or a comma-separated list of Meta-World
    tasks, each ``push-v3`` or ``metaworld/push-v3`` (repeats are dropped). ``exclude`` entries are
    written either way too, may themselves be comma-separated, and may name tasks the spec does not
    hold (no effect); an unknown name in either is a one-line ``ValueError`` naming the valid ones.
    """
    known = _task_lists()["mt50"]
    spec = spec.strip()
    if spec.lower() in SUITES:
        tasks = suite_tasks(spec.lower())
    else:
        names = [n for n in spec.split(",") if n.strip()]
        if not names:
            raise ValueError(f"--suite: give a suite ({', '.join(SUITES)}) or comma-separated Meta-World tasks")
        tasks = list(dict.fromkeys(_task_id(n, known, "--suite") for n in names))
    dropped = {_task_id(n, known, "--exclude") for item in exclude for n in item.split(",") if n.strip()}
    left = [t for t in tasks if t not in dropped]
    if not left:
        raise ValueError(f"--exclude removes every task of {spec!r}; nothing left to evaluate")
    return left


def suite_label(spec: str, exclude: Sequence[str] = ()) -> str:
    """A file-name-safe name for ``spec``: the suite name, or the short task names joined by ``+``
    (``push+reach``), or ``tasks-<N>`` with a digest when that would be long; with ``exclude`` it
    ends in ``-without-`` and the left-out tasks named the same way, so a partial evaluation never
    overwrites the whole suite's files."""
    spec = spec.strip()
    label = spec.lower() if spec.lower() in SUITES else _names_label(spec.split(","))
    dropped = [n for item in exclude for n in item.split(",")]
    return f"{label}-without-{_names_label(dropped)}" if any(n.strip() for n in dropped) else label


def _names_label(names: Sequence[str]) -> str:
    short = [n.strip().removeprefix(PREFIX).removesuffix("-v3") for n in names if n.strip()]
    label = "+".join(dict.fromkeys(short))
    if len(label) <= 60:
        return label
    return f"tasks-{len(short)}-{hashlib.sha1(label.encode()).hexdigest()[:8]}"


def tier_of(env_id: str) -> str | None:
    """The difficulty tier (``easy`` / ``medium`` / ``hard`` / ``very hard``) of a Meta-World env id;
    ``None`` for an env of another family. An unknown Meta-World task is a ``ValueError``."""
    if not env_id.startswith(PREFIX):
        return None
    task = env_id.removeprefix(PREFIX)
    for tier, tasks in TIERS.items():
        if task in tasks:
            return tier
    raise ValueError(f"{env_id}: not an MT50 task, so it has no difficulty tier")
