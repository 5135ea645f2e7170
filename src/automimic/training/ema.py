"""Exponential moving average of a policy's weights (SEIL's second roll-out model; DP inference)."""

from __future__ import annotations

import copy

import torch

from automimic.policies import Policy


class EMA:
    """Keeps ``ema = decay * ema + (1 - decay) * weights`` after every optimiser step.

    Buffers (the normalisers' statistics) are copied, not averaged: they are fitted once and must
    match the primary model exactly.

    Args:
        policy: the model being trained; its current weights start the average.
        decay: weight of the old average per step, in [0, 1).
    """

    def __init__(self, policy: Policy, decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"ema decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.model = copy.deepcopy(policy).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, policy: Policy) -> None:
        """Move the average toward ``policy``'s current weights."""
        for avg, new in zip(self.model.parameters(), policy.parameters()):
            avg.lerp_(new, 1.0 - self.decay)
        for avg, new in zip(self.model.buffers(), policy.buffers()):
            avg.copy_(new)
