"""The adversarial-imitation discriminator: tells expert transitions from the policy's (GAIL's reward model).

It reads ``(s, a)`` or ``(s, s')`` (the latter needs no expert actions, as in learning from
observation), normalised with statistics fitted on the expert data. Trained by logistic regression
with expert = 1 and policy = 0, optionally with a gradient penalty on interpolated inputs that keeps
the logit 1-Lipschitz along them (without it the discriminator soon separates perfectly and its
reward saturates). GAIL's reward is ``-log(1 - D(x)) = softplus(logit)``: high where the
transition looks expert.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from automimic.data.normalize import Normalizer

INPUTS = ("sa", "ss")


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
        layers: list[nn.Module] = []
        for h in self.config.hidden:
            layers += [nn.Linear(width, h), nn.GELU()]
            width = h
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)
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
        self.train()
        e, p = self.logits(expert), self.logits(policy)
        loss = F.binary_cross_entropy_with_logits(e, torch.ones_like(e)) + \
            F.binary_cross_entropy_with_logits(p, torch.zeros_like(p))
        gp = torch.tensor(0.0)
        if self.config.gradient_penalty > 0:
            n = min(len(expert), len(policy))
            mix = torch.rand(n, 1, generator=generator)
            x = (mix * expert[:n] + (1 - mix) * policy[:n]).requires_grad_(True)
            grad, = torch.autograd.grad(self.logits(x).sum(), x, create_graph=True)
            gp = ((grad.norm(dim=-1) - 1) ** 2).mean()
            loss = loss + self.config.gradient_penalty * gp
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.eval()
        return {"loss": float(loss.detach()), "gradient_penalty": float(gp.detach()),
                "expert_accuracy": float((e > 0).float().mean()), "policy_accuracy": float((p < 0).float().mean())}

    @torch.no_grad()
    def reward(self, x: torch.Tensor) -> np.ndarray:
        """GAIL's reward ``-log(1 - D(x))`` per transition."""
        return F.softplus(self.logits(x)).numpy()
