"""Per-dimension normalisation whose statistics live in the policy's ``state_dict`` (so in every checkpoint)."""

from __future__ import annotations

import torch
from torch import nn


class Normalizer(nn.Module):
    """Maps ``x`` to ``(x - mean) / std``; unfitted statistics are NaN so misuse fails loudly.

    Args:
        dim: feature size.
        min_std: floor on the std, so constant features (e.g. a fixed gripper) do not blow up.
    """

    def __init__(self, dim: int, min_std: float = 1e-2) -> None:
        super().__init__()
        self.min_std = min_std
        self.register_buffer("mean", torch.full((dim,), float("nan")))
        self.register_buffer("std", torch.full((dim,), float("nan")))

    @property
    def fitted(self) -> bool:
        """Whether statistics have been fitted or loaded."""
        return not bool(torch.isnan(self.mean).any())

    def fit(self, x: torch.Tensor) -> None:
        """Set statistics from ``x`` of shape ``(N, dim)``."""
        self.mean.copy_(x.mean(0))
        self.std.copy_(x.std(0, unbiased=False).clamp_min(self.min_std))

    def _check(self) -> None:
        if not self.fitted:
            raise RuntimeError("normaliser has no statistics: fit it on data or load a checkpoint that has them")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise ``(..., dim)``."""
        self._check()
        return (x - self.mean) / self.std

    def unnormalize(self, y: torch.Tensor) -> torch.Tensor:
        """Invert :meth:`forward`."""
        self._check()
        return y * self.std + self.mean
