"""A fleet of simulated robots stepped in lock-step, with one batched policy call per step.

On-policy RL needs whole episodes from the current weights, and a small policy is cheapest when it
acts on all robots at once, so the fleet keeps N envs in this process. Episodes end on a
caller-given stop rule (the learned success detector) or the horizon: the fleet never reads the
simulator's ``info`` after a step, so no simulator success can leak into practice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np

from automimic.data.transitions import flatten_obs
from automimic.envs import make_env
from automimic.rollout.chunking import history_window

#: ``act(obs (N, D_obs) or histories (N, H, D_obs)) -> (env actions (N, D_act), per-step data to keep (N, ...))``
ActFn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
#: ``stop(next_obs (N, D_obs)) -> (N,) bool``: end these episodes after this step.
StopFn = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class FleetEpisode:
    """One practice episode, flattened.

    Attributes:
        seed: start-state seed.
        obs: ``(T + 1, D_obs)``: the ``T`` observations acted on, then the final one.
        actions: ``(T, D_act)`` env actions executed.
        kept: ``(T, ...)`` what ``act`` asked to keep per step (e.g. normalised sampled actions).
        stopped: whether the stop rule ended it (else the horizon or the env did).
    """

    seed: int
    obs: np.ndarray
    actions: np.ndarray
    kept: np.ndarray
    stopped: bool

    @property
    def length(self) -> int:
        """Number of actions."""
        return len(self.actions)


class Fleet:
    """``robots`` instances of ``env_id`` practising side by side in this process.

    Args:
        env_id: any registered env id.
        robots: how many envs step together.
        obs_keys: observation keys to flatten, in the policy's order.
        env_kwargs: passed to :func:`automimic.envs.make_env` (``perturb``, ``horizon``).
    """

    def __init__(self, env_id: str, robots: int, obs_keys: tuple[str, ...], env_kwargs: dict[str, Any] | None = None):
        if robots < 1:
            raise ValueError(f"robots must be >= 1, got {robots}")
        self.envs = [make_env(env_id, **(env_kwargs or {})) for _ in range(robots)]
        self.obs_keys = obs_keys
        self.horizon = self.envs[0].horizon
        space = self.envs[0].action_space
        #: ``(low, high)`` of the env's action box: what the env clips actions to.
        self.action_bounds = (np.asarray(space.low, dtype=np.float32), np.asarray(space.high, dtype=np.float32))

    def close(self) -> None:
        """Close every env."""
        for env in self.envs:
            env.close()

    def rollouts(self, seeds: Iterator[int], min_steps: int, act: ActFn, stop: StopFn,
                 max_episodes: int | None = None, history: int = 0) -> list[FleetEpisode]:
        """Run episodes from ``seeds`` until at least ``min_steps`` env steps are gathered.

        Free robots take the next seed while fewer than ``min_steps`` steps are in (and fewer than
        ``max_episodes`` episodes have started); episodes under way then run to their end, so every
        returned episode is whole. Returned in seed order. With ``history > 0``, ``act`` receives
        each robot's last ``history`` observations (the first one repeated at an episode's start),
        as chunked policies read them.
        """
        n = len(self.envs) if max_episodes is None else max(0, min(len(self.envs), max_episodes))
        live: list[dict[str, Any] | None] = [None] * n
        done: list[FleetEpisode] = []
        steps = started = 0

        def start(i: int) -> None:
            nonlocal started
            started += 1
            seed = next(seeds)
            obs, _ = self.envs[i].reset(seed=seed)
            live[i] = {"seed": seed, "obs": [flatten_obs(obs, self.obs_keys)], "actions": [], "kept": []}

        for i in range(n):
            start(i)
        while any(ep is not None for ep in live):
            active = [i for i in range(n) if live[i] is not None]
            if history > 0:
                actions, kept = act(np.stack([history_window(np.stack(live[i]["obs"][-history:]), history)
                                              for i in active]))
            else:
                actions, kept = act(np.stack([live[i]["obs"][-1] for i in active]))
            next_obs = []
            ended_by_env = []
            for j, i in enumerate(active):
                obs, _, terminated, truncated, _ = self.envs[i].step(actions[j])
                next_obs.append(flatten_obs(obs, self.obs_keys))
                ended_by_env.append(terminated or truncated)
            stopped = np.asarray(stop(np.stack(next_obs)), dtype=bool)
            steps += len(active)
            for j, i in enumerate(active):
                ep = live[i]
                ep["obs"].append(next_obs[j])
                ep["actions"].append(actions[j])
                ep["kept"].append(kept[j])
                if stopped[j] or ended_by_env[j] or len(ep["actions"]) >= self.horizon:
                    done.append(FleetEpisode(ep["seed"], np.stack(ep["obs"]), np.stack(ep["actions"]),
                                             np.stack(ep["kept"]), bool(stopped[j])))
                    live[i] = None
                    if steps < min_steps and (max_episodes is None or started < max_episodes):
                        start(i)
        return sorted(done, key=lambda e: e.seed)

