"""docs/results.md is exactly what the benchmark scripts' cached tables give (it cannot drift)."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def test_results_page_matches_the_cached_tables():
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "results_page.py"
    spec = importlib.util.spec_from_file_location("results_page", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.PAGE.read_text() == module.render(), "run python benchmarks/results_page.py"
