"""A categorical steps-to-go head that any policy can carry (arXiv 2509.15155, stage 1).

The head reads the policy's own features of an observation and predicts ``K = t_success - t``, the
number of steps left until the episode succeeds, as a distribution over equal-width bins. Its
expectation ``d(o) = E[K]`` is what the self-improvement stage turns into a reward and a success
detector. Labels exist only on successful episodes; steps of failed ones carry ``-1`` and are
masked out of the loss (labels: :func:`automimic.data.transitions.steps_to_go_labels`).

An ensemble (``ensemble`` > 1) trains that many independently initialised heads on the same labels
and reads ``d = mean + pessimism * std`` over their expectations. Why: practice maximises progress
under ``d``, so it seeks the states where ``d`` is wrongly low, and a state is only cheap under the
ensemble if every head is fooled at once. Measured on push-v3 (5 demos): where off-policy practice
had gamed a single head (its ``d`` 3.8), five heads trained afresh on the same demos read 15.5
steps (``benchmarks/stg_ensemble_probe.py``); on reach and pick-place they agreed with the gamed
head, and practising on the ensemble did not help on any of the four tasks (docs/practice.md,
"What was tried against the gamed head"), so a single head stays the default.
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
    ensemble: int = 1
    pessimism: float = 0.0

    def __post_init__(self) -> None:
        if self.bins < 2:
            raise ValueError(f"steps_to_go.bins must be >= 2, got {self.bins}")
        if self.max_steps <= 0:
            raise ValueError(f"steps_to_go.max_steps must be positive, got {self.max_steps}")
        if self.weight < 0 or self.bc_weight < 0:
            raise ValueError("steps_to_go.weight and steps_to_go.bc_weight must be >= 0")
        if self.ensemble < 1 or self.pessimism < 0:
            raise ValueError(f"steps_to_go.ensemble must be >= 1 and steps_to_go.pessimism >= 0, "
                             f"got {self.ensemble} and {self.pessimism}")
        if self.pessimism > 0 and self.ensemble == 1:
            raise ValueError("steps_to_go.pessimism weighs the spread between heads: set steps_to_go.ensemble >= 2 too")


class StepsToGoHead(nn.Module):
    """Features ``(B, F)`` -> logits ``(B, bins)`` over binned steps-to-go (``(E, B, bins)`` for an ensemble of ``E``)."""

    def __init__(self, config: StepsToGoHeadConfig, feature_dim: int) -> None:
        super().__init__()
        self.config = config
        if config.ensemble == 1:
            self.net = mlp(feature_dim, tuple(config.hidden), config.bins)
        else:  # a separate attribute, so a single head's checkpoints keep their parameter names
            self.members = nn.ModuleList(mlp(feature_dim, tuple(config.hidden), config.bins)
                                         for _ in range(config.ensemble))
        width_of_bin = config.max_steps / config.bins
        self.register_buffer("centres", (torch.arange(config.bins, dtype=torch.float32) + 0.5) * width_of_bin)

    def bin_of(self, steps: torch.Tensor) -> torch.Tensor:
        """Bin index (the training label) of steps-to-go values ``(B,)``."""
        idx = torch.floor(steps / self.config.max_steps * self.config.bins).long()
        return idx.clamp(0, self.config.bins - 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, bins)``, or ``(E, B, bins)`` for an ensemble of ``E`` heads."""
        if self.config.ensemble == 1:
            return self.net(features)
        return torch.stack([member(features) for member in self.members])

    def expected(self, logits: torch.Tensor) -> torch.Tensor:
        """``d`` ``(B,)`` in steps, from logits ``(B, bins)``: ``E[K]``, the probability-weighted bin centres;
        from an ensemble's ``(E, B, bins)``: the heads' mean ``E[K]`` plus ``pessimism`` times their std."""
        d = F.softmax(logits, dim=-1) @ self.centres
        if logits.dim() == 2:
            return d
        return d.mean(0) + self.config.pessimism * d.std(0, unbiased=False)

    def loss(self, features: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the label bins, over the samples whose label is known (0 if none is); an
        ensemble's is the mean over its heads."""
        known = steps >= 0
        if not bool(known.any()):
            return features.sum() * 0.0  # keeps the graph; a batch of failures teaches the head nothing
        logits, bins = self.forward(features[known]), self.bin_of(steps[known])
        if logits.dim() == 3:
            return F.cross_entropy(logits.flatten(0, 1), bins.repeat(len(logits)))
        return F.cross_entropy(logits, bins)
