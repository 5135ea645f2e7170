"""A replay buffer over whole episodes: demos and every practice step, n-step targets, seeded sampling.

Rows are steps. Each keeps its observation, action, reward and the observation after it; each
episode keeps whether it ended for good (``terminal``: the task was solved, or the env ended it) or
was cut (the horizon: bootstrapped). n-step returns are formed when a batch is drawn, from the
stored per-step rewards, so a reward source that changes relabels the whole buffer with
:meth:`ReplayBuffer.relabel`. A reward that is a function of a step's two observations (the
steps-to-go head's progress ``d(o_t) - d(o_t+1)``) can instead be given as ``reward_fn`` with a
``reward_version``: the buffer then labels each episode with it as it is added, and when a batch is
drawn under a newer version (a refreshed model) it first relabels every episode, demos included, so
no draw ever sees a stale reward. Labels are computed one episode at a time, so a buffer rebuilt on
resume holds the same float bits as the uninterrupted one. Why not evaluate the model on the drawn
rows at every draw: measured, that took a batch of 256 three-step rows from 1.8 ms to 50 ms (a
3 x 256 MLP head on a loaded 2-core CPU), more than the update itself.

Two partitions, ``demo`` and ``online``, are drawn from separately so every batch holds a fixed
fraction of demo steps (RLPD's symmetric sampling at 0.5). Sampling uses an explicit
``torch.Generator``, so a run's batches are a function of its seed, and a buffer rebuilt from the
run's episode store on resume draws exactly what the uninterrupted one would have.

Why not torchrl's ``ReplayBuffer``: it would hold the same arrays, but our buffer must be rebuilt
from the run's HDF5 :class:`~automimic.data.store.EpisodeStore` (the one source of truth for
episodes and their provenance), draw from two partitions in fixed proportion with a generator we
checkpoint, and form n-step targets across episode ends at sampling time; torchrl 0.14 also pins
``tensordict<0.15`` and ships a C++ extension built against one torch release.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch


@dataclass(frozen=True)
class ReplayBatch:
    """``B`` sampled n-step transitions.

    Attributes:
        obs: ``(B, D_obs)`` observations.
        actions: ``(B, D_act)`` actions taken (env units).
        returns: ``(B,)`` discounted sum of the next ``k <= n`` rewards.
        next_obs: ``(B, D_obs)`` the observation ``k`` steps later (after the episode's last step: its final one).
        discount: ``(B,)`` ``gamma ** k``, or 0 where those ``k`` steps reached a terminal end.
        demo: ``(B,)`` whether the row is a demo step.
        prior: ``(B, D_act)`` the frozen prior's action at ``obs`` (zeros when none was stored).
        next_prior: ``(B, D_act)`` the frozen prior's action at ``next_obs``.
    """

    obs: torch.Tensor
    actions: torch.Tensor
    returns: torch.Tensor
    next_obs: torch.Tensor
    discount: torch.Tensor
    demo: torch.Tensor
    prior: torch.Tensor
    next_prior: torch.Tensor


class ReplayBuffer:
    """Steps of whole episodes in preallocated tensors, with n-step sampling (see the module docstring).

    Args:
        obs_dim: flattened observation width.
        action_dim: action width.
        capacity: rows it can hold (demos plus the whole practice budget: nothing is ever evicted).
        reward_fn: if given, ``(obs (N, D_obs), next_obs (N, D_obs)) -> rewards (N,)`` labels every
            step instead of the rewards passed to :meth:`add` (see the module docstring).
        reward_version: the current version of ``reward_fn``; a draw under a new one relabels everything.
    """

    def __init__(self, obs_dim: int, action_dim: int, capacity: int,
                 reward_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
                 reward_version: Callable[[], int] = lambda: 0) -> None:
        self.capacity = capacity
        self.reward_fn, self.reward_version = reward_fn, reward_version
        self._labelled_version = reward_version()
        self._spans: list[slice] = []  # rows of each episode, in order
        self.obs = torch.zeros(capacity, obs_dim)
        self.next_obs = torch.zeros(capacity, obs_dim)
        self.actions = torch.zeros(capacity, action_dim)
        # A frozen prior's action at each observation and next observation: computed once per step
        # instead of once per sampled row (the prior never changes during practice).
        self.prior = torch.zeros(capacity, action_dim)
        self.next_prior = torch.zeros(capacity, action_dim)
        self.rewards = torch.zeros(capacity)
        self.last = torch.zeros(capacity, dtype=torch.long)  # row of the episode's last step
        self.terminal = torch.zeros(capacity, dtype=torch.bool)  # whether that episode ended for good
        self.is_demo = torch.zeros(capacity, dtype=torch.bool)
        self.size = 0
        self._demo_rows: list[torch.Tensor] = []
        self._online_rows: list[torch.Tensor] = []
        self._demo_index = torch.zeros(0, dtype=torch.long)
        self._online_index = torch.zeros(0, dtype=torch.long)
        self.episodes = 0

    def add(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray, next_obs: np.ndarray, terminal: bool,
            demo: bool, prior: torch.Tensor | None = None, next_prior: torch.Tensor | None = None) -> None:
        """Append one episode: ``obs``/``next_obs`` ``(T, D_obs)``, ``actions`` ``(T, D_act)``, ``rewards`` ``(T,)``,
        and optionally a frozen prior's actions at ``obs`` and ``next_obs`` ``(T, D_act)``."""
        t = len(actions)
        if t == 0:
            raise ValueError("replay: an episode needs at least one step")
        if self.size + t > self.capacity:
            raise ValueError(f"replay: {self.size + t} rows exceed the capacity of {self.capacity}")
        rows = slice(self.size, self.size + t)
        self.obs[rows] = torch.as_tensor(obs, dtype=torch.float32)
        self.next_obs[rows] = torch.as_tensor(next_obs, dtype=torch.float32)
        self.actions[rows] = torch.tensor(actions, dtype=torch.float32)  # a copy: episodes from workers are read-only
        self.rewards[rows] = (torch.as_tensor(rewards, dtype=torch.float32) if self.reward_fn is None
                              else self.reward_fn(self.obs[rows], self.next_obs[rows]))
        self._spans.append(rows)
        if prior is not None:
            self.prior[rows] = prior
        if next_prior is not None:
            self.next_prior[rows] = next_prior
        self.last[rows] = self.size + t - 1
        self.terminal[rows] = bool(terminal)
        self.is_demo[rows] = demo
        (self._demo_rows if demo else self._online_rows).append(torch.arange(self.size, self.size + t))
        self._demo_index = self._online_index = None  # rebuilt lazily on the next draw
        self.size += t
        self.episodes += 1

    def relabel(self, rewards: torch.Tensor) -> None:
        """Replace every stored reward ``(size,)`` (a reward source that learned something new)."""
        if rewards.shape != (self.size,):
            raise ValueError(f"replay.relabel: expected {self.size} rewards, got {tuple(rewards.shape)}")
        self.rewards[: self.size] = rewards

    def _relabel_if_stale(self) -> None:
        """Relabel every episode with ``reward_fn`` if its version changed since they were labelled."""
        if self.reward_fn is None or self.reward_version() == self._labelled_version:
            return
        for rows in self._spans:
            self.rewards[rows] = self.reward_fn(self.obs[rows], self.next_obs[rows])
        self._labelled_version = self.reward_version()

    @property
    def demo_steps(self) -> int:
        """Rows in the demo partition."""
        return int(sum(len(r) for r in self._demo_rows))

    @property
    def online_steps(self) -> int:
        """Rows in the online (practice) partition."""
        return int(sum(len(r) for r in self._online_rows))

    def _index(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._demo_index is None:
            self._demo_index = torch.cat(self._demo_rows) if self._demo_rows else torch.zeros(0, dtype=torch.long)
            self._online_index = (torch.cat(self._online_rows) if self._online_rows
                                  else torch.zeros(0, dtype=torch.long))
        return self._demo_index, self._online_index

    def sample(self, batch: int, generator: torch.Generator, demo_fraction: float, n_step: int,
               gamma: float) -> ReplayBatch:
        """Draw ``batch`` rows, ``round(batch * demo_fraction)`` of them demo steps (all of them while
        no practice step is stored), with ``n_step``-step returns discounted by ``gamma``."""
        demo_index, online_index = self._index()
        self._relabel_if_stale()
        if len(demo_index) + len(online_index) == 0:
            raise ValueError("replay: nothing to sample from")
        n_demo = batch if len(online_index) == 0 else int(round(batch * demo_fraction))
        if len(demo_index) == 0:
            n_demo = 0
        parts = []
        if n_demo:
            parts.append(demo_index[torch.randint(len(demo_index), (n_demo,), generator=generator)])
        if batch - n_demo:
            parts.append(online_index[torch.randint(len(online_index), (batch - n_demo,), generator=generator)])
        idx = torch.cat(parts)
        return self.nstep(idx, n_step, gamma)

    def nstep(self, idx: torch.Tensor, n_step: int, gamma: float) -> ReplayBatch:
        """The n-step transitions that start at rows ``idx``: returns stop at the episode's last step."""
        offsets = torch.arange(n_step)
        rows = idx[:, None] + offsets[None]
        last = self.last[idx]
        valid = rows <= last[:, None]
        rewards = self.rewards[rows.clamp(max=self.size - 1)] * valid
        returns = (rewards * gamma ** offsets[None].float()).sum(1)
        k = valid.sum(1)
        end = idx + k - 1
        reached_end = end == last
        discount = torch.where(reached_end & self.terminal[idx], torch.zeros(()), gamma ** k.float())
        return ReplayBatch(self.obs[idx], self.actions[idx], returns, self.next_obs[end], discount, self.is_demo[idx],
                           self.prior[idx], self.next_prior[end])
