"""``Episode``: one trajectory plus where it came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Where an episode came from; stored as the ``source`` attribute.
SOURCES = ("expert", "self", "dagger", "teleop", "imported")


@dataclass(frozen=True)
class Episode:
    """One trajectory of ``T`` steps.

    Attributes:
        obs: observation key -> array of shape ``(T, ...)``; ``obs[k][t]`` is what the agent saw
            before taking ``actions[t]``.
        actions: ``(T, A)`` float array.
        rewards: ``(T,)`` environment rewards (kept for RL baselines; never used for success).
        success: whether the task's success flag was raised in the episode.
        final_obs: key -> ``(...)`` array, the observation after the last action (``None`` when an
            imported file does not hold it).
        source: one of :data:`SOURCES`.
        round: self-improvement round that produced it (0 for the original demonstrations).
        seed: the episode seed that made the start state (``None`` when unknown, e.g. imported).
        policy: id of the policy or expert that acted.
        env_id: automimic env id (empty when unknown).
        perturb_sigma: start perturbation size used at reset.
        perturb_offset: ``(N, 2)`` (x, y) offsets applied to the N perturbed objects.
        start_vector: the env's sampled start parameters (env specific, may be empty).
        attrs: any further JSON-friendly attributes (e.g. ``{"model": "ema"}``).
    """

    obs: dict[str, np.ndarray]
    actions: np.ndarray
    rewards: np.ndarray
    success: bool
    final_obs: dict[str, np.ndarray] | None = None
    source: str = "expert"
    round: int = 0
    seed: int | None = None
    policy: str = ""
    env_id: str = ""
    perturb_sigma: float = 0.0
    perturb_offset: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    start_vector: np.ndarray = field(default_factory=lambda: np.zeros(0))
    attrs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        t = len(self.actions)
        if self.actions.ndim != 2:
            raise ValueError(f"actions must have shape (T, A), got {self.actions.shape}")
        if self.rewards.shape != (t,):
            raise ValueError(f"rewards must have shape ({t},) to match actions, got {self.rewards.shape}")
        if not self.obs:
            raise ValueError("obs must hold at least one key")
        for key, value in self.obs.items():
            if len(value) != t:
                raise ValueError(f"obs[{key!r}] has {len(value)} steps but actions have {t}")
        if self.final_obs is not None and set(self.final_obs) != set(self.obs):
            raise ValueError(f"final_obs keys {sorted(self.final_obs)} differ from obs keys {sorted(self.obs)}")
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {self.source!r}")

    def scalar_attrs(self) -> dict[str, Any]:
        """The attributes that are plain scalars (``weights_version``, ``terminated``, ...): what a
        rewrite of the episode keeps as provenance, leaving per-step arrays such as ``kept`` behind."""
        return {k: v for k, v in self.attrs.items() if isinstance(v, (bool, int, float, str))}

    @property
    def length(self) -> int:
        """Number of steps ``T``."""
        return len(self.actions)

    @property
    def dones(self) -> np.ndarray:
        """``(T,)`` robomimic-style done flags: 1 on the last step only."""
        dones = np.zeros(self.length, dtype=np.int64)
        if self.length:
            dones[-1] = 1
        return dones
