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
from automimic.policies import Policy, policy_from_payload, policy_payload


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
    """A trained policy acting on one env (batch of one). Sampling is seeded per episode."""

    def __init__(self, policy: Policy, name: str = "policy", deterministic: bool = True) -> None:
        self.name = name
        self.policy = policy
        self.deterministic = deterministic

    def reset(self, seed: int) -> None:
        """Clear the policy's episode state and seed any action sampling."""
        self.policy.reset()
        torch.manual_seed(seed)

    def __call__(self, obs: Obs) -> np.ndarray:
        """Flatten the observation keys the policy was trained on and act."""
        flat = flatten_obs(obs, self.policy.obs_keys)[None]
        return self.policy.act(flat, deterministic=self.deterministic)[0]


@dataclass(frozen=True)
class ActorSpec:
    """A picklable recipe for an actor: the env's expert, or a policy (its in-memory checkpoint)."""

    kind: str  # "expert" | "policy"
    env_id: str = ""
    payload: dict[str, Any] | None = None
    name: str = "policy"
    deterministic: bool = True

    @classmethod
    def expert(cls, env_id: str) -> "ActorSpec":
        """Spec for the scripted expert of ``env_id``."""
        return cls("expert", env_id=env_id, name=f"expert:{env_id}")

    @classmethod
    def policy(cls, policy: Policy, name: str = "policy", deterministic: bool = True) -> "ActorSpec":
        """Spec for a copy of ``policy`` (weights are copied now; later training does not leak in)."""
        return cls("policy", payload=policy_payload(policy), name=name, deterministic=deterministic)

    def build(self) -> Actor:
        """Create the actor (inside the worker that will use it)."""
        if self.kind == "expert":
            return ExpertActor(self.env_id)
        return PolicyActor(policy_from_payload(self.payload), self.name, self.deterministic)
