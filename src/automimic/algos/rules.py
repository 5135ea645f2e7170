"""The update rules of the practice engine (:mod:`automimic.algos.engine`): PPO and REINFORCE.

* :class:`PPORule`: GAE advantages from a learned value function, the clipped PPO update
  (:func:`~automimic.algos.ppo.ppo_update`), then the value fit (GAIL, AIRL, BC -> RL, residual RL,
  steps-to-go with ``update="ppo"``).
* :class:`ReinforceRule`: REINFORCE on discounted returns scaled by ``1/horizon``, minus an optional
  baseline (steps-to-go's default).

The off-policy rule lives with its config in :mod:`automimic.algos.practice`. Each rule takes its
update function as a parameter, so a test (or a variant) can watch or replace it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from automimic.algos.engine import Labelled
from automimic.algos.ppo import PPOConfig, gae, ppo_update
from automimic.algos.value_baseline import ValueBaseline
from automimic.data.episode import Episode
from automimic.data.transitions import flatten_obs
from automimic.policies import Policy
from automimic.policies.exploration import exploration_distribution
from automimic.rollout.chunking import history_windows


def episode_states(episode: Episode, keys: tuple[str, ...]) -> np.ndarray:
    """The flattened observations ``(T + 1, D)`` of an episode: the ``T`` acted on, then the final one."""
    final = flatten_obs({k: v[None] for k, v in episode.final_obs.items()}, keys)
    return np.concatenate([flatten_obs(episode.obs, keys), final])


def gae_batch(states: list[np.ndarray], rewards: list[np.ndarray], terminals: list[bool], kept: list[np.ndarray],
              value: ValueBaseline, gamma: float, lam: float,
              history: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(obs, kept actions, GAE advantages, value targets) of a batch of episodes for PPO.

    Per episode: ``states`` ``(T + 1, D)`` (the last is the state after the last step),
    ``rewards`` ``(T,)``, whether it ended for good (else the last state is bootstrapped with
    ``V``), and what the sampling actor kept per step. With ``history > 0`` the observations are
    each step's history window ``(N, history, D)``, as a chunked policy read them.
    """
    obs, advs, rets = [], [], []
    for s, r, terminal in zip(states, rewards, terminals):
        v = value(torch.as_tensor(s)).numpy()
        adv, ret = gae(r, v[:-1], float(v[-1]), gamma, lam, terminal=terminal)
        obs.append(history_windows(s[:-1], history) if history > 0 else s[:-1])
        advs.append(adv)
        rets.append(ret)
    return (torch.as_tensor(np.concatenate(obs)), torch.as_tensor(np.concatenate(kept)),
            torch.as_tensor(np.concatenate(advs)), torch.as_tensor(np.concatenate(rets)))


def discounted_returns(rewards: np.ndarray, gamma: float) -> np.ndarray:
    """``G_t = r_t + gamma * G_{t+1}`` within one episode (``G_T = 0`` after its last step)."""
    out = np.zeros(len(rewards), dtype=np.float64)
    running = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        running = float(rewards[t]) + gamma * running
        out[t] = running
    return out.astype(np.float32)


