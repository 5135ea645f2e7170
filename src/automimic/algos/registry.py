"""One contract for every run folder: algorithms register here, and commands find them by ``config.yaml``'s ``algo``.

Every run folder holds ``config.yaml`` with ``algo: <name>`` beside the algorithm's resolved
config. Knowing the name is enough to train (``config`` + ``run``), resume, evaluate
(``load_policy``) and report (``report``) the folder, so no command guesses the kind from files.

An algorithm registers itself at the bottom of its own module::

    register(Algorithm("seil", SEILConfig, run_seil, load_seil_policy, report=write_report,
                       stages=("seil-round",)))

The registry imports every module of :mod:`automimic.algos` the first time it is asked (by
name, so no module imports another in a cycle); adding an algorithm therefore touches one new file.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from automimic.config import from_dict
from automimic.policies import Policy
from automimic.training.run_dir import RunDir


@dataclass(frozen=True)
class Algorithm:
    """What the commands need to know about one algorithm.

    Args:
        name: the ``algo`` its run folders record in ``config.yaml``.
        config: its config dataclass.
        run: ``run(cfg, out, progress=True, on_row=None)`` runs or resumes it into ``out``; ``on_row``
            gets each progress row (round, iteration or evaluation) as it is written.
        load_policy: ``load_policy(out)`` is the policy to evaluate, or ``load_policy(out, checkpoint)``
            when ``checkpoints`` names choices.
        report: ``report(out) -> path`` writes the folder's ``report.md``; None if it has none.
        checkpoints: the checkpoints ``load_policy`` can choose between, the default first; empty
            if it has one policy to evaluate.
        evaluated: what is evaluated, for the eval line (e.g. ``after RL``); default: the checkpoint.
        overrides: ``key=value`` fixed by the name, applied before the user's (``algo=gail``).
        stages: ``algo`` names of sub-folders it writes that are plain BC training runs (its rounds,
            its warm start); they are evaluated like ``bc`` folders.
    """

    name: str
    config: type
    run: Callable[..., Any]
    load_policy: Callable[..., Policy]
    report: Callable[[Path], Path] | None = None
    checkpoints: tuple[str, ...] = ()
    evaluated: str = ""
    overrides: tuple[str, ...] = ()
    stages: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not dataclasses.is_dataclass(self.config):
            raise ValueError(f"algorithm {self.name!r}: config must be a dataclass, got {self.config!r}")


_ALGORITHMS: dict[str, Algorithm] = {}
_STAGES: set[str] = set()
_discovered = False


def register(algorithm: Algorithm) -> Algorithm:
    """Add ``algorithm`` (and its stage names) to the registry; a name already taken by another algorithm is refused.

    Several algorithms may share a stage name (every RL run writes a ``bc-warm-start`` folder).
    """
    clash = {algorithm.name} & _STAGES | set(algorithm.stages) & set(_ALGORITHMS)
    if algorithm.name in _ALGORITHMS and _ALGORITHMS[algorithm.name] is not algorithm:
        clash.add(algorithm.name)
    if clash:
        raise ValueError(f"algorithm names already registered: {', '.join(sorted(clash))}")
    _ALGORITHMS[algorithm.name] = algorithm
    _STAGES.update(algorithm.stages)
    return algorithm


def _discover() -> None:
    """Import every module of :mod:`automimic.algos` once, so their ``register`` calls run."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    package = importlib.import_module("automimic.algos")
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"automimic.algos.{module.name}")


def names() -> list[str]:
    """The registered algorithm names, sorted."""
    _discover()
    return sorted(_ALGORITHMS)


def get(name: str) -> Algorithm:
    """The algorithm registered as ``name``."""
    _discover()
    if name not in _ALGORITHMS:
        raise ValueError(f"unknown algorithm {name!r}; known: {', '.join(names())}")
    return _ALGORITHMS[name]


def of_folder(out: str | Path) -> tuple[Algorithm, dict[str, Any]]:
    """The algorithm that wrote run folder ``out`` (``bc`` for a stage folder) and its recorded config.

    Raises ValueError, naming the folder and the known algorithms, when ``out`` is no run folder or
    records an algorithm nobody registered.
    """
    _discover()
    known = f"known algorithms: {', '.join(names())}"
    try:
        config = RunDir(out).read_config()
    except FileNotFoundError:
        raise ValueError(f"{out}: not a run folder (no config.yaml); {known}") from None
    algo = config.get("algo")
    if algo in _STAGES:
        return get("bc"), config
    if algo not in _ALGORITHMS:
        raise ValueError(f"{out}: config.yaml records {'no algo' if algo is None else f'unknown algo {algo!r}'}; "
                         f"{known}")
    return _ALGORITHMS[algo], config


def load_folder_policy(out: str | Path, checkpoint: str | None = None) -> tuple[Policy, str]:
    """The policy to evaluate from run folder ``out`` and a few words saying which it is.

    ``checkpoint`` chooses among the algorithm's ``checkpoints`` (default: its first); algorithms
    with a single policy to evaluate ignore it.
    """
    algorithm, _ = of_folder(out)
    if not algorithm.checkpoints:
        return algorithm.load_policy(Path(out)), algorithm.evaluated or "last"
    which = checkpoint or algorithm.checkpoints[0]
    if which not in algorithm.checkpoints:
        raise ValueError(f"--checkpoint {which!r}: {algorithm.name} runs have {' | '.join(algorithm.checkpoints)}")
    return algorithm.load_policy(Path(out), which), which


def write_folder_report(out: str | Path) -> Path:
    """Write run folder ``out``'s ``report.md`` with its algorithm's report; returns its path."""
    algorithm, _ = of_folder(out)
    if algorithm.report is None:
        raise ValueError(f"{out}: {algorithm.name} runs have no report (evaluate with: automimic eval {out})")
    return algorithm.report(Path(out))


def folder_config(out: str | Path) -> tuple[Algorithm, Any]:
    """The algorithm of run folder ``out`` and its config rebuilt from ``config.yaml`` (to resume it)."""
    algorithm, config = of_folder(out)
    if config.get("algo") in _STAGES:
        raise ValueError(f"{out}: a {config['algo']} folder is a stage of its parent run; resume the parent folder")
    fields = {f.name for f in dataclasses.fields(algorithm.config)}
    return algorithm, from_dict(algorithm.config, {k: v for k, v in config.items() if k in fields}, str(out))


def resume(out: str | Path, progress: bool = True, on_row: Callable[[Any], None] | None = None) -> Any:
    """Resume (or finish) run folder ``out`` under the config it recorded; returns what its ``run`` returns."""
    algorithm, cfg = folder_config(out)
    return algorithm.run(cfg, Path(out), progress, on_row)
