"""Things that choose actions in a rollout: scripted experts and trained policies, one interface.

Workers cannot receive live objects cheaply, so an :class:`ActorSpec` (picklable) says how to
build the actor inside each worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from automimic.data.transitions import flatten_obs
from automimic.envs import Obs, expert_for
from automimic.envs.cameras import camera_env_kwargs
from automimic.policies import Policy, policy_from_payload, policy_payload
from automimic.rollout.chunking import ChunkRunner


class Actor(Protocol):
    """One action per (unbatched) observation; ``reset`` once per episode."""

    name: str

    def reset(self, seed: int) -> None:
        """Start a new episode."""

    def __call__(self, obs: Obs) -> np.ndarray:
        """Return an action."""


class ExpertActor:
    """The env's scripted expert."""

    def __init__(self, env_id: str) -> None:
        self.name = f"expert:{env_id}"
        self._expert = expert_for(env_id)

    def reset(self, seed: int) -> None:
        """Reset the expert (seeds its own randomness, e.g. point/reach waypoints)."""
        self._expert.reset(seed)

    def __call__(self, obs: Obs) -> np.ndarray:
        """The expert's action."""
        return self._expert(obs)


class PolicyActor:
    """A trained policy acting on one env (batch of one). Sampling and noise are seeded per episode.

    Args:
        policy: the policy.
        name: recorded as the episode's ``policy``.
        deterministic: act with the mean action (Gaussian heads sample otherwise).
        action_noise: std of Gaussian noise added to every action (exploration during practice).
    """

    def __init__(self, policy: Policy, name: str = "policy", deterministic: bool = True,
                 action_noise: float = 0.0) -> None:
        self.name = name
        self.policy = policy
        self.deterministic = deterministic
        self.action_noise = action_noise
        self._rng = np.random.default_rng(0)
        self._runner = ChunkRunner(policy, 1, deterministic)

    def reset(self, seed: int) -> None:
        """Clear the episode state (history, action queue) and seed any action sampling and noise."""
        self.policy.reset()
        self._runner.reset(0)
        torch.manual_seed(seed)
        self._rng = np.random.default_rng([seed, 3])

    def __call__(self, obs: Obs) -> np.ndarray:
        """Flatten the observation keys the policy was trained on and act (chunked policies via the runner)."""
        flat = flatten_obs(obs, self.policy.obs_keys)[None]
        images = {k: np.asarray(obs[k])[None] for k in self.policy.image_keys}
        action = self._runner.act(flat, images)[0]
        if self.action_noise > 0:
            action = action + self._rng.normal(0.0, self.action_noise, size=action.shape).astype(np.float32)
        return action


@dataclass(frozen=True)
class ActorSpec:
    """A picklable recipe for an actor: the env's expert, or a policy (its in-memory checkpoint)."""

    kind: str  # "expert" | "policy"
    env_id: str = ""
    payload: dict[str, Any] | None = None
    name: str = "policy"
    deterministic: bool = True
    action_noise: float = 0.0

    @classmethod
    def expert(cls, env_id: str) -> "ActorSpec":
        """Spec for the scripted expert of ``env_id``."""
        return cls("expert", env_id=env_id, name=f"expert:{env_id}")

    @classmethod
    def policy(cls, policy: Policy, name: str = "policy", deterministic: bool = True,
               action_noise: float = 0.0) -> "ActorSpec":
        """Spec for a copy of ``policy`` (weights are copied now; later training does not leak in)."""
        return cls("policy", payload=policy_payload(policy), name=name, deterministic=deterministic,
                   action_noise=action_noise)

    def env_kwargs(self) -> dict[str, Any]:
        """What the env must provide this actor: the cameras (and frame size) an image policy reads."""
        if self.kind != "policy":
            return {}
        return camera_env_kwargs(self.payload["config"])

    def build(self) -> Actor:
        """Create the actor (inside the worker that will use it)."""
        if self.kind == "expert":
            return ExpertActor(self.env_id)
        return PolicyActor(policy_from_payload(self.payload), self.name, self.deterministic, self.action_noise)
