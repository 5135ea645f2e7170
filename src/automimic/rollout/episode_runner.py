"""Run one episode of an actor in an env and return it as an :class:`Episode`."""

from __future__ import annotations

from typing import Callable

import numpy as np

from automimic.data.episode import Episode
from automimic.envs import AutomimicEnv
from automimic.rollout.actors import Actor


def run_episode(env: AutomimicEnv, actor: Actor, seed: int, *, source: str = "expert", round: int = 0,
                stop_on_success: bool = True, on_frame: Callable[[np.ndarray], None] | None = None) -> Episode:
    """Roll ``actor`` out from the start state ``seed`` names, for at most ``env.horizon`` steps.

    The episode ends when the task succeeds (unless ``stop_on_success`` is off), when the env
    terminates, or at the horizon. ``on_frame`` receives a rendered frame before every action and
    after the last one (for videos).
    """
    obs, info = env.reset(seed=seed)
    actor.reset(seed)
    start = info["start"]
    keys = list(obs)
    observations: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    actions, rewards = [], []
    success = False
    for _ in range(env.horizon):
        if on_frame is not None:
            on_frame(env.render())
        action = np.asarray(actor(obs), dtype=np.float32)
        for k in keys:
            observations[k].append(obs[k])
        obs, reward, terminated, truncated, info = env.step(action)
        actions.append(action)
        rewards.append(reward)
        success = success or info["success"]
        if (success and stop_on_success) or terminated or truncated:
            break
    if on_frame is not None:
        on_frame(env.render())
    return Episode(
        obs={k: np.stack(v) for k, v in observations.items()},
        actions=np.stack(actions), rewards=np.asarray(rewards, dtype=np.float32), success=bool(success),
        final_obs={k: np.asarray(v) for k, v in obs.items()}, source=source, round=round, seed=seed,
        policy=actor.name, env_id=env.env_id, perturb_sigma=float(start["perturb_sigma"]),
        perturb_offset=start["perturb_offset"], start_vector=start["start_vector"],
    )
