"""The one report of every practice run: evaluation success against env steps, as a plot and a table.

Each algorithm picks its table's columns (the shared evaluation columns plus its own, e.g. steps-to-go's
detector precision/recall) and may append its own plots (steps-to-go's episode lengths).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

#: A table column: its header and the cell of a row.
Column = tuple[str, Callable[[Any], object]]

#: The columns every report has: evaluation success with its 95% interval and the episode length.
EVAL_COLUMNS: list[Column] = [
    ("eval success", lambda r: f"{r.success:.2f}"),
    ("95% CI", lambda r: f"[{r.ci_low:.2f}, {r.ci_high:.2f}]"),
    ("eval length", lambda r: f"{r.eval_length:.1f}"),
]


def write_practice_report(out: str | Path, rows: Sequence[Any], title: str, intro: str, columns: Sequence[Column],
                          extra: str = "") -> Path:
    """Write ``out/success.png`` (success and its 95% interval against env steps) and ``out/report.md``.

    Rows need ``env_steps``, ``success``, ``ci_low`` and ``ci_high``; those without an evaluation
    (``success is None``) are left out. ``extra`` (Markdown) follows the plot.
    """
    from automimic.evaluation.report import markdown_table, plot_lines

    out = Path(out)
    evaluated = [r for r in rows if r.success is not None]
    if not evaluated:
        raise ValueError(f"{out}: no evaluations to report")
    steps = [r.env_steps for r in evaluated]
    plot_lines([steps, steps, steps], {"success": [r.success for r in evaluated],
                                       "95% low": [r.ci_low for r in evaluated],
                                       "95% high": [r.ci_high for r in evaluated]},
               out / "success.png", title, "env steps of practice", "evaluation success")
    table = markdown_table([header for header, _ in columns], [[cell(r) for _, cell in columns] for r in evaluated])
    text = f"# {title}\n\n{intro}\n\n{table}\n\n![evaluation success against env steps](success.png)\n{extra}"
    (out / "report.md").write_text(text)
    return out / "report.md"
