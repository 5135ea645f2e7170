"""Camera observations: any env that can render gets an ``<camera>_image`` key in its observations.

Image policies need frames at every step, in the observation dict like any other key (so the
HDF5 store keeps them under ``obs/<camera>_image``, compressed, as robomimic and LIBERO do). The
wrapper renders after every reset and step; the simulator itself is unchanged. Envs that can say
which part of their state is the robot's own (``proprioception``) also get a ``proprio`` key, so a
policy can read the robot from its state and the world from pixels, the usual visuomotor setup.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from automimic.envs.base import AutomimicEnv, Obs

#: Side of the square camera images unless asked otherwise: small, because CPU rendering and CNN
#: training both scale with pixels (the Diffusion Policy and ACT papers use 84-96 px on simulated tasks).
DEFAULT_IMAGE_SIZE = 84


def image_key(camera: str) -> str:
    """The observation key camera ``camera`` fills, e.g. ``corner_image``."""
    return f"{camera}_image"


def camera_of(key: str) -> str:
    """Inverse of :func:`image_key`; a clear error for keys that name no camera."""
    if not key.endswith("_image") or key == "_image":
        raise ValueError(f"image key {key!r} names no camera (expected '<camera>_image', e.g. 'corner_image')")
    return key[: -len("_image")]


class CameraObservation(AutomimicEnv):
    """``env`` (built with ``render_mode="rgb_array"``) plus its rendered frame under ``<camera>_image``."""

    def __init__(self, env: AutomimicEnv, camera: str, image_size: int) -> None:
        self.env = env
        self.key = image_key(camera)
        self.env_id, self.horizon, self.perturb = env.env_id, env.horizon, env.perturb
        self.action_space = env.action_space
        spaces = {**env.observation_space.spaces,
                  self.key: gym.spaces.Box(0, 255, shape=(image_size, image_size, 3), dtype=np.uint8)}
        if hasattr(env, "proprioception"):
            sample, _ = env.reset(seed=0)
            size = len(env.proprioception(sample))
            spaces["proprio"] = gym.spaces.Box(-np.inf, np.inf, shape=(size,), dtype=np.float32)
        self.observation_space = gym.spaces.Dict(spaces)
        self.render_mode = "rgb_array"

    def _with_image(self, obs: Obs) -> Obs:
        extra = {self.key: np.asarray(self.env.render(), dtype=np.uint8)}
        proprio = getattr(self.env, "proprioception", None)
        if proprio is not None:
            extra["proprio"] = np.asarray(proprio(obs), dtype=np.float32)
        return {**obs, **extra}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Obs, dict]:
        """Reset the wrapped env and add the first frame."""
        obs, info = self.env.reset(seed=seed, options=options)
        return self._with_image(obs), info

    def step(self, action: np.ndarray) -> tuple[Obs, float, bool, bool, dict]:
        """Step the wrapped env and add the new frame."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._with_image(obs), reward, terminated, truncated, info

    def render(self) -> np.ndarray:
        """The wrapped env's frame."""
        return self.env.render()

    def close(self) -> None:
        """Close the wrapped env."""
        self.env.close()


def camera_env_kwargs(policy_config: dict[str, Any]) -> dict[str, Any]:
    """``make_env`` arguments that give a policy with this config the frames it reads (none for state policies)."""
    keys = policy_config.get("image_keys") or ()
    if not keys:
        return {}
    return {"cameras": [camera_of(k) for k in keys], "image_size": int(policy_config.get("image_size", DEFAULT_IMAGE_SIZE))}
