"""Any registered Gymnasium env as ``gym/<id>`` (e.g. ``gym/Pendulum-v1``), under the automimic contract.

Array observations become ``{"state": obs}``; ``info["success"]`` comes from the env's own
``success`` or ``is_success`` key when it has one and is ``False`` otherwise. Gymnasium envs have no
notion of object placement, so ``perturb`` must be 0 here.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from automimic.envs.base import AutomimicEnv, Obs, StartRecord


class GymnasiumEnv(AutomimicEnv):
    """Wraps ``gym.make(gym_id)``; the horizon defaults to the env's own ``max_episode_steps``."""

    def __init__(self, gym_id: str, perturb: float = 0.0, horizon: int | None = None,
                 render_mode: str | None = None, image_size: int | None = None) -> None:
        # image_size is accepted for a uniform make_env signature; Gymnasium envs render at their own size.
        if perturb:
            raise ValueError(f"gym/{gym_id}: perturb is only defined for envs with placed objects; use 0")
        self._env = gym.make(gym_id, render_mode=render_mode)
        self.env_id = f"gym/{gym_id}"
        self.perturb = 0.0
        spec_steps = self._env.spec.max_episode_steps if self._env.spec else None
        self.horizon = int(horizon or spec_steps or 1000)
        self.render_mode = render_mode
        inner = self._env.observation_space
        self._dict_obs = isinstance(inner, gym.spaces.Dict)
        self.observation_space = inner if self._dict_obs else gym.spaces.Dict({"state": inner})
        self.action_space = self._env.action_space

    def _wrap(self, obs: Any) -> Obs:
        if self._dict_obs:
            return {k: np.asarray(v) for k, v in obs.items()}
        return {"state": np.asarray(obs, dtype=np.float32).reshape(-1)}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Obs, dict]:
        """Reset the wrapped env with ``seed`` (Gymnasium envs honour it) and record the start."""
        seed = self.require_seed(seed)
        obs, info = self._env.reset(seed=seed, options=options)
        info = dict(info)
        info["start"] = StartRecord(seed).as_info()
        info["success"] = _success(info)
        return self._wrap(obs), info

    def step(self, action: np.ndarray) -> tuple[Obs, float, bool, bool, dict]:
        """Step the wrapped env and add ``info["success"]``."""
        obs, reward, terminated, truncated, info = self._env.step(action)
        info = dict(info)
        info["success"] = _success(info)
        return self._wrap(obs), float(reward), bool(terminated), bool(truncated), info

    def render(self) -> np.ndarray:
        """The wrapped env's frame."""
        return self._env.render()

    def close(self) -> None:
        """Close the wrapped env."""
        self._env.close()


def _success(info: dict) -> bool:
    return bool(info.get("success", info.get("is_success", False)))
