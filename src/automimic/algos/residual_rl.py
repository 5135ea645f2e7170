"""Residual RL: freeze a behaviour-cloned policy and learn a bounded correction on the env's reward.

The base (any policy class, chunked ones too) is behaviour-cloned on the demos and frozen; the
shared PPO stage (:mod:`automimic.algos.on_policy`) trains only the correction of a
:class:`~automimic.policies.residual.ResidualPolicy`, ``a = a_base + scale * tanh(r(o))``, on the
env's reward. The correction starts at zero, so iteration 0 is exactly the base.

Run folder::

    out/config.yaml        resolved ResidualRLConfig
    out/bc/                the base's BC stage (checkpoints, metrics, TensorBoard)
    out/rl.pt, out/iterations.jsonl, out/practice.h5, out/metrics.jsonl, out/tb/   the RL stage (see on_policy)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from automimic.algos.on_policy import (EnvReward, OnPolicyConfig, RLIteration, initial_policy, load_rl_policy,
                                       rl_setup, run_on_policy, write_report)
from automimic.algos.registry import Algorithm, register
from automimic.algos.run_config import DemoSource
from automimic.config import to_dict
from automimic.data.transitions import Transitions
from automimic.policies import check_policy_config
from automimic.policies.residual import ResidualPolicy
from automimic.training.loop import TrainConfig


@dataclass
class ResidualRLConfig(DemoSource):
    """A residual RL run: the fields of :class:`~automimic.algos.run_config.DemoSource` (``seed``,
    ``data``, ``env_id``, ``demos``), and:

    Args:
        base: registered class of the frozen base policy (any; it needs no action distribution).
        base_config: its config fields.
        bc: optimisation settings of the base's BC stage.
        scale: bound of the correction per action dimension, in env units.
        hidden: hidden widths of the correction's MLP.
        rl: the PPO stage (ours: reward scaled by 0.01; no std floor, the correction's own std is
            bounded by ``scale``).
    """

    base: str = "mlp"
    base_config: dict[str, Any] = field(default_factory=dict)
    bc: TrainConfig = field(default_factory=TrainConfig)
    scale: float = 0.2
    hidden: tuple[int, ...] = (64, 64)
    rl: OnPolicyConfig = field(default_factory=lambda: OnPolicyConfig(reward_scale=0.01, min_std=0.0))

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.scale <= 0:
            raise ValueError(f"scale must be > 0, got {self.scale}")
        check_policy_config(self.base, self.base_config)  # before the base's BC stage, not after it


def run_residual_rl(cfg: ResidualRLConfig, out: str | Path, progress: bool = True,
                    on_iteration: Callable[[RLIteration], None] | None = None) -> list[RLIteration]:
    """Run (or resume) the base's BC, then PPO on the residual, into ``out``; one :class:`RLIteration` per iteration."""
    out = Path(out)
    env_id, demos = rl_setup(cfg.data, cfg.env_id, cfg.demos, out, {"algo": "residual", **to_dict(cfg)})
    base = initial_policy(demos, env_id, out / "bc", policy=cfg.base, policy_config=cfg.base_config, train=cfg.bc,
                          seed=cfg.seed, progress=progress)
    policy = ResidualPolicy.from_base(base, Transitions.from_episodes(demos, base.obs_keys), cfg.scale, cfg.hidden)
    return run_on_policy(policy, EnvReward(), cfg.rl, out, env_id, cfg.seed, progress=progress,
                         on_iteration=on_iteration)


register(Algorithm("residual", ResidualRLConfig, run_residual_rl, load_rl_policy, report=write_report,
                   evaluated="after RL", stages=("bc-warm-start",)))
