"""MLP policy: flattened observation -> action, with a deterministic (MSE) or Gaussian (NLL) head."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from automimic.data.normalize import Normalizer
from automimic.data.transitions import Transitions
from automimic.policies.base import STOCHASTIC, Policy, config_value, randn_rows, register_policy


@dataclass
class MLPConfig:
    """Configuration of :class:`MLPPolicy`.

    Args:
        obs_keys: observation keys to concatenate (filled from the data when empty).
        hidden: hidden layer widths.
        head: ``deterministic`` trains with MSE; ``gaussian`` with negative log-likelihood and a
            state-dependent diagonal std (``act`` returns the mean unless asked to sample).
        dropout: dropout after each hidden layer.
        log_std_min: lower clamp of the Gaussian log std (keeps the NLL bounded).
        log_std_max: upper clamp of the Gaussian log std.
        obs_std_floor: smallest std the observation normaliser divides by. Features that barely
            vary across a few demos (a goal coordinate, a padded slot) would otherwise turn small
            test-time differences into huge normalised inputs.
        obs_noise: std of Gaussian noise added to normalised observations during training, a cheap
            regulariser that makes few-demo policies tolerate states slightly off the demos.
    """

    obs_keys: tuple[str, ...] = ()
    hidden: tuple[int, ...] = (256, 256, 256)
    head: Literal["deterministic", "gaussian"] = "deterministic"
    dropout: float = 0.0
    log_std_min: float = -5.0
    log_std_max: float = 1.0
    obs_std_floor: float = 0.1
    obs_noise: float = 0.0

    def __post_init__(self) -> None:
        if self.head not in ("deterministic", "gaussian"):
            raise ValueError(f"head must be 'deterministic' or 'gaussian', got {self.head!r}")
        if not self.hidden or any(h <= 0 for h in self.hidden):
            raise ValueError(f"hidden must be positive layer widths, got {self.hidden}")
        if self.obs_noise < 0:
            raise ValueError(f"obs_noise must be >= 0, got {self.obs_noise}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


@register_policy("mlp")
class MLPPolicy(Policy):
    """``obs (B, D_obs) -> action (B, D_act)``; inputs and targets normalised inside the module."""

    Config = MLPConfig

    @classmethod
    def capabilities(cls, config: Mapping[str, Any] | MLPConfig) -> frozenset[str]:
        """Stochastic with the Gaussian head only: the deterministic head has no distribution to score."""
        return frozenset({STOCHASTIC}) if config_value(cls, config, "head") == "gaussian" else frozenset()

    @classmethod
    def enabling_settings(cls, capability: str, config: Mapping[str, Any] | MLPConfig) -> dict[str, Any] | None:
        """``{"head": "gaussian"}`` makes it stochastic."""
        if capability in cls.capabilities(config):
            return {}
        return {"head": "gaussian"} if capability == STOCHASTIC else None

    def __init__(self, config: MLPConfig, obs_dim: int, action_dim: int) -> None:
        super().__init__(config, obs_dim, action_dim)
        layers: list[nn.Module] = []
        width = obs_dim
        for h in config.hidden:
            layers += [nn.Linear(width, h), nn.GELU()]
            if config.dropout:
                layers.append(nn.Dropout(config.dropout))
            width = h
        self.trunk = nn.Sequential(*layers)
        out = action_dim * (2 if config.head == "gaussian" else 1)
        self.head = nn.Linear(width, out)
        self.obs_norm = Normalizer(obs_dim, min_std=config.obs_std_floor)
        self.action_norm = Normalizer(action_dim)

    def fit_normalizers(self, data: Transitions) -> None:
        """Fit observation and action statistics on the training pairs."""
        self.obs_norm.fit(data.obs)
        self.action_norm.fit(data.actions)

    def features(self, obs: torch.Tensor) -> torch.Tensor:
        """The trunk's output for ``obs`` ``(B, D_obs)``: what the action head and a steps-to-go head read."""
        x = self.obs_norm(obs)
        if self.training and self.config.obs_noise > 0:
            x = x + self.config.obs_noise * torch.randn_like(x)
        return self.trunk(x)

    @property
    def feature_dim(self) -> int:
        """Width of the last hidden layer."""
        return self.config.hidden[-1]

    def action_distribution(self, obs: torch.Tensor,
                            latent: torch.Tensor | None = None) -> torch.distributions.Distribution:
        """Diagonal Gaussian over normalised actions (Gaussian head only; no latent)."""
        if self.config.head != "gaussian":
            raise ValueError("an action distribution needs policy_config.head=gaussian")
        mean, log_std = self._forward(obs)
        return torch.distributions.Independent(torch.distributions.Normal(mean, log_std.exp()), 1)

    def _forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        out = self.head(self.features(obs))
        if self.config.head == "deterministic":
            return out, None
        mean, log_std = out.chunk(2, dim=-1)
        return mean, log_std.clamp(self.config.log_std_min, self.config.log_std_max)

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """MSE (deterministic) or Gaussian NLL (gaussian) in normalised action space."""
        target = self.normalize_actions(batch["actions"])
        mean, log_std = self._forward(batch["obs"])
        mse = ((mean - target) ** 2).mean()
        if log_std is None:
            return {"loss": mse, "mse": mse}
        nll = (0.5 * ((target - mean) / log_std.exp()) ** 2 + log_std + 0.5 * np.log(2 * np.pi)).sum(-1).mean()
        return {"loss": nll, "mse": mse, "nll": nll}

    def log_prob(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Per-sample log-likelihood ``(B,)`` of env-unit ``actions`` (Gaussian head only)."""
        return self.action_distribution(obs).log_prob(self.action_norm(actions))

    @torch.no_grad()
    def act(self, obs: np.ndarray, deterministic: bool = True,
            generators: Sequence[torch.Generator] | None = None) -> np.ndarray:
        """Actions in env units for ``obs`` ``(B, D_obs)``; samples the Gaussian when not deterministic."""
        mean, log_std = self._forward(torch.as_tensor(obs, dtype=torch.float32))
        if log_std is not None and not deterministic:
            mean = mean + log_std.exp() * randn_rows(len(mean), mean.shape[1:], generators)
        return self.action_norm.unnormalize(mean).numpy()
