"""What every benchmark script shares: task lists, the per-cell cache, intervals over seeds, the machine line.

A *cell* is one measured unit (say: task, k, seed, method). Its result is a small JSON file under
``benchmarks/results/<benchmark>/``, written once the cell finishes and committed, so an
interrupted or repeated benchmark run skips what is done and the tables are rebuilt from the
files alone (``--table-only``). Big artefacts (run folders, stores, checkpoints) stay outside the
committed files: see ``.gitignore``.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from automimic.envs.suites import suite_tasks
from automimic.evaluation.stats import seed_interval, wilson_interval

#: Meta-World's MT10 task names (without the ``metaworld/`` prefix), from the one suite table.
MT10 = [t.split("/", 1)[1] for t in suite_tasks("mt10")]


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine_line() -> str:
    """CPU, cores and the load average when the line is written (what else was running)."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{cpu_model()}, {os.cpu_count()} cores, load average {load:.2f} at {time.strftime('%Y-%m-%d %H:%M')}"


def cell(path: Path, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The cached result at ``path``, or ``compute()``'s, written atomically with the machine line."""
    if path.exists():
        return json.loads(path.read_text())
    result = {**compute(), "machine": machine_line()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(path)
    return result


def cached(path: Path) -> dict[str, Any] | None:
    """A finished cell's result, or ``None``."""
    return json.loads(path.read_text()) if path.exists() else None


def summary(results: Sequence[dict[str, Any]], episodes_key: str = "episodes",
            successes_key: str = "successes") -> str:
    """``mean over seeds [t-interval] (n seeds; pooled Wilson [lo, hi] over N episodes)`` of finished cells."""
    if not results:
        return "-"
    rates = [r[successes_key] / r[episodes_key] for r in results]
    mean, low, high = seed_interval(rates)
    k = sum(r[successes_key] for r in results)
    n = sum(r[episodes_key] for r in results)
    wl, wh = wilson_interval(k, n)
    seeds = f"{len(results)} seed{'s' if len(results) > 1 else ''}"
    t = "" if math.isnan(low) else f" [{low:.2f}, {high:.2f}]"
    return f"{mean:.2f}{t} ({seeds}; pooled [{wl:.2f}, {wh:.2f}] over {n} ep)"


def markdown(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def task_mean(cells: dict[str, dict[int, dict[str, Any]]]) -> str:
    """``**mean** [t-interval] (T tasks x n seeds)``: the mean over tasks of each seed's success,
    over the seeds every task has a cell for; the bracket is the t-interval over those seeds."""
    seeds = sorted(set.intersection(*(set(by_seed) for by_seed in cells.values()))) if cells else []
    if not seeds:
        return "-"
    per_seed = [sum(c[s]["successes"] / c[s]["episodes"] for c in cells.values()) / len(cells) for s in seeds]
    mean, low, high = seed_interval(per_seed)
    bracket = "" if len(seeds) < 2 else f" [{low:.2f}, {high:.2f}]"
    return f"**{mean:.2f}**{bracket} ({len(cells)} tasks x {len(seeds)} seed{'s' if len(seeds) > 1 else ''})"
