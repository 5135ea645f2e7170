"""Layers import only downward, and no two modules import each other (imports inside functions count)."""

from __future__ import annotations

import ast
from pathlib import Path

import automimic

ROOT = Path(automimic.__file__).parent

#: Each top-level package or module of automimic and its layer; an import must point to a lower
#: layer or stay inside its own package (docs: shared DESIGN.md, "Layers import only downward").
LAYERS = {
    "__init__": 0, "config": 0, "seeding": 0, "threads": 0, "device": 0, "checkpoint_io": 0,
    "envs": 1, "data": 1,
    "policies": 2,
    "rollout": 3, "training": 3,
    "evaluation": 4,
    "algos": 5,
    "pipeline": 6,
    "cli": 7,
}


def imports() -> dict[str, set[str]]:
    """Module name (``rollout.collector``) -> the automimic modules it imports, anywhere in its body."""
    found: dict[str, set[str]] = {}
    for path in ROOT.rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("automimic."):
                base = node.module.removeprefix("automimic.")
                targets.add(base)
                targets.update(f"{base}.{a.name}" for a in node.names if (ROOT / base / f"{a.name}.py").exists())
            elif isinstance(node, ast.Import):
                targets.update(a.name.removeprefix("automimic.") for a in node.names if a.name.startswith("automimic."))
        found[name] = targets
    return found


def test_every_package_has_a_layer():
    tops = {p.stem if p.is_file() else p.name for p in ROOT.iterdir()
            if (p.suffix == ".py" or (p / "__init__.py").exists())}
    assert tops <= set(LAYERS), f"give these a layer in LAYERS: {sorted(tops - set(LAYERS))}"


def test_imports_point_only_downward():
    wrong = []
    for module, targets in imports().items():
        top = module.split(".")[0]
        for target in targets:
            other = target.split(".")[0]
            if other != top and LAYERS[other] >= LAYERS[top]:
                wrong.append(f"{module} -> {target}")
    assert not wrong, wrong


def test_no_two_modules_import_each_other():
    graph = imports()
    pairs = sorted({tuple(sorted((a, b))) for a, targets in graph.items() for b in targets
                    if b != a and a in graph.get(b, set()) and not b.endswith("__init__")
                    and "." in a and "." in b})
    # A package's __init__ re-exporting its modules is not a cycle between two modules.
    pairs = [p for p in pairs if not any(x.count(".") == 0 for x in p)]
    assert not pairs, pairs
