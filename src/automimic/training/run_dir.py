"""The run folder every training command writes, and reads back to resume.

::

    runs/NAME/
      config.yaml            the resolved configuration and ``algo`` (its name in ``algos.registry``)
      checkpoints/last.pt    full training state (policy, optimiser, schedule, RNG, step)
      checkpoints/best.pt    the best policy so far (by validation success, else training loss)
      metrics.jsonl          one JSON object per logged step
      tb/                    TensorBoard event files
      eval.json              written by ``automimic eval``
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class RunDir:
    """Paths and small I/O helpers for one run folder."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._tb = None

    @property
    def config_path(self) -> Path:
        """``config.yaml``."""
        return self.path / "config.yaml"

    @property
    def metrics_path(self) -> Path:
        """``metrics.jsonl``."""
        return self.path / "metrics.jsonl"

    def checkpoint(self, name: str) -> Path:
        """``checkpoints/<name>.pt``."""
        return self.path / "checkpoints" / f"{name}.pt"

    def write_config(self, config: dict[str, Any], growable: tuple[str, ...] = ()) -> None:
        """Write the resolved config; refuse to resume a run under a different configuration.

        Fields named in ``growable`` (numbers such as a step budget) may grow on resume: the run then
        continues from where it stopped under the larger value, and ``config.yaml`` records it. Any
        other change, or a growable field that shrinks, is refused.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        new = json.loads(json.dumps(config))
        if self.config_path.exists():
            old = self.read_config()
            if old == new:
                return
            changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            grown = [k for k in changed if k in growable and isinstance(old.get(k), (int, float))
                     and isinstance(new.get(k), (int, float)) and new[k] > old[k]]
            if grown != changed:
                raise ValueError(f"{self.config_path}: run exists with a different config "
                                 f"({'; '.join(config_changes(old, new))}); "
                                 + (f"only {', '.join(growable)} may grow on resume; " if growable else "")
                                 + "use a new --out or delete the folder")
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(new, sort_keys=False))
        tmp.replace(self.config_path)

    def read_config(self) -> dict[str, Any]:
        """The run's resolved config."""
        if not self.config_path.exists():
            raise FileNotFoundError(f"{self.path}: not a run folder (no config.yaml)")
        try:
            config = yaml.safe_load(self.config_path.read_text())
        except (yaml.YAMLError, UnicodeDecodeError) as err:
            raise ValueError(f"{self.config_path}: not valid YAML ({type(err).__name__}); expected the run's "
                             "config mapping") from None
        if not isinstance(config, dict):
            raise ValueError(f"{self.config_path}: expected a mapping of config fields, got "
                             f"{type(config).__name__}")
        return config

    def log(self, step: int, metrics: dict[str, float]) -> None:
        """Append one record to ``metrics.jsonl`` and TensorBoard."""
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps({"step": step, **metrics}) + "\n")
        if self._tb is None:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(self.path / "tb"))
        for key, value in metrics.items():
            self._tb.add_scalar(key, value, step)

    def drop_metrics_after(self, step: int) -> None:
        """On resume, forget records logged after the checkpoint we resume from (they will be redone)."""
        if not self.metrics_path.exists():
            return
        kept = [line for line in self.metrics_path.read_text().splitlines()
                if line.strip() and json.loads(line)["step"] <= step]
        tmp = self.metrics_path.with_suffix(".tmp")
        tmp.write_text("".join(line + "\n" for line in kept))
        tmp.replace(self.metrics_path)

    def close(self) -> None:
        """Flush TensorBoard."""
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def read_rows(path: str | os.PathLike, cls: type[T]) -> list[T]:
    """The dataclass rows of a JSON-lines progress file (``rounds.jsonl``, ``iterations.jsonl``); none if absent."""
    path = Path(path)
    if not path.exists():
        return []
    return [cls(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


def append_row(path: str | os.PathLike, row: Any) -> None:
    """Append one dataclass row to a JSON-lines progress file."""
    with open(path, "a") as f:
        f.write(json.dumps(dataclasses.asdict(row)) + "\n")


_ABSENT = object()


def config_changes(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """Every leaf where two resolved configs differ, as ``dotted.field old -> new`` (``absent`` where a
    field exists on one side only): what a refused resume names, so a user sees it was, say, a
    learned-reward setting that a newer version added, not just ``learned_reward``."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key, _ABSENT), new.get(key, _ABSENT)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_changes(a, b, f"{prefix}{key}.")
        else:
            out.append(f"{prefix}{key} {_short(a)} -> {_short(b)}")
    return out


def _short(value: Any) -> str:
    text = "absent" if value is _ABSENT else json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."

