"""A practising policy: a frozen demo policy (the prior), an RL actor, and the critic that arbitrates.

What off-policy practice (:mod:`automimic.algos.offpolicy`) trains and what it leaves behind: one
module that acts in a rollout worker, evaluates with ``automimic eval`` and saves like any policy.
Three ways to keep the demo policy in the loop, chosen by ``mode``:

* ``select`` (IBRL, Hu et al. 2024): the prior and the actor each propose an action and the
  critic's Q picks one, when acting and in the bootstrap target. Exploration noise goes on the
  actor's proposal only, so wherever the critic still prefers the prior the policy acts exactly as
  the demos taught it: the starting success is protected, and noise lands where the prior fails.
* ``residual``: ``a = a_prior + scale * tanh(r(o))``, the residual's last layer zero at the start, so
  the untrained policy *is* the prior; the actor learns only a bounded correction.
* ``actor``: the actor alone (kept near the demos by a BC term in the learner's actor loss).

Actions are in env units at the interface. Inside, the actor and the critic work with actions
scaled to ``[-1, 1]`` by the env's bounds and with observations normalised by statistics fitted on
the demos.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Sequence

import numpy as np
import torch
from torch import nn

from automimic.data.normalize import Normalizer
from automimic.data.transitions import Transitions
from automimic.policies.base import Policy, build_policy, policy_payload, randn_rows, register_policy
from automimic.policies.critic import QEnsemble
from automimic.policies.layers import mlp
from automimic.policies.residual import FrozenBasePolicy, base_action

MODES = ("select", "residual", "actor")


@dataclass
class PriorActorConfig:
    """Config of :class:`PriorActorPolicy`; ``base``/``base_config`` rebuild the frozen prior in any worker.

    Args:
        base: registered class of the frozen demo policy.
        base_config: its config fields (``obs_keys`` included).
        base_steps_to_go: its steps-to-go head config, if it has one.
        mode: ``select``, ``residual`` or ``actor`` (see the module docstring).
        action_low: the env's lower action bounds.
        action_high: the env's upper action bounds.
        actor_hidden: hidden widths of the actor.
        critic_hidden: hidden widths of each critic.
        critics: critics in the ensemble.
        residual_scale: bound of the residual correction, as a fraction of each action range's half-width.
        explore_std: std of the Gaussian exploration noise on the actor's output in ``[-1, 1]`` units
            when acting stochastically (practice), or on the prior's while ``actor_on`` is off;
            evaluation acts without it.
        select_pessimism: in ``select`` mode the actor's proposal is scored by its ensemble-mean Q
            minus this many ensemble standard deviations, the prior's by its mean: where the critics
            disagree about the actor's action, the prior keeps acting (with two critics, 1.0 is their
            minimum). 0 is IBRL's plain rule.
        obs_std_floor: smallest std the observation normaliser divides by (as for the MLP policy).
    """

    base: str = "mlp"
    base_config: dict[str, Any] = field(default_factory=dict)
    base_steps_to_go: dict[str, Any] | None = None
    mode: Literal["select", "residual", "actor"] = "select"
    action_low: tuple[float, ...] = ()
    action_high: tuple[float, ...] = ()
    actor_hidden: tuple[int, ...] = (256, 256)
    critic_hidden: tuple[int, ...] = (256, 256)
    critics: int = 2
    residual_scale: float = 0.2
    explore_std: float = 0.1
    select_pessimism: float = 0.0
    obs_std_floor: float = 0.1

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"policy_config.mode must be one of {MODES}, got {self.mode!r}")
        if len(self.action_low) != len(self.action_high):
            raise ValueError("policy_config.action_low and action_high must have the same length")
        if any(lo >= hi for lo, hi in zip(self.action_low, self.action_high)):
            raise ValueError(f"policy_config.action_low must be below action_high, got {self.action_low}, "
                             f"{self.action_high}")
        if not 0.0 < self.residual_scale <= 2.0:
            raise ValueError(f"policy_config.residual_scale must be in (0, 2], got {self.residual_scale}")
        if self.explore_std < 0 or self.critics < 1 or self.select_pessimism < 0:
            raise ValueError("policy_config.explore_std and select_pessimism must be >= 0 and critics >= 1")

    @property
    def obs_keys(self) -> tuple[str, ...]:
        """The prior's observation keys."""
        return tuple(self.base_config.get("obs_keys", ()))


