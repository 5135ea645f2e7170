"""Any registered Gymnasium env as ``gym/<id>`` (e.g. ``gym/Pendulum-v1``), under the automimic contract.

Array observations become ``{"state": obs}``; ``info["success"]`` comes from the env's own
``success`` or ``is_success`` key when it has one and is ``False`` otherwise. Gymnasium envs have no
notion of object placement, so ``perturb`` must be 0 here.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

import gymnasium as gym
import numpy as np

from automimic.envs.base import AutomimicEnv, Obs, StartRecord


class GymnasiumEnv(AutomimicEnv):
    """Wraps ``gym.make(gym_id)``; the horizon defaults to the env's own ``max_episode_steps``.

    The horizon replaces the env's registered time limit (longer or shorter), so ``truncated``
    comes exactly at ``horizon`` steps; ``terminated`` is the wrapped env's own (a real task end).
    """

    def __init__(self, gym_id: str, perturb: float = 0.0, horizon: int | None = None,
                 render_mode: str | None = None, image_size: int | None = None) -> None:
        # image_size is accepted for a uniform make_env signature; Gymnasium envs render at their own size.
        if perturb:
            raise ValueError(f"gym/{gym_id}: perturb is only defined for envs with placed objects; use 0")
        spec_steps = _registered_steps(gym_id)
        self.horizon = int(horizon or spec_steps or 1000)
        # gym.make's TimeLimit would cut at the registered limit, not at our horizon; give it ours.
        self._env = gym.make(gym_id, render_mode=render_mode, max_episode_steps=self.horizon)
        self.env_id = f"gym/{gym_id}"
        self.perturb = 0.0
        self._steps = 0
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
        self._steps = 0
        info = dict(info)
        info["start"] = StartRecord(seed).as_info()
        info["success"] = _success(info)
        return self._wrap(obs), info

    def step(self, action: np.ndarray) -> tuple[Obs, float, bool, bool, dict]:
        """Step the wrapped env and add ``info["success"]``; ``truncated`` at the horizon at the latest."""
        obs, reward, terminated, truncated, info = self._env.step(action)
        self._steps += 1
        info = dict(info)
        info["success"] = _success(info)
        # Counted here as well as by the TimeLimit: an env may drop or replace that wrapper on make.
        truncated = bool(truncated) or self._steps >= self.horizon
        return self._wrap(obs), float(reward), bool(terminated), truncated, info

    @functools.cached_property
    def reports_success(self) -> bool:
        """Whether the wrapped env reports task success (``success`` or ``is_success`` in its ``info``).

        Probed once on a separate copy (a reset and one random step), so this env's state is untouched.
        """
        probe = gym.make(self.env_id.partition("/")[2])
        try:
            _, info = probe.reset(seed=0)
            if "success" in info or "is_success" in info:
                return True
            probe.action_space.seed(0)
            info = probe.step(probe.action_space.sample())[4]
            return "success" in info or "is_success" in info
        finally:
            probe.close()

    def render(self) -> np.ndarray:
        """The wrapped env's frame."""
        return self._env.render()

    def close(self) -> None:
        """Close the wrapped env."""
        self._env.close()


def _success(info: dict) -> bool:
    return bool(info.get("success", info.get("is_success", False)))


def _registered_steps(gym_id: str) -> int | None:
    """The registered ``max_episode_steps`` of ``gym_id`` (``"module:Id"`` imports ``module`` first, as gym.make does)."""
    module, sep, name = gym_id.partition(":")
    if sep:
        importlib.import_module(module)
        gym_id = name
    return gym.spec(gym_id).max_episode_steps
