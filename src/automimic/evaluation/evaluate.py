"""Evaluate a policy: success rate with a 95% Wilson interval on seeds no training data can share."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm import tqdm

from automimic.data.episode import Episode
from automimic.envs import env_spec
from automimic.envs.cameras import camera_env_kwargs
from automimic.evaluation.stats import wilson_interval
from automimic.evaluation.video import open_render_env, write_mp4
from automimic.policies import Policy
from automimic.rollout.actors import ActorSpec, PolicyActor
from automimic.rollout.collector import Collector, iter_episodes
from automimic.rollout.episode_runner import run_episode
from automimic.rollout.workers import RolloutJob
from automimic.seeding import episode_seeds


@dataclass(frozen=True)
class EvalResult:
    """Outcome of an evaluation.

    Attributes:
        env_id: env evaluated on.
        episodes: number of episodes.
        successes: how many succeeded.
        success_rate: ``successes / episodes``.
        ci_low: lower end of the 95% Wilson interval.
        ci_high: upper end of the 95% Wilson interval.
        mean_length: mean episode length in steps (successful episodes end at success).
        seeds: the episode seeds, in order.
        per_episode_success: success flag per seed.
        per_episode_length: length per seed.
    """

    env_id: str
    episodes: int
    successes: int
    success_rate: float
    ci_low: float
    ci_high: float
    mean_length: float
    seeds: list[int]
    per_episode_success: list[bool]
    per_episode_length: list[int]

    def line(self) -> str:
        """One-line summary: ``success 0.84 [0.71, 0.92] over 50 episodes, mean length 63.1``."""
        return (f"success {self.success_rate:.2f} [{self.ci_low:.2f}, {self.ci_high:.2f}] over {self.episodes} "
                f"episodes, mean length {self.mean_length:.1f}")

    def save(self, path: str | Path) -> None:
        """Write the result as JSON."""
        Path(path).write_text(json.dumps(asdict(self), indent=1))


def summarize(env_id: str, seeds: Sequence[int], successes: Sequence[bool], lengths: Sequence[int]) -> EvalResult:
    """Build an :class:`EvalResult` from per-episode outcomes."""
    n, k = len(seeds), int(sum(successes))
    low, high = wilson_interval(k, n)
    return EvalResult(env_id, n, k, k / n, low, high, float(np.mean(lengths)), list(seeds),
                      [bool(s) for s in successes], [int(x) for x in lengths])


def check_policy_env(policy: Policy, env_id: str, where: str = "policy") -> None:
    """Refuse (``ValueError``, one line) an env that ``policy`` cannot act in: an unknown id, an
    observation key it reads that the env lacks, other widths, or another action width. A
    mismatch is deterministic, so it is caught here rather than retried like a simulator crash."""
    env_obs, env_actions = env_spec(env_id, **camera_env_kwargs(dataclasses.asdict(policy.config)))
    widths = {}
    for key in policy.obs_keys:
        if key not in env_obs:
            raise ValueError(f"{where}: reads obs/{key}, which env {env_id} does not give (it gives {sorted(env_obs)})")
        widths[key] = int(np.prod(env_obs[key], dtype=np.int64))
    if policy.obs_keys and sum(widths.values()) != policy.obs_dim:
        raise ValueError(f"{where}: reads {policy.obs_dim} observation values ({', '.join(policy.obs_keys)}), env "
                         f"{env_id} gives {sum(widths.values())}")
    if env_actions != policy.action_dim:
        raise ValueError(f"{where}: acts with {policy.action_dim} action values, env {env_id} takes {env_actions}")


def evaluate(policy: Policy, env_id: str, episodes: int = 50, *, seed: int = 0, workers: "int | Collector" = 1,
             horizon: int | None = None, purpose: str = "eval", deterministic: bool = True,
             progress: bool = True) -> EvalResult:
    """Roll ``policy`` out from ``episodes`` evaluation start states, with its mean action by default.

    Seeds come from the ``eval`` namespace (``purpose="validate"`` gives the separate range used
    to pick checkpoints during training), so they can never coincide with collection or practice.
    ``deterministic=False`` samples stochastic policies (seeded per episode, so it repeats).
    """
    return evaluate_episodes(policy, env_id, episodes, seed=seed, workers=workers, horizon=horizon,
                             purpose=purpose, deterministic=deterministic, progress=progress)[0]


def evaluate_episodes(policy: Policy, env_id: str, episodes: int = 50, *, seed: int = 0, workers: "int | Collector" = 1,
                      horizon: int | None = None, purpose: str = "eval", deterministic: bool = True,
                      progress: bool = True) -> tuple[EvalResult, list[Episode]]:
    """:func:`evaluate`, also returning the episodes themselves (in seed order)."""
    seeds = episode_seeds(purpose, seed, episodes)
    env_kwargs = {"horizon": horizon} if horizon else {}
    job = RolloutJob(env_id, ActorSpec.policy(policy, deterministic=deterministic), env_kwargs, source="self")
    bar = tqdm(total=episodes, desc=f"{purpose} {env_id}", unit="ep", disable=not progress, leave=False)
    done: list[Episode] = []
    for ep in iter_episodes(job, seeds, workers):
        done.append(ep)
        bar.update(1)
        bar.set_postfix(success=f"{np.mean([e.success for e in done]):.2f}")
    bar.close()
    result = summarize(env_id, seeds, [e.success for e in done], [e.length for e in done])
    return result, done


def record_videos(policy: Policy, env_id: str, out_dir: str | Path, count: int = 3, *, seed: int = 0,
                  horizon: int | None = None, image_size: int = 256) -> list[Path]:
    """Write MP4s of the first ``count`` evaluation episodes (same seeds as :func:`evaluate`).

    An image policy is filmed through its own camera, at the size it was trained on.
    """
    kwargs = {"horizon": horizon} if horizon else {}
    cameras = camera_env_kwargs(dataclasses.asdict(policy.config))
    if cameras:
        kwargs["cameras"] = cameras["cameras"]
        image_size = cameras["image_size"]
    env = open_render_env(env_id, image_size, **kwargs)
    actor = PolicyActor(policy)
    paths = []
    try:
        for s in episode_seeds("eval", seed, count):
            frames: list[np.ndarray] = []
            ep = run_episode(env, actor, s, on_frame=frames.append)
            tag = "success" if ep.success else "failure"
            paths.append(write_mp4(frames, Path(out_dir) / f"eval_seed{s}_{tag}.mp4"))
    finally:
        env.close()
    return paths
