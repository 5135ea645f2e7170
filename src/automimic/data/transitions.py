"""Episodes flattened into training rows, with the windows chunked policies need.

Every step of every episode is one row. A single-step policy (MLP) trains on ``(obs, action)``
rows; a chunked policy (ACT, Diffusion Policy) trains on an observation *history* ending at the row
and an action *chunk* starting at it. Windows never cross episodes: history before the first step
repeats the first observation (flagged in ``obs_pad``) and chunk slots past the last step repeat
the last action (flagged ``False`` in ``action_mask``), the conventions of the ACT and Diffusion
Policy reference code.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
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


def image_keys(episode: Episode) -> list[str]:
    """Observation keys that hold camera images ``(T, H, W, C)`` uint8, sorted."""
    return sorted(k for k, v in episode.obs.items() if v.ndim == 4)


def flatten_obs(obs: dict[str, np.ndarray], keys: Sequence[str]) -> np.ndarray:
    """Concatenate ``obs[k]`` of shape ``(..., D_k)`` over ``keys`` into ``(..., sum D_k)`` float32."""
    missing = [k for k in keys if k not in obs]
    if missing:
        raise KeyError(f"observation lacks keys {missing}; it has {sorted(obs)}")
    if not keys:  # an image-only policy reads no state: a width-0 vector with the right leading shape
        smallest = min(obs.values(), key=np.ndim)
        return np.zeros((*np.shape(smallest)[:-1], 0), dtype=np.float32)
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
        images: camera key -> ``(N, H, W, C)`` uint8 (only the keys asked for).
        first: ``(N,)`` row of the first step of each row's episode.
        last: ``(N,)`` row of the last step of each row's episode.
        task: ``(N,)`` index of each row's task (its episode's env id) in the vocabulary given to
            :meth:`with_tasks`; ``None`` for single-task data.
    """

    obs: torch.Tensor
    actions: torch.Tensor
    episode: torch.Tensor
    obs_keys: tuple[str, ...]
    steps_to_go: torch.Tensor
    images: dict[str, torch.Tensor] = field(default_factory=dict)
    first: torch.Tensor | None = None
    last: torch.Tensor | None = None
    task: torch.Tensor | None = None

    @classmethod
    def from_episodes(cls, episodes: Sequence[Episode], obs_keys: Sequence[str] | None = None,
                      image_keys: Sequence[str] = ()) -> "Transitions":
        """Stack every step of ``episodes``; ``obs_keys`` defaults (``None``) to all low-dim keys of the first episode.

        ``image_keys`` names camera keys to keep as uint8 images (none by default: they are large).
        """
        if not episodes:
            raise ValueError("no episodes to train on")
        keys = tuple(low_dim_keys(episodes[0]) if obs_keys is None else obs_keys)
        obs = np.concatenate([flatten_obs(e.obs, keys) for e in episodes])
        actions = np.concatenate([np.asarray(e.actions, dtype=np.float32) for e in episodes])
        index = np.concatenate([np.full(e.length, i) for i, e in enumerate(episodes)])
        labels = np.concatenate([steps_to_go_labels(e.length, e.success) for e in episodes])
        lengths = np.array([e.length for e in episodes])
        ends = np.cumsum(lengths)
        first = np.repeat(ends - lengths, lengths)
        last = np.repeat(ends - 1, lengths)
        images = {}
        for k in image_keys:
            missing = [i for i, e in enumerate(episodes) if k not in e.obs or e.obs[k].ndim != 4]
            if missing:
                raise KeyError(f"image key {k!r} missing or not (T, H, W, C) in episode {missing[0]}")
            images[k] = torch.from_numpy(np.concatenate([np.asarray(e.obs[k], dtype=np.uint8) for e in episodes]))
        return cls(torch.from_numpy(obs), torch.from_numpy(actions), torch.from_numpy(index), keys,
                   torch.from_numpy(labels), images, torch.from_numpy(first), torch.from_numpy(last))

    def with_tasks(self, episodes: Sequence[Episode], tasks: Sequence[str], default: str = "") -> "Transitions":
        """These rows labelled with their task: the index of each episode's env id in ``tasks`` (the
        episodes are the ones the rows came from, in the same order). An episode that names no env
        (imported files often do not) counts as task ``default`` when one is given; any other env id
        outside ``tasks`` is refused, naming it."""
        vocab = {t: i for i, t in enumerate(tasks)}
        if default in vocab:
            vocab[""] = vocab[default]
        unknown = sorted({e.env_id for e in episodes} - set(vocab))
        if unknown:
            raise ValueError(f"episodes of task(s) {unknown} for a policy that knows {list(tasks)}")
        per_episode = torch.tensor([vocab[e.env_id] for e in episodes], dtype=torch.long)
        return dataclasses.replace(self, task=per_episode[self.episode])

    def batch(self, idx: torch.Tensor, history: int = 0, chunk: int = 0) -> dict[str, torch.Tensor]:
        """The training batch of rows ``idx``.

        Without windows (``history = chunk = 0``): ``obs`` ``(B, D)``, ``actions`` ``(B, A)``,
        ``steps_to_go`` ``(B,)``, ``task`` ``(B,)`` (task-labelled data) and ``images`` (key ->
        ``(B, H, W, C)``, when kept). With windows: ``obs``
        ``(B, history, D)`` ending at the row, ``obs_pad`` ``(B, history)`` (True on padded slots
        before the episode start), ``images`` (key -> ``(B, history, H, W, C)``), ``actions`` ``(B, chunk, A)``
        starting at the row and ``action_mask`` ``(B, chunk)`` (False past the episode end).
        """
        out = {"steps_to_go": self.steps_to_go[idx]}
        if self.task is not None:
            out["task"] = self.task[idx]
        if history <= 0 and chunk <= 0:
            out.update(obs=self.obs[idx], actions=self.actions[idx])
            if self.images:
                out["images"] = {k: v[idx] for k, v in self.images.items()}
            return out
        history, chunk = max(1, history), max(1, chunk)
        back = idx[:, None] + torch.arange(1 - history, 1)[None]
        first = self.first[idx][:, None]
        rows = torch.maximum(back, first)
        ahead = idx[:, None] + torch.arange(chunk)[None]
        last = self.last[idx][:, None]
        out.update(obs=self.obs[rows], obs_pad=back < first, actions=self.actions[torch.minimum(ahead, last)],
                   action_mask=ahead <= last)
        if self.images:
            out["images"] = {k: v[rows] for k, v in self.images.items()}
        return out

    def __len__(self) -> int:
        return len(self.actions)
