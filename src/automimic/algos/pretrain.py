"""Multi-task pretraining: record scripted demos of many tasks, train one task-conditioned policy.

``automimic pretrain --tasks ml45-train`` records ``demos_per_task`` successful expert episodes of
every task into one store (``demos.h5``; each episode names its task in its ``env_id``), with one
pool of rollout workers for all tasks, then behaviour-clones a
:class:`~automimic.policies.multitask.MultiTaskPolicy` (MLP, ACT or Diffusion Policy inside a
learned task embedding) with a steps-to-go head on all of them. Both stages resume: recording
continues after the last stored start seed of each task, training from ``last.pt``.

The run folder is a BC-style folder (``checkpoints/best.pt``), so ``train bc --init``, ``improve
seil|steps-to-go|practice --init`` and ``automimic eval --suite`` take it directly. ``timing.json``
says how the wall time divided between recording and training.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from automimic.algos.bc import fit_policy, load_run_policy
from automimic.algos.registry import Algorithm, register
from automimic.algos.run_config import PolicyChoice
from automimic.config import to_dict
from automimic.data.store import EpisodeStore
from automimic.envs.suites import resolve_tasks
from automimic.policies import Policy, check_policy_config
from automimic.policies.steps_to_go_head import StepsToGoHeadConfig
from automimic.rollout.collect import collect_demos
from automimic.rollout.collector import make_collector
from automimic.training.loop import TrainConfig
from automimic.training.run_dir import RunDir

#: Training settings of a pretraining run: many more rows than a few-shot run, so more steps.
PRETRAIN_TRAIN = {"steps": 30_000, "batch_size": 512, "checkpoint_every": 2000, "log_every": 500}


@dataclass
class PretrainConfig(PolicyChoice):
    """A multi-task pretraining run: the fields of :class:`~automimic.algos.run_config.PolicyChoice`
    (``seed``; ``policy`` and ``policy_config``: the class the multi-task policy wraps, ``mlp``,
    ``act`` or ``diffusion``, and its config), and:

    Args:
        tasks: a suite name (``ml45-train``, ``mt10``, ``mt50``, ...) or comma-separated env ids.
        exclude: tasks to leave out (e.g. the ones a later few-shot run adapts to).
        demos_per_task: successful expert episodes recorded per task.
        task_dim: width of the learned task vector.
        encoder: task encoder (``learned``; the interface a text encoder would plug into).
        train: optimisation settings.
        steps_to_go: also train a steps-to-go head (the learned reward and detector of
            ``improve steps-to-go`` and ``--reward steps-to-go`` after adaptation).
        steps_to_go_head: that head's settings.
        workers: rollout worker processes for recording.
        horizon: step budget per recorded episode (the env's default when 0).
    """

    tasks: str = "ml45-train"
    exclude: list[str] = field(default_factory=list)
    demos_per_task: int = 50
    task_dim: int = 16
    encoder: str = "learned"
    train: TrainConfig = field(default_factory=lambda: TrainConfig(**PRETRAIN_TRAIN))
    steps_to_go: bool = True
    steps_to_go_head: StepsToGoHeadConfig = field(default_factory=StepsToGoHeadConfig)
    workers: int = 2
    horizon: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.demos_per_task <= 0:
            raise ValueError(f"demos_per_task must be positive, got {self.demos_per_task}")
        if self.workers <= 0:
            raise ValueError(f"workers must be positive, got {self.workers}")
        if self.horizon < 0:
            raise ValueError(f"horizon must be >= 0 (0: the env's), got {self.horizon}")


def policy_settings(cfg: PretrainConfig, tasks: list[str]) -> dict[str, Any]:
    """The multi-task policy's config for ``cfg`` over ``tasks`` (checked before any work starts; the
    wrapped class's config was checked when ``cfg`` was built)."""
    settings = {"base": cfg.policy, "base_config": dict(cfg.policy_config), "tasks": tuple(tasks),
                "task": tasks[0], "encoder": cfg.encoder, "task_dim": cfg.task_dim}
    check_policy_config("multitask", settings)
    return settings


def record_tasks(tasks: list[str], out: Path, cfg: PretrainConfig, progress: bool = True) -> EpisodeStore:
    """Fill ``out`` (a multi-task store) with ``cfg.demos_per_task`` expert demos of each task, one
    worker pool for all of them; a task already complete costs one read of the index."""
    with make_collector(cfg.workers) as collector:
        for task in tasks:
            store = collect_demos(task, cfg.demos_per_task, out, seed=cfg.seed, workers=collector,
                                  horizon=cfg.horizon or None, multitask=True, progress=progress)
    return store


def run_pretrain(cfg: PretrainConfig, out: str | Path, progress: bool = True, on_row: Any = None) -> Policy:
    """Record and train into ``out`` (resuming either stage); returns the trained policy."""
    out = Path(out)
    tasks = resolve_tasks(cfg.tasks, cfg.exclude)
    settings = policy_settings(cfg, tasks)
    RunDir(out).write_config({"algo": "pretrain", **to_dict(cfg), "resolved_tasks": tasks})
    timing_path = out / "timing.json"
    timing = json.loads(timing_path.read_text()) if timing_path.exists() else {}
    t0 = time.time()
    store = record_tasks(tasks, out / "demos.h5", cfg, progress)
    timing["record_s"] = timing.get("record_s", 0.0) + time.time() - t0
    _write_json(timing_path, timing)
    episodes = [ep for ep in store.episodes() if ep.env_id in set(tasks) and ep.success]
    t0 = time.time()
    policy = fit_policy(episodes, "", out, policy="multitask", policy_config=settings, train=cfg.train,
                        seed=cfg.seed, steps_to_go=cfg.steps_to_go_head if cfg.steps_to_go else None,
                        progress=progress)
    timing["train_s"] = timing.get("train_s", 0.0) + time.time() - t0
    timing.update(episodes=len(episodes), steps=sum(e.length for e in episodes), tasks=len(tasks))
    _write_json(timing_path, timing)
    return policy


def _write_json(path: Path, value: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(value, indent=1))
    tmp.replace(path)


register(Algorithm("pretrain", PretrainConfig, run_pretrain, load_run_policy, checkpoints=("best", "last")))
