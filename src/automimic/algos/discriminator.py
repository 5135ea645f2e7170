"""Adversarial-imitation discriminators: they tell expert transitions from the policy's (GAIL's and AIRL's reward models).

GAIL's (:class:`Discriminator`) reads ``(s, a)`` or ``(s, s')`` (the latter needs no expert
actions, as in learning from observation), normalised with statistics fitted on the expert data.
AIRL's (:class:`AIRLDiscriminator`, Fu et al. 2018) has the structured form
``D = exp f / (exp f + pi(a|s))`` with ``f(s, s') = g(s) + gamma h(s') - h(s)``, so its logit is
``f - log pi(a|s)`` and ``g`` recovers a state-only reward. Both are trained by logistic regression
with expert = 1 and policy = 0, optionally with a gradient penalty on interpolated inputs that keeps
the logit 1-Lipschitz along them (without it the discriminator soon separates perfectly and its
reward saturates). GAIL's reward is ``-log(1 - D(x)) = softplus(logit)``: high where the
transition looks expert; AIRL's is ``log D - log(1 - D)``, the logit itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from automimic.data.normalize import Normalizer
from automimic.policies.layers import mlp

INPUTS = ("sa", "ss")


def logistic_step(module: nn.Module, logits: Callable[[torch.Tensor], torch.Tensor], expert: torch.Tensor,
                  policy: torch.Tensor, generator: torch.Generator,
                  penalised: Callable[[torch.Tensor], torch.Tensor] | None = None) -> dict[str, float]:
    """One discriminator step of ``module`` (it owns ``opt`` and ``config``): expert = 1, policy = 0.

    ``expert`` and ``policy`` are input rows for ``logits``; the gradient penalty (if configured)
    is taken on ``penalised`` (default: ``logits``) at random interpolates of the two.
    """
    module.train()
    e, p = logits(expert), logits(policy)
    loss = F.binary_cross_entropy_with_logits(e, torch.ones_like(e)) + \
        F.binary_cross_entropy_with_logits(p, torch.zeros_like(p))
    gp = torch.tensor(0.0)
    if module.config.gradient_penalty > 0:
        n = min(len(expert), len(policy))
        mix = torch.rand(n, 1, generator=generator)
        x = (mix * expert[:n] + (1 - mix) * policy[:n]).requires_grad_(True)
        grad, = torch.autograd.grad((penalised or logits)(x).sum(), x, create_graph=True)
        gp = ((grad.norm(dim=-1) - 1) ** 2).mean()
        loss = loss + module.config.gradient_penalty * gp
    module.opt.zero_grad(set_to_none=True)
    loss.backward()
    module.opt.step()
    module.eval()
    return {"loss": float(loss.detach()), "gradient_penalty": float(gp.detach()),
            "expert_accuracy": float((e > 0).float().mean()), "policy_accuracy": float((p < 0).float().mean())}


@dataclass
class DiscriminatorConfig:
    """Discriminator settings.

    Args:
        inputs: ``sa`` reads (state, action); ``ss`` reads (state, next state).
        hidden: hidden layer widths.
        lr: Adam learning rate.
        gradient_penalty: weight of ``(||grad_x logit|| - 1)^2`` at random interpolates of expert and
            policy inputs (0: off).
    """

    inputs: str = "sa"
    hidden: tuple[int, ...] = (256, 256)
    lr: float = 3e-4
    gradient_penalty: float = 0.0

    def __post_init__(self) -> None:
        if self.inputs not in INPUTS:
            raise ValueError(f"inputs must be one of {INPUTS}, got {self.inputs!r}")
        if self.gradient_penalty < 0:
            raise ValueError(f"gradient_penalty must be >= 0, got {self.gradient_penalty}")


class Discriminator(nn.Module):
    """``D(x) = sigmoid(logit(x))``, the probability that transition ``x`` is the expert's.

    Args:
        obs_dim: flattened observation size.
        action_dim: action size (unused with ``inputs="ss"``).
        config: settings.
    """

    def __init__(self, obs_dim: int, action_dim: int, config: DiscriminatorConfig | None = None) -> None:
        super().__init__()
        self.config = config or DiscriminatorConfig()
        width = obs_dim + (action_dim if self.config.inputs == "sa" else obs_dim)
        self.norm = Normalizer(width, min_std=0.1)
        self.net = mlp(width, self.config.hidden, 1)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=self.config.lr)

    def inputs(self, obs: torch.Tensor, actions: torch.Tensor | None = None,
               next_obs: torch.Tensor | None = None) -> torch.Tensor:
        """The transition vector the discriminator reads: ``[s, a]`` or ``[s, s']``."""
        other = actions if self.config.inputs == "sa" else next_obs
        if other is None:
            raise ValueError(f"discriminator inputs={self.config.inputs!r} needs "
                             f"{'actions' if self.config.inputs == 'sa' else 'next observations'}")
        return torch.cat([obs, other], dim=-1)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """``logit D(x)`` ``(B,)`` for transition vectors ``x``; statistics come from the first expert batch."""
        if not self.norm.fitted:
            raise RuntimeError("the discriminator has no input statistics yet: update it on expert data first")
        return self.net(self.norm(x)).squeeze(-1)

    def update(self, expert: torch.Tensor, policy: torch.Tensor, generator: torch.Generator) -> dict[str, float]:
        """One gradient step on a batch of expert and of policy transition vectors; returns the losses and accuracies."""
        if not self.norm.fitted:
            self.norm.fit(expert)
        return logistic_step(self, self.logits, expert, policy, generator)

    @torch.no_grad()
    def reward(self, x: torch.Tensor) -> np.ndarray:
        """GAIL's reward ``-log(1 - D(x))`` per transition."""
        return F.softplus(self.logits(x)).numpy()


class AIRLDiscriminator(nn.Module):
    """AIRL's ``D(s, a, s') = exp f / (exp f + pi(a|s))`` with ``f = g(s) + gamma (1 - done) h(s') - h(s)``.

    Its inputs are rows ``[s, s', done, log pi(a|s)]``: the policy's log-probability of the action
    is computed by the caller with the current policy, for expert and policy transitions alike.

    Args:
        obs_dim: flattened observation size.
        gamma: the RL stage's discount (the shaping term's).
        config: settings (``inputs`` is ignored: AIRL always reads ``(s, s')`` and ``log pi``).
    """

    def __init__(self, obs_dim: int, gamma: float, config: DiscriminatorConfig | None = None) -> None:
        super().__init__()
        self.config = config or DiscriminatorConfig()
        self.obs_dim, self.gamma = obs_dim, gamma
        self.norm = Normalizer(obs_dim, min_std=0.1)
        self.g = mlp(obs_dim, self.config.hidden, 1)
        self.h = mlp(obs_dim, self.config.hidden, 1)
        self.opt = torch.optim.Adam(list(self.g.parameters()) + list(self.h.parameters()), lr=self.config.lr)

    @staticmethod
    def inputs(obs: torch.Tensor, next_obs: torch.Tensor, done: torch.Tensor, log_pi: torch.Tensor) -> torch.Tensor:
        """The rows the discriminator reads: ``[s, s', done, log pi(a|s)]``."""
        return torch.cat([obs, next_obs, done[:, None].float(), log_pi[:, None]], dim=-1)

    def f(self, x: torch.Tensor) -> torch.Tensor:
        """The shaped reward ``f(s, s') = g(s) + gamma (1 - done) h(s') - h(s)`` ``(B,)`` of input rows."""
        if not self.norm.fitted:
            raise RuntimeError("the discriminator has no input statistics yet: update it on expert data first")
        d = self.obs_dim
        s, s2, done = self.norm(x[:, :d]), self.norm(x[:, d:2 * d]), x[:, 2 * d]
        return (self.g(s) - self.h(s)).squeeze(-1) + self.gamma * (1 - done) * self.h(s2).squeeze(-1)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """``log D - log(1 - D) = f - log pi`` ``(B,)``."""
        return self.f(x) - x[:, -1]

    def update(self, expert: torch.Tensor, policy: torch.Tensor, generator: torch.Generator) -> dict[str, float]:
        """One gradient step on batches of expert and policy input rows; returns the losses and accuracies."""
        if not self.norm.fitted:
            self.norm.fit(expert[:, :self.obs_dim])
        # The penalty is on f alone: the logit's slope along log pi is -1 by construction.
        return logistic_step(self, self.logits, expert, policy, generator, penalised=self.f)

    @torch.no_grad()
    def reward(self, x: torch.Tensor) -> np.ndarray:
        """AIRL's reward ``log D - log(1 - D)`` per transition."""
        return self.logits(x).numpy()
