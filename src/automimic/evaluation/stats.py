"""Confidence intervals for success rates."""

from __future__ import annotations

import math


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (95% for ``z = 1.96``).

    Unlike the normal approximation it stays inside [0, 1] and is sensible at 0/n and n/n,
    which is where small evaluation budgets often land.
    """
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be in [0, {n}], got {successes}")
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # Rounding can put a bound a hair on the wrong side of p at 0/n and n/n; the interval must hold p.
    return max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half))
