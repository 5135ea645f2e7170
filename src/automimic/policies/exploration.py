"""The distribution a policy explores with during on-policy RL: its own, with the std floored."""

from __future__ import annotations

import torch

from automimic.policies.base import Policy


def exploration_distribution(policy: Policy, obs: torch.Tensor, min_std: float, learn_std: bool = True,
                             latent: torch.Tensor | None = None) -> torch.distributions.Distribution:
    """The policy's action distribution with its std floored at ``min_std`` (normalised units).

    Imitation on near-deterministic demos leaves stds of ~0.01 in places; there ``-log pi`` has
    gradients of order 1/std^2, and one such batch throws the weights far off. The floor keeps
    exploration and gradients bounded. ``learn_std=False`` stops gradients into the std, so
    REINFORCE moves only the mean.
    """
    dist = policy.action_distribution(obs, latent)
    std = dist.stddev if learn_std else dist.stddev.detach()
    std = std.clamp_min(min_std) if min_std > 0 else std
    return torch.distributions.Independent(torch.distributions.Normal(dist.mean, std), 1)
