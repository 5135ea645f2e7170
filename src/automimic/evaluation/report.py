"""Reports a person would rather look at than read: Markdown tables and PNG plots of a run."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers
import matplotlib.pyplot as plt  # noqa: E402


def plot_success_per_round(rounds: Sequence[int], success: Sequence[float], low: Sequence[float],
                           high: Sequence[float], path: str | Path, title: str, xlabel: str = "round",
                           start_label: str = "BC start") -> Path:
    """Evaluation success per round with its 95% interval, and the round-0 level as a line."""
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=120)
    err = [[s - lo for s, lo in zip(success, low)], [hi - s for s, hi in zip(success, high)]]
    ax.errorbar(rounds, success, yerr=err, marker="o", capsize=4, label="policy after round")
    ax.axhline(success[0], color="grey", linestyle="--", label=f"{start_label} ({success[0]:.2f})")
    ax.set(xlabel=xlabel, ylabel="evaluation success", ylim=(-0.02, 1.02), title=title)
    ax.set_xticks(list(rounds))
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def plot_counts_per_round(rounds: Sequence[int], series: dict[str, Sequence[int]], path: str | Path,
                          title: str) -> Path:
    """Grouped bars of per-round counts (e.g. practice episodes, successes, selected)."""
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=120)
    width = 0.8 / max(1, len(series))
    for i, (name, values) in enumerate(series.items()):
        ax.bar([r + (i - (len(series) - 1) / 2) * width for r in rounds], values, width, label=name)
    ax.set(xlabel="round", ylabel="episodes", title=title)
    ax.set_xticks(list(rounds))
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def plot_lines(x: Sequence[Sequence[float]], series: dict[str, Sequence[float]], path: str | Path, title: str,
               xlabel: str, ylabel: str) -> Path:
    """One line per named series; ``x[i]`` are the x values of the i-th series."""
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=120)
    for xs, (name, values) in zip(x, series.items()):
        ax.plot(xs, values, marker="o", markersize=3, label=name)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
