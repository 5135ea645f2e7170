"""A categorical steps-to-go head that any policy can carry (arXiv 2509.15155, stage 1).

The head reads the policy's own features of an observation and predicts ``K = t_success - t``, the
number of steps left until the episode succeeds, as a distribution over equal-width bins. Its
expectation ``d(o) = E[K]`` is what the self-improvement stage turns into a reward and a success
detector. Labels exist only on successful episodes; steps of failed ones carry ``-1`` and are
masked out of the loss (labels: :func:`automimic.data.transitions.steps_to_go_labels`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from automimic.policies.layers import mlp


@dataclass
class StepsToGoHeadConfig:
    """Configuration of :class:`StepsToGoHead`.

    Args:
        bins: number of equal-width bins over ``[0, max_steps]`` (public point-mass code: 50).
        max_steps: upper end of the binned range (public point-mass code: 140); longer labels fall
            in the last bin.
        hidden: hidden widths of the head's MLP on top of the policy features (``()``: linear).
        weight: weight of the steps-to-go loss in the supervised objective.
        bc_weight: weight of the policy's own (behaviour-cloning) loss; the paper weights both 1.
        detach: train the head on the policy's features with no gradient back into them, so the
            steps-to-go loss cannot change what behaviour cloning learns (ours; the paper shares
            the trunk, which is ``False``).
    """

    bins: int = 50
    max_steps: float = 140.0
    hidden: tuple[int, ...] = (256,)
    weight: float = 1.0
    bc_weight: float = 1.0
    detach: bool = False

    def __post_init__(self) -> None:
        if self.bins < 2:
            raise ValueError(f"steps_to_go.bins must be >= 2, got {self.bins}")
        if self.max_steps <= 0:
            raise ValueError(f"steps_to_go.max_steps must be positive, got {self.max_steps}")
        if self.weight < 0 or self.bc_weight < 0:
            raise ValueError("steps_to_go.weight and steps_to_go.bc_weight must be >= 0")


class StepsToGoHead(nn.Module):
    """Features ``(B, F)`` -> logits ``(B, bins)`` over binned steps-to-go."""

    def __init__(self, config: StepsToGoHeadConfig, feature_dim: int) -> None:
        super().__init__()
        self.config = config
        self.net = mlp(feature_dim, tuple(config.hidden), config.bins)
        width_of_bin = config.max_steps / config.bins
        self.register_buffer("centres", (torch.arange(config.bins, dtype=torch.float32) + 0.5) * width_of_bin)

    def bin_of(self, steps: torch.Tensor) -> torch.Tensor:
        """Bin index (the training label) of steps-to-go values ``(B,)``."""
        idx = torch.floor(steps / self.config.max_steps * self.config.bins).long()
        return idx.clamp(0, self.config.bins - 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, bins)``."""
        return self.net(features)

    def expected(self, logits: torch.Tensor) -> torch.Tensor:
        """``d = E[K]`` in steps, from logits ``(B, bins)``: the probability-weighted bin centres."""
        return F.softmax(logits, dim=-1) @ self.centres

    def loss(self, features: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the label bins, over the samples whose label is known (0 if none is)."""
        known = steps >= 0
        if not bool(known.any()):
            return features.sum() * 0.0  # keeps the graph; a batch of failures teaches the head nothing
        return F.cross_entropy(self.forward(features[known]), self.bin_of(steps[known]))
