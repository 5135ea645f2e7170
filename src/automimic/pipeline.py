"""The main job: expert demonstrations -> behaviour cloning -> SEIL rounds, on one task, resumable."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from automimic.algos.seil import RoundResult, SEILConfig, run_seil, write_report
from automimic.rollout.collect import collect_demos
from automimic.training.loop import TrainConfig

#: Default task of ``automimic run``: BC from 5 demos lands mid-range here, so SEIL has room to show.
DEFAULT_ENV = "metaworld/push-v3"


@dataclass(frozen=True)
class RunSummary:
    """What the main job measured: round 0 is BC on the demos, rounds 1.. are SEIL."""

    env_id: str
    demos: int
    rounds: list[RoundResult]
    collect_seconds: float


def run_pipeline(out: str | Path = "runs/main", env_id: str = DEFAULT_ENV, demos: int = 5, rounds: int = 3,
                 practice: int = 50, eval_episodes: int = 50, train_steps: int = 3000, seed: int = 0,
                 workers: int = 2, progress: bool = True,
                 on_round: Callable[[RoundResult], None] | None = None) -> RunSummary:
    """Collect ``demos`` expert episodes, then BC and ``rounds`` SEIL rounds; each stage resumes from ``out``."""
    out = Path(out)
    t = time.time()
    collect_demos(env_id, demos, out / "demos.h5", seed=seed, workers=1, progress=progress)
    collect_seconds = time.time() - t
    cfg = SEILConfig(data=str(out / "demos.h5"), env_id=env_id, rounds=rounds, practice_episodes=practice,
                     eval_episodes=eval_episodes, workers=workers, seed=seed, train=TrainConfig(steps=train_steps))
    results = run_seil(cfg, out / "seil", progress=progress, on_round=on_round)
    write_report(out / "seil")
    return RunSummary(env_id, demos, results, collect_seconds)
