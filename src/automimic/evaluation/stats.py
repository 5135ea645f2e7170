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


#: Two-sided 97.5% quantiles of Student's t for 1..30 degrees of freedom (95% intervals over seeds).
_T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
         2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


def seed_interval(values: list[float] | tuple[float, ...]) -> tuple[float, float, float]:
    """Mean over training seeds and its 95% t-interval ``(mean, low, high)``, clipped to [0, 1].

    With one seed the interval is undefined and returned as ``(mean, nan, nan)``: a single training
    seed says nothing about how another seed would land.
    """
    n = len(values)
    if n == 0:
        raise ValueError("seed_interval needs at least one value")
    mean = sum(values) / n
    if n == 1:
        return mean, math.nan, math.nan
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    t = _T975[n - 2] if n - 1 <= len(_T975) else 1.96
    half = t * sd / math.sqrt(n)
    return mean, max(0.0, mean - half), min(1.0, mean + half)