@register_policy("prior-actor")
class PriorActorPolicy(FrozenBasePolicy):
    """Prior + actor + critic ensemble, acting as ``mode`` says: ``obs (B, D_obs) -> action (B, D_act)``."""

    Config = PriorActorConfig

    def __init__(self, config: PriorActorConfig, obs_dim: int, action_dim: int) -> None:
        super().__init__(config, obs_dim, action_dim)
        if len(config.action_low) != action_dim:
            raise ValueError(f"policy_config.action_low: expected {action_dim} bounds, got {len(config.action_low)}")
        self.base = build_policy(config.base, config.base_config, obs_dim, action_dim,
                                 steps_to_go=config.base_steps_to_go)
        for p in self.base.parameters():
            p.requires_grad_(False)
        # The actor and critic read the current observation; a chunked prior reads it as its history.
        self.history = 0
        self.obs_norm = Normalizer(obs_dim, min_std=config.obs_std_floor)
        self.actor = mlp(obs_dim, tuple(config.actor_hidden), action_dim)
        if config.mode == "residual":
            nn.init.zeros_(self.actor[-1].weight)
            nn.init.zeros_(self.actor[-1].bias)  # no correction until practice learns one
        self.critic = QEnsemble(obs_dim, action_dim, tuple(config.critic_hidden), config.critics)
        # Whether the actor proposes yet: off while practice only evaluates the prior (a state
        # buffer, so the switch travels to rollout workers with the weights).
        self.register_buffer("actor_on", torch.tensor(True))
        self.register_buffer("_low", torch.tensor(config.action_low, dtype=torch.float32))
        self.register_buffer("_high", torch.tensor(config.action_high, dtype=torch.float32))

    @classmethod
    def from_base(cls, base: Policy, data: Transitions, low: np.ndarray, high: np.ndarray,
                  **config: Any) -> "PriorActorPolicy":
        """Wrap a trained ``base`` (weights copied, frozen); ``data`` (the demos) fits the observation normaliser.

        ``config`` holds further :class:`PriorActorConfig` fields (``mode``, widths, ...).
        """
        payload = policy_payload(base)
        cfg = PriorActorConfig(payload["policy"], payload["config"], payload["steps_to_go"],
                               action_low=tuple(float(x) for x in low), action_high=tuple(float(x) for x in high),
                               **config)
        return cls(cfg, base.obs_dim, base.action_dim).adopt_base(payload, data)

    # units --------------------------------------------------------------------------------------
    def to_unit(self, actions: torch.Tensor) -> torch.Tensor:
        """Env-unit actions -> ``[-1, 1]`` (clipped to the bounds)."""
        return (2 * (actions - self._low) / (self._high - self._low) - 1).clamp(-1.0, 1.0)

    def from_unit(self, unit: torch.Tensor) -> torch.Tensor:
        """``[-1, 1]`` -> env-unit actions."""
        return self._low + (unit.clamp(-1.0, 1.0) + 1) * 0.5 * (self._high - self._low)

    def state(self, obs: torch.Tensor) -> torch.Tensor:
        """What the actor and critic read: the normalised current observation ``(B, D_obs)``."""
        return self.obs_norm(obs if obs.dim() == 2 else obs[:, -1])

    # acting -------------------------------------------------------------------------------------
    def prior_unit(self, obs: torch.Tensor) -> torch.Tensor:
        """The prior's action in ``[-1, 1]`` units ``(B, D_act)`` (no gradient)."""
        return self.to_unit(base_action(self.base, obs))

    def actor_unit(self, state: torch.Tensor, prior: torch.Tensor, noise: torch.Tensor | None = None,
                   actor: nn.Module | None = None) -> torch.Tensor:
        """The actor's proposal in ``[-1, 1]`` units from normalised ``state`` (and the prior's action,
        which a residual corrects); ``noise`` (unit scale) is added before the bound. ``actor`` stands in
        for ``self.actor`` (a learner's target copy)."""
        out = (actor or self.actor)(state)
        if self.config.mode == "residual":
            z = torch.tanh(out) + (noise if noise is not None else 0.0)
            return (prior + self.config.residual_scale * z.clamp(-1.0, 1.0)).clamp(-1.0, 1.0)
        return (torch.tanh(out) + (noise if noise is not None else 0.0)).clamp(-1.0, 1.0)

    def choose(self, state: torch.Tensor, prior: torch.Tensor, proposal: torch.Tensor,
               critic: QEnsemble | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """IBRL's rule: per row the proposal with the higher ensemble-mean Q, the actor's lowered by
        ``select_pessimism`` ensemble stds. Returns (actions, chose_actor)."""
        critic = critic or self.critic
        q_prior = critic(state, prior).mean(0)
        qa = critic(state, proposal)
        q_actor = qa.mean(0)
        if self.config.select_pessimism > 0:
            q_actor = q_actor - self.config.select_pessimism * qa.std(0, unbiased=False)
        pick = q_actor > q_prior
        return torch.where(pick[:, None], proposal, prior), pick

    @torch.no_grad()
    def unit_actions(self, obs: torch.Tensor, noise: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The executed actions in ``[-1, 1]`` units and, per row, whether the actor's proposal was taken."""
        prior = self.prior_unit(obs)
        if not bool(self.actor_on):
            # The prior alone acts (with the exploration noise) while the critic learns what it is worth.
            return (prior + (noise if noise is not None else 0.0)).clamp(-1.0, 1.0), torch.zeros(len(obs), dtype=torch.bool)
        state = self.state(obs)
        proposal = self.actor_unit(state, prior, noise)
        if self.config.mode == "select":
            return self.choose(state, prior, proposal)
        return proposal, torch.ones(len(obs), dtype=torch.bool)

    @torch.no_grad()
    def act(self, obs: np.ndarray, deterministic: bool = True,
            generators: Sequence[torch.Generator] | None = None) -> np.ndarray:
        """Actions in env units; not ``deterministic`` adds the exploration noise to the actor's proposal."""
        x = torch.as_tensor(obs, dtype=torch.float32)
        noise = None
        if not deterministic and self.config.explore_std > 0:
            noise = self.config.explore_std * randn_rows(len(x), (self.action_dim,), generators)
        unit, _ = self.unit_actions(x, noise)
        return self.from_unit(unit).numpy()

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Squared error of the actor's proposal on demo actions (``[-1, 1]`` units): its BC pre-training."""
        return self.imitation_loss(batch["obs"], batch["actions"], self.prior_unit(batch["obs"]))

    def imitation_loss(self, obs: torch.Tensor, actions: torch.Tensor, prior: torch.Tensor) -> dict[str, torch.Tensor]:
        """:meth:`loss` given the prior's actions ``prior`` (``[-1, 1]`` units) at ``obs``: what a learner
        on another device computes, where the prior (a CPU policy) cannot run."""
        proposal = self.actor_unit(self.state(obs), prior)
        mse = ((proposal - self.to_unit(actions)) ** 2).mean()
        return {"loss": mse, "mse": mse}
