"""What every automimic environment promises, whatever simulator is behind it.

An automimic env is a Gymnasium env with three extra guarantees, so rollout code never special-
cases a simulator:

* observations are a ``dict`` of arrays (``{"state": (D,)}``, later also camera images);
* ``reset(seed=s)`` puts the world in the start state that seed names, every time, and returns
  ``info["start"]``: the seed, the perturbation applied and the sampled start vector;
* every ``step`` returns ``info["success"]`` (a bool), and ``env.horizon`` is the step budget.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import gymnasium as gym
import numpy as np

Obs = dict[str, np.ndarray]


@dataclass(frozen=True)
class StartRecord:
    """How an episode's start state was made, stored with the episode.

    Attributes:
        seed: the episode seed passed to ``reset``.
        perturb_sigma: standard deviation (metres, or env units) of the start-position offset.
        perturb_offset: the (x, y) offsets actually applied, one row per perturbed object, shape (N, 2).
        start_vector: the simulator's sampled start parameters after perturbation (env specific).
    """

    seed: int
    perturb_sigma: float = 0.0
    perturb_offset: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    start_vector: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def as_info(self) -> dict[str, Any]:
        """The record as the ``info["start"]`` dict returned by ``reset``."""
        return {
            "seed": self.seed,
            "perturb_sigma": self.perturb_sigma,
            "perturb_offset": np.asarray(self.perturb_offset, dtype=np.float64),
            "start_vector": np.asarray(self.start_vector, dtype=np.float64),
        }


class Expert(Protocol):
    """A scripted demonstrator: ``reset`` once per episode, then one action per observation."""

    def reset(self, seed: int) -> None:
        """Prepare for a new episode; ``seed`` drives any randomness of the expert itself."""

    def __call__(self, obs: Obs) -> np.ndarray:
        """Return the action for one (unbatched) observation."""


class AutomimicEnv(gym.Env):
    """Base class for automimic's own envs: holds the id, the horizon and the perturbation size."""

    env_id: str
    horizon: int
    perturb: float
    #: Whether ``info["success"]`` carries the task's real success (a wrapped env may have none).
    reports_success: bool = True

    def require_seed(self, seed: int | None) -> int:
        """Refuse unseeded resets: an unseeded start state cannot be reproduced or kept disjoint."""
        if seed is None:
            raise ValueError(f"{self.env_id}: reset needs a seed (automimic never uses unseeded starts)")
        return int(seed)
