"""Residual policy: a frozen base policy plus a small learned, bounded correction (residual RL).

``a = a_base + scale * tanh(r(o))`` in env units, where ``a_base`` is the frozen policy's action
(its mean action, or the first action of its chunk for a chunked base) and ``r`` a small MLP whose
last layer starts at zero, so an untrained residual policy acts exactly like its base. RL (the PPO
core) sees a Gaussian around that action with a learned std, in the base's normalised action units.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from automimic.data.normalize import Normalizer
from automimic.data.transitions import Transitions
from automimic.policies.base import Policy, build_policy, policy_payload, randn_rows, register_policy
from automimic.policies.layers import mlp


@dataclass
class ResidualConfig:
    """A residual policy's config; ``base``/``base_config`` rebuild the frozen policy inside any worker.

    Args:
        base: registered class of the frozen policy.
        base_config: its config fields (``obs_keys`` included).
        base_steps_to_go: its steps-to-go head config, if it has one.
        scale: bound of the correction per action dimension, in env units.
        hidden: hidden widths of the residual MLP.
        init_log_std: initial log std of the correction before ``tanh`` scaling.
    """

    base: str = "mlp"
    base_config: dict[str, Any] = field(default_factory=dict)
    base_steps_to_go: dict[str, Any] | None = None
    scale: float = 0.1
    hidden: tuple[int, ...] = (64, 64)
    init_log_std: float = -1.0

    @property
    def obs_keys(self) -> tuple[str, ...]:
        """The base's observation keys."""
        return tuple(self.base_config.get("obs_keys", ()))


class FrozenBasePolicy(Policy):
    """A policy around a frozen base policy (``self.base``) that adds parts of its own, which read the
    current observation normalised by ``self.obs_norm`` (fitted on the demos; the base keeps its own)."""

    base: Policy
    obs_norm: Normalizer

    def train(self, mode: bool = True) -> "FrozenBasePolicy":
        """Training mode for the added parts only: the frozen base always runs as in evaluation."""
        super().train(mode)
        self.base.eval()
        return self

    def fit_normalizers(self, data: Transitions) -> None:
        """Fit the observation statistics the added parts read."""
        obs = data.obs if data.obs.dim() == 2 else data.obs[:, -1]
        self.obs_norm.fit(obs)

    def adopt_base(self, payload: dict[str, Any], data: Transitions) -> "FrozenBasePolicy":
        """Load the base's weights from its ``payload``, fit the normaliser on ``data``, switch to eval."""
        self.base.load_state_dict(payload["state_dict"])
        self.fit_normalizers(data)
        return self.eval()


@register_policy("residual")
class ResidualPolicy(FrozenBasePolicy):
    """``a = a_base + scale * tanh(r(o))`` with the base frozen (see the module docstring)."""

    Config = ResidualConfig

    def __init__(self, config: ResidualConfig, obs_dim: int, action_dim: int) -> None:
        super().__init__(config, obs_dim, action_dim)
        if config.scale <= 0:
            raise ValueError(f"policy_config.scale must be > 0, got {config.scale}")
        self.base = build_policy(config.base, config.base_config, obs_dim, action_dim,
                                 steps_to_go=config.base_steps_to_go)
        for p in self.base.parameters():
            p.requires_grad_(False)
        # The residual acts on the current observation (chunk 0); a chunked base reads that
        # observation as its whole history, which is exact for ACT's default history of 1.
        self.history = 0
        self.action_norm = self.base.action_norm
        self.obs_norm = Normalizer(obs_dim, min_std=0.1)
        self.residual = mlp(obs_dim, tuple(config.hidden), action_dim)
        nn.init.zeros_(self.residual[-1].weight)
        nn.init.zeros_(self.residual[-1].bias)  # no correction until RL trains one
        self.log_std = nn.Parameter(torch.full((action_dim,), float(config.init_log_std)))

    @classmethod
    def from_base(cls, base: Policy, data: Transitions, scale: float = 0.1,
                  hidden: tuple[int, ...] = (64, 64)) -> "ResidualPolicy":
        """Wrap a trained ``base`` (its weights are copied and frozen); ``data`` fits the residual's normaliser."""
        payload = policy_payload(base)
        config = ResidualConfig(payload["policy"], payload["config"], payload["steps_to_go"], scale, hidden)
        return cls(config, base.obs_dim, base.action_dim).adopt_base(payload, data)

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Squared error of the corrected action on demo actions (a residual is normally trained by RL)."""
        obs = batch["obs"]
        mse = ((self._mean_env(obs) - batch["actions"]) ** 2).mean()
        return {"loss": mse, "mse": mse}

    def _mean_env(self, obs: torch.Tensor) -> torch.Tensor:
        current = obs if obs.dim() == 2 else obs[:, -1]
        return base_action(self.base, obs) + self.config.scale * torch.tanh(self.residual(self.obs_norm(current)))

    def action_distribution(self, obs: torch.Tensor,
                            latent: torch.Tensor | None = None) -> torch.distributions.Distribution:
        """Gaussian over normalised actions around the corrected action; the std scales with ``scale``."""
        mean = self.normalize_actions(self._mean_env(obs))
        slope = self.normalize_actions(torch.ones(self.action_dim)) - self.normalize_actions(torch.zeros(self.action_dim))
        std = self.log_std.exp() * self.config.scale * slope.abs()
        return torch.distributions.Independent(torch.distributions.Normal(mean, std.expand_as(mean)), 1)

    @torch.no_grad()
    def act(self, obs: np.ndarray, deterministic: bool = True,
            generators: Sequence[torch.Generator] | None = None) -> np.ndarray:
        """Corrected actions in env units; with a zero residual exactly the base's."""
        x = torch.as_tensor(obs, dtype=torch.float32)
        if deterministic:
            return self._mean_env(x).numpy()
        dist = self.action_distribution(x)
        sample = dist.mean + dist.stddev * randn_rows(len(x), (self.action_dim,), generators)
        return self.unnormalize_actions(sample).numpy()


def base_action(base: Policy, obs: torch.Tensor) -> torch.Tensor:
    """A frozen base policy's mean action in env units for ``obs`` ``(B, D)`` or windows ``(B, H, D)``.

    A chunked base contributes the first action of its chunk; given a single observation it reads
    it as its whole history, which is exact for ACT's default history of 1.
    """
    with torch.no_grad():
        if base.chunk > 0:
            window = obs[:, None].expand(-1, base.history, -1) if obs.dim() == 2 else obs
            return torch.as_tensor(base.predict_chunk(window.numpy())[:, 0])
        return torch.as_tensor(base.act(obs.numpy()))
