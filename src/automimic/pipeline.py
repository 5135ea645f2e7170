"""The main job: demonstrations -> behaviour cloning -> evaluation, on one task, resumable."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from automimic.algos.bc import BCConfig, train_bc
from automimic.evaluation.evaluate import EvalResult, evaluate
from automimic.rollout.collect import collect_demos
from automimic.training.loop import TrainConfig

#: Default task of ``automimic run``: BC from 5 demos lands mid-range here, so the table says something.
DEFAULT_ENV = "metaworld/push-v3"


@dataclass(frozen=True)
class RunSummary:
    """What the main job measured."""

    env_id: str
    demos: int
    result: EvalResult
    seconds: dict[str, float]


def run_pipeline(out: str | Path = "runs/main", env_id: str = DEFAULT_ENV, demos: int = 5,
                 eval_episodes: int = 50, train_steps: int = 5000, seed: int = 0, workers: int = 2,
                 progress: bool = True) -> RunSummary:
    """Collect ``demos`` expert episodes, train BC, evaluate; each stage resumes from ``out``."""
    out = Path(out)
    seconds = {}
    t = time.time()
    collect_demos(env_id, demos, out / "demos.h5", seed=seed, workers=1, progress=progress)
    seconds["collect"] = time.time() - t
    t = time.time()
    cfg = BCConfig(data=str(out / "demos.h5"), train=TrainConfig(steps=train_steps), seed=seed)
    policy = train_bc(cfg, out / "bc", progress=progress)
    seconds["train"] = time.time() - t
    t = time.time()
    result = evaluate(policy, env_id, eval_episodes, seed=seed, workers=workers, progress=progress)
    result.save(out / "bc" / "eval.json")
    seconds["eval"] = time.time() - t
    return RunSummary(env_id, demos, result, seconds)
