"""The one PPO implementation (clipped surrogate, GAE, value function, entropy bonus, KL monitoring).

Everything on-policy in automimic that wants PPO calls :func:`ppo_update` on a batch of steps with
advantages from :func:`gae`; the value function is a
:class:`~automimic.algos.value_baseline.ValueBaseline` refit on the GAE returns. Actions are in the
policy's normalised units followed by any latent the policy drew when acting, exactly what the
practising actor keeps (:class:`~automimic.rollout.actors.PracticeActor`), so PPO scores the same
samples REINFORCE would.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from automimic.policies import Policy
from automimic.policies.exploration import exploration_distribution


KL_CHECKS = ("epoch", "minibatch")

# Stable-Baselines3's margin on target_kl for its per-minibatch stop.
MINIBATCH_KL_MARGIN = 1.5


@dataclass
class PPOConfig:
    """PPO settings (defaults are the common ones of the PPO paper's continuous-control runs).

    Args:
        clip: clip range ``epsilon`` of the probability ratio.
        epochs: passes over each batch (fewer when ``target_kl`` stops early).
        minibatch: steps per gradient step.
        gae_lambda: ``lambda`` of generalised advantage estimation (the discount is the caller's).
        entropy_coef: weight of the entropy bonus.
        normalize_advantages: standardise advantages per minibatch.
        target_kl: stop the epochs once the approximate KL to the acting policy exceeds this (0: never).
        kl_check: when ``target_kl`` is checked: ``epoch`` (the mean over each finished epoch) or
            ``minibatch`` (before every gradient step, on that minibatch, as Stable-Baselines3
            does, with its 1.5 margin). Per epoch, a whole epoch at a too-large learning rate runs
            before the check; per minibatch the update stops at the first minibatch past the limit.
        grad_clip: max gradient norm (0: off).
    """

    clip: float = 0.2
    epochs: int = 10
    minibatch: int = 64
    gae_lambda: float = 0.95
    entropy_coef: float = 0.0
    normalize_advantages: bool = True
    target_kl: float = 0.03
    kl_check: str = "epoch"
    grad_clip: float = 0.5

    def __post_init__(self) -> None:
        if self.clip <= 0 or self.epochs < 1 or self.minibatch < 1:
            raise ValueError("clip must be > 0, epochs and minibatch >= 1")
        if not 0.0 <= self.gae_lambda <= 1.0:
            raise ValueError(f"gae_lambda must be in [0, 1], got {self.gae_lambda}")
        if self.kl_check not in KL_CHECKS:
            raise ValueError(f"kl_check must be one of {KL_CHECKS}, got {self.kl_check!r}")


def gae(rewards: np.ndarray, values: np.ndarray, last_value: float, gamma: float, lam: float,
        terminal: bool) -> tuple[np.ndarray, np.ndarray]:
    """Generalised advantage estimates and value targets of one episode.

    ``rewards`` and ``values`` are ``(T,)``; ``last_value`` is ``V`` of the state after the last
    step, used only when the episode was cut (``terminal=False``: horizon or budget), since after a
    true end nothing more is earned. Returns ``(advantages, returns)`` with ``returns = A + V``.
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    next_values = np.append(values[1:], 0.0 if terminal else float(last_value))
    deltas = rewards + gamma * next_values - values
    advantages = np.zeros_like(deltas)
    running = 0.0
    for t in range(len(deltas) - 1, -1, -1):
        running = deltas[t] + gamma * lam * running
        advantages[t] = running
    return advantages.astype(np.float32), (advantages + values).astype(np.float32)


def log_probs(policy: Policy, obs: torch.Tensor, actions: torch.Tensor, min_std: float = 0.0,
              learn_std: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """``log pi(a|o)`` and the entropy per step under ``policy``'s exploration distribution.

    ``actions`` holds the normalised action followed by the latent the policy drew, if any.
    """
    acts, latents = actions[:, :policy.action_dim], actions[:, policy.action_dim:]
    dist = exploration_distribution(policy, obs, min_std, learn_std, latents if latents.shape[1] else None)
    return dist.log_prob(acts), dist.entropy()


@dataclass(frozen=True)
class PPOStats:
    """What one update did: losses, and how far the policy moved (what to monitor)."""

    policy_loss: float
    entropy: float
    approx_kl: float
    clip_fraction: float
    epochs: int
    updates: int


def ppo_update(policy: Policy, opt: torch.optim.Optimizer, obs: torch.Tensor, actions: torch.Tensor,
               advantages: torch.Tensor, cfg: PPOConfig, generator: torch.Generator, min_std: float = 0.0,
               learn_std: bool = True, extra_loss: Callable[[torch.Generator], torch.Tensor] | None = None) -> PPOStats:
    """Clipped-surrogate epochs over one batch of steps gathered with the current weights.

    The acting policy's log-probabilities are recomputed here before the first step, so the
    ratio starts at 1 exactly. Updating stops early when the approximate KL (``E[(r - 1) - log r]``)
    passes ``cfg.target_kl``: the mean of a finished epoch, or (``kl_check="minibatch"``) a
    minibatch's before its step, which is then not taken. ``extra_loss(generator)``, if given, is added to every
    minibatch's loss (e.g. BC -> RL's behaviour-cloning regulariser on a demo minibatch).
    """
    policy.eval()
    with torch.no_grad():
        old, _ = log_probs(policy, obs, actions, min_std, learn_std)
    policy.train()
    kls, clipped, losses, entropies = [], [], [], []
    epochs = updates = 0
    stop = False
    for epochs in range(1, cfg.epochs + 1):
        epoch_kl = []
        for chunk in torch.randperm(len(obs), generator=generator).split(cfg.minibatch):
            adv = advantages[chunk]
            if cfg.normalize_advantages and len(chunk) > 1:
                adv = (adv - adv.mean()) / (adv.std() + 1e-8)
            new, entropy = log_probs(policy, obs[chunk], actions[chunk], min_std, learn_std)
            log_ratio = new - old[chunk]
            ratio = log_ratio.exp()
            surrogate = torch.min(ratio * adv, ratio.clamp(1 - cfg.clip, 1 + cfg.clip) * adv)
            with torch.no_grad():
                epoch_kl.append(float(((ratio - 1) - log_ratio).mean()))
                clipped.append(float(((ratio - 1).abs() > cfg.clip).float().mean()))
            if (cfg.kl_check == "minibatch" and cfg.target_kl > 0
                    and epoch_kl[-1] > MINIBATCH_KL_MARGIN * cfg.target_kl):
                stop = True
                break
            loss = -surrogate.mean() - cfg.entropy_coef * entropy.mean()
            if extra_loss is not None:
                loss = loss + extra_loss(generator)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(policy.parameters(), cfg.grad_clip)
            opt.step()
            updates += 1
            losses.append(float(loss.detach()))
            entropies.append(float(entropy.detach().mean()))
        kls.append(float(np.mean(epoch_kl)))
        if stop or (cfg.kl_check == "epoch" and cfg.target_kl > 0 and kls[-1] > cfg.target_kl):
            break
    policy.eval()
    # nan when the very first minibatch was already past the limit and nothing was stepped.
    return PPOStats(float(np.mean(losses)) if losses else float("nan"),
                    float(np.mean(entropies)) if entropies else float("nan"), kls[-1], float(np.mean(clipped)),
                    epochs, updates)
