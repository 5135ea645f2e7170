"""Episodes flattened into (observation, action) tensors for single-step policies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from automimic.data.episode import Episode


#: Label of a step whose steps-to-go is unknown (a step of a failed episode).
UNKNOWN = -1.0


def steps_to_go_labels(length: int, success: bool) -> np.ndarray:
    """Per-step labels of an episode of ``length`` actions: ``length - t`` if it succeeded, else unknown.

    The episode's last action reached success, so observation ``t`` was ``length - t`` steps away.
    """
    if not success:
        return np.full(length, UNKNOWN, dtype=np.float32)
    return (length - np.arange(length)).astype(np.float32)


def low_dim_keys(episode: Episode) -> list[str]:
    """Observation keys that are vectors (images and other N-D arrays excluded), sorted."""
    return sorted(k for k, v in episode.obs.items() if v.ndim == 2)


def flatten_obs(obs: dict[str, np.ndarray], keys: Sequence[str]) -> np.ndarray:
    """Concatenate ``obs[k]`` of shape ``(..., D_k)`` over ``keys`` into ``(..., sum D_k)`` float32."""
    missing = [k for k in keys if k not in obs]
    if missing:
        raise KeyError(f"observation lacks keys {missing}; it has {sorted(obs)}")
    return np.concatenate([np.asarray(obs[k], dtype=np.float32) for k in keys], axis=-1)


@dataclass(frozen=True)
class Transitions:
    """Training pairs from a list of episodes.

    Attributes:
        obs: ``(N, D_obs)`` observations (the ``obs_keys`` concatenated).
        actions: ``(N, D_act)``.
        episode: ``(N,)`` index of the source episode (for splits by episode).
        obs_keys: which observation keys were concatenated, in order.
        steps_to_go: ``(N,)`` steps left until success (``-1`` on steps of failed episodes).
    """

    obs: torch.Tensor
    actions: torch.Tensor
    episode: torch.Tensor
    obs_keys: tuple[str, ...]
    steps_to_go: torch.Tensor

    @classmethod
    def from_episodes(cls, episodes: Sequence[Episode], obs_keys: Sequence[str] | None = None) -> "Transitions":
        """Stack every step of ``episodes``; ``obs_keys`` defaults to all low-dim keys of the first episode."""
        if not episodes:
            raise ValueError("no episodes to train on")
        keys = tuple(obs_keys or low_dim_keys(episodes[0]))
        obs = np.concatenate([flatten_obs(e.obs, keys) for e in episodes])
        actions = np.concatenate([np.asarray(e.actions, dtype=np.float32) for e in episodes])
        index = np.concatenate([np.full(e.length, i) for i, e in enumerate(episodes)])
        labels = np.concatenate([steps_to_go_labels(e.length, e.success) for e in episodes])
        return cls(torch.from_numpy(obs), torch.from_numpy(actions), torch.from_numpy(index), keys,
                   torch.from_numpy(labels))

    def batch(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        """The training batch of rows ``idx``: ``obs``, ``actions``, ``steps_to_go``."""
        return {"obs": self.obs[idx], "actions": self.actions[idx], "steps_to_go": self.steps_to_go[idx]}

    def __len__(self) -> int:
        return len(self.actions)
