"""A learned state-value baseline for REINFORCE: ``A = G - V(o)``, refit on every iteration's returns.

Without it the return of a step is mostly a function of the state (far from the goal there is more
progress left to make), so REINFORCE's gradient is dominated by which states were visited rather
than by which actions did better there. ``V`` is fitted to the returns of earlier iterations and
used before it sees the current one, so the advantage of an action never includes its own return.
"""

from __future__ import annotations

import torch
from torch import nn

from automimic.data.normalize import Normalizer
from automimic.policies.layers import mlp


class ValueBaseline(nn.Module):
    """MLP ``V(o)`` on normalised observations; the statistics are fitted on the first batch it sees.

    Args:
        obs_dim: size of the flattened observation.
        hidden: hidden layer widths.
        lr: Adam learning rate of the regression.
        epochs: passes over each iteration's data.
        minibatch: regression minibatch.
    """

    def __init__(self, obs_dim: int, hidden: tuple[int, ...] = (128, 128), lr: float = 1e-3,
                 epochs: int = 5, minibatch: int = 256) -> None:
        super().__init__()
        self.obs_norm = Normalizer(obs_dim, min_std=0.1)
        self.net = mlp(obs_dim, hidden, 1)
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)  # V = 0 until fitted: the first iteration is plain REINFORCE
        self.epochs, self.minibatch = epochs, minibatch
        self.opt = torch.optim.Adam(self.net.parameters(), lr=lr)

    @torch.no_grad()
    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """``V(o)`` ``(B,)``; zero before the first :meth:`fit`."""
        if not self.obs_norm.fitted:
            return torch.zeros(len(obs))
        return self.net(self.obs_norm(obs)).squeeze(-1)

    def fit(self, obs: torch.Tensor, returns: torch.Tensor, generator: torch.Generator) -> float:
        """Regress ``V`` onto ``returns`` for ``epochs`` shuffled passes; returns the last mean squared error."""
        if not self.obs_norm.fitted:
            self.obs_norm.fit(obs)
        x = self.obs_norm(obs)
        loss = torch.tensor(0.0)
        for _ in range(self.epochs):
            for chunk in torch.randperm(len(x), generator=generator).split(self.minibatch):
                loss = ((self.net(x[chunk]).squeeze(-1) - returns[chunk]) ** 2).mean()
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                self.opt.step()
        return float(loss.item())

    def state(self) -> dict:
        """Weights and optimiser state, for the practice checkpoint."""
        return {"module": self.state_dict(), "opt": self.opt.state_dict()}

    def load(self, state: dict) -> None:
        """Inverse of :meth:`state`."""
        self.load_state_dict(state["module"])
        self.opt.load_state_dict(state["opt"])