def reinforce_update(policy: Policy, opt: torch.optim.Optimizer, obs: torch.Tensor, actions: torch.Tensor,
                     returns: torch.Tensor, minibatch: int, generator: torch.Generator,
                     grad_clip: float = 0.0, min_std: float = 0.0, learn_std: bool = True,
                     bounds: tuple[np.ndarray, np.ndarray] | None = None, bound_weight: float = 0.0,
                     extra_loss: Callable[[torch.Generator], torch.Tensor] | None = None) -> float:
    """One pass of REINFORCE over shuffled minibatches: minimise ``-log pi(a|o) * G``; returns the mean loss.

    ``actions`` are in the policy's normalised units (what :meth:`Policy.action_distribution` models),
    followed by the latent columns the policy drew when acting, if any;
    ``min_std`` floors the std as in :func:`exploration_distribution`. With ``bounds`` (env-unit
    action low/high) and ``bound_weight``, the squared excess of the mean action beyond the bounds
    is penalised: the env clips actions, so past a bound every sample acts alike, nothing pulls the
    mean back, and (measured) it drifts to hundreds of times the bound until the robot only slams
    into walls. ``extra_loss(generator)``, if given, is added to every minibatch's loss (as in
    :func:`~automimic.algos.ppo.ppo_update`).
    """
    policy.train()
    order = torch.randperm(len(obs), generator=generator)
    losses = []
    low = high = None
    if bounds is not None and bound_weight > 0:
        low, high = (torch.as_tensor(b, dtype=torch.float32) for b in bounds)
    # Columns past the action are the latent the policy drew when acting (e.g. DDIM starting noise).
    actions, latents = actions[:, :policy.action_dim], actions[:, policy.action_dim:]
    for chunk in order.split(minibatch):
        dist = exploration_distribution(policy, obs[chunk], min_std, learn_std,
                                        latents[chunk] if latents.shape[1] else None)
        loss = -(dist.log_prob(actions[chunk]) * returns[chunk]).mean()
        if low is not None:
            mean = policy.unnormalize_actions(dist.mean)
            excess = torch.relu(mean - high) + torch.relu(low - mean)
            loss = loss + bound_weight * (excess ** 2).sum(-1).mean()
        if extra_loss is not None:
            loss = loss + extra_loss(generator)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(policy.parameters(), grad_clip)
        opt.step()
        losses.append(loss.item())
    policy.eval()
    return float(np.mean(losses))


def _optimizer_state(optimizer: torch.optim.Optimizer, value: ValueBaseline | None) -> dict[str, Any]:
    return {"optimizer": optimizer.state_dict(), "value": value.state() if value is not None else None}


def _load_optimizer_state(optimizer: torch.optim.Optimizer, value: ValueBaseline | None, state: dict[str, Any]) -> None:
    optimizer.load_state_dict(state["optimizer"])
    if value is not None:
        value.load(state["value"])


@dataclass
class PPORule:
    """PPO on GAE advantages of ``scale(rewards)``, then the value fit on the same batch.

    Args:
        policy: the policy being trained (it must have an action distribution).
        optimizer: its optimiser.
        value: the critic.
        ppo: the update's settings (its ``gae_lambda`` too).
        gamma: discount.
        min_std: floor on the action std, in normalised action units.
        learn_std: let PPO change the action std.
        scale: maps an episode's rewards to the ones learned from (keeps value targets near unit size).
        extra_loss: added to every minibatch's loss (e.g. :func:`~automimic.algos.on_policy.bc_regulariser`).
        update: the PPO update.
    """

    policy: Policy
    optimizer: torch.optim.Optimizer
    value: ValueBaseline
    ppo: PPOConfig
    gamma: float
    min_std: float
    learn_std: bool
    scale: Callable[[np.ndarray], np.ndarray] = lambda r: r
    extra_loss: Callable[[torch.Generator], torch.Tensor] | None = None
    update: Callable[..., Any] = ppo_update

    def begin(self, generator: torch.Generator) -> None:
        """No warm-up."""

    def learn(self, batch: Labelled, generator: torch.Generator, counters: dict[str, Any]) -> dict[str, float]:
        """One PPO update and value fit; returns the update's KL and clip fraction and the mean scaled return."""
        rewards = [self.scale(r) for r in batch.rewards]
        obs, acts, advantages, targets = gae_batch(
            [episode_states(e, self.policy.obs_keys) for e in batch.episodes], rewards, batch.terminals,
            [e.attrs["kept"] for e in batch.episodes], self.value, self.gamma, self.ppo.gae_lambda,
            self.policy.history)
        stats = self.update(self.policy, self.optimizer, obs, acts, advantages, self.ppo, generator, self.min_std,
                            self.learn_std, self.extra_loss)
        self.value.fit(obs if obs.dim() == 2 else obs[:, -1], targets, generator)
        return {"approx_kl": stats.approx_kl, "clip_fraction": stats.clip_fraction,
                "mean_return": float(np.mean([r.sum() for r in rewards]))}

    def state(self) -> dict[str, Any]:
        """Optimiser and critic."""
        return _optimizer_state(self.optimizer, self.value)

    def load(self, state: dict[str, Any], past: Callable[[], Labelled]) -> None:
        """Inverse of :meth:`state` (PPO keeps no past batches)."""
        _load_optimizer_state(self.optimizer, self.value, state)


