"""Seed namespaces: every episode seed belongs to exactly one purpose.

Evaluation must never replay a start state that training saw. Rather than checking overlap after
the fact, each purpose owns a disjoint integer range, so the seeds for a purpose are
``base(purpose) + run_seed * BLOCK + index`` and two purposes can never produce the same seed.
All seeds stay below 2**31 so that every RNG (NumPy, MuJoCo, Gymnasium) accepts them.
"""

from __future__ import annotations

import random
from typing import Literal

import numpy as np

Purpose = Literal["collect", "practice", "validate", "eval", "calibrate"]

#: Episodes a single run seed may draw per purpose before its range would overlap the next seed's.
BLOCK = 100_000
#: Distinct run seeds per purpose (``run_seed`` must be in ``[0, RUN_SEEDS)``).
RUN_SEEDS = 1_000
_SPAN = BLOCK * RUN_SEEDS  # 1e8 seeds per purpose; up to 21 purposes fit below 2**31.
_BASES: dict[str, int] = {"collect": 0, "practice": _SPAN, "validate": 2 * _SPAN, "eval": 3 * _SPAN,
                          "calibrate": 4 * _SPAN}


def episode_seeds(purpose: Purpose, run_seed: int, count: int, start: int = 0) -> list[int]:
    """Return ``count`` episode seeds for ``purpose``, disjoint from every other purpose.

    Args:
        purpose: what the episodes are for; each purpose owns its own seed range.
        run_seed: the user's ``--seed``; different run seeds give different episodes.
        count: how many seeds to return.
        start: index of the first episode (lets a resumed run continue the same sequence).
    """
    if purpose not in _BASES:
        raise ValueError(f"purpose must be one of {sorted(_BASES)}, got {purpose!r}")
    if not 0 <= run_seed < RUN_SEEDS:
        raise ValueError(f"seed must be in [0, {RUN_SEEDS}), got {run_seed}")
    if start < 0 or count < 0 or start + count > BLOCK:
        raise ValueError(f"episode indices must lie in [0, {BLOCK}), got {start}..{start + count}")
    first = _BASES[purpose] + run_seed * BLOCK + start
    return list(range(first, first + count))


def purpose_of(seed: int) -> str:
    """Name the purpose whose range holds ``seed`` (used to verify that data and evaluation differ)."""
    for name, base in _BASES.items():
        if base <= seed < base + _SPAN:
            return name
    raise ValueError(f"seed {seed} lies outside every automimic seed range")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy's legacy global RNG and torch, so library code that uses them repeats."""
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