@dataclass
class ReinforceRule:
    """One pass of REINFORCE on the discounted returns, scaled by ``1/horizon``, minus a baseline.

    Args:
        policy: the policy being trained.
        optimizer: its optimiser.
        gamma: discount.
        horizon: the returns' divisor (an episode's step budget).
        minibatch: REINFORCE minibatch.
        baseline: ``none``, ``batch`` (returns standardised over the batch) or, with ``value``, minus ``V``.
        value: the learned state value (``None`` unless ``baseline="value"``).
        offset: subtracted from an episode's returns before scaling (steps-to-go's ``pace`` baseline).
        grad_clip, min_std, learn_std, bounds, bound_weight, extra_loss: see :func:`reinforce_update`.
        update: the REINFORCE update.
    """

    policy: Policy
    optimizer: torch.optim.Optimizer
    gamma: float
    horizon: int
    minibatch: int
    baseline: str = "none"
    value: ValueBaseline | None = None
    offset: Callable[[Episode], np.ndarray] | None = None
    grad_clip: float = 0.0
    min_std: float = 0.0
    learn_std: bool = True
    bounds: tuple[np.ndarray, np.ndarray] | None = None
    bound_weight: float = 0.0
    extra_loss: Callable[[torch.Generator], torch.Tensor] | None = None
    update: Callable[..., float] = reinforce_update

    def begin(self, generator: torch.Generator) -> None:
        """No warm-up."""

    def learn(self, batch: Labelled, generator: torch.Generator, counters: dict[str, Any]) -> dict[str, float]:
        """One REINFORCE pass; returns its mean loss."""
        obs, acts, rets = self.returns(batch)
        current = obs if obs.dim() == 2 else obs[:, -1]  # the value baseline reads the current step
        if self.baseline == "batch":
            rets = (rets - rets.mean()) / (rets.std() + 1e-8)
        elif self.value is not None:
            advantages = rets - self.value(current)  # V has not seen this batch's returns yet
            self.value.fit(current, rets, generator)
            rets = advantages
        loss = self.update(self.policy, self.optimizer, obs, acts, rets, self.minibatch, generator, self.grad_clip,
                           self.min_std, self.learn_std, self.bounds, self.bound_weight, self.extra_loss)
        return {"loss": loss}

    def returns(self, batch: Labelled) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(obs, kept actions, scaled returns) of a batch; observations are history windows for a chunked policy."""
        obs, acts, rets = [], [], []
        history = self.policy.history
        for episode, rewards in zip(batch.episodes, batch.rewards):
            states = episode_states(episode, self.policy.obs_keys)
            g = discounted_returns(rewards, self.gamma)
            if self.offset is not None:
                g = g - self.offset(episode)
            obs.append(history_windows(states[:-1], history) if history > 0 else states[:-1])
            acts.append(episode.attrs["kept"])
            rets.append(g / self.horizon)
        return (torch.as_tensor(np.concatenate(obs)), torch.as_tensor(np.concatenate(acts)),
                torch.as_tensor(np.concatenate(rets)))

    def state(self) -> dict[str, Any]:
        """Optimiser and value baseline."""
        return _optimizer_state(self.optimizer, self.value)

    def load(self, state: dict[str, Any], past: Callable[[], Labelled]) -> None:
        """Inverse of :meth:`state`."""
        _load_optimizer_state(self.optimizer, self.value, state)
