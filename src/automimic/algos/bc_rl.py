"""BC -> RL fine-tuning: PPO on the env's reward, starting from a behaviour-cloned policy, with a BC regulariser.

The policy is behaviour-cloned on the demos, then trained by the shared PPO stage
(:mod:`automimic.algos.on_policy`) on the env's own reward. Every PPO minibatch also pays
``bc_weight`` times the policy's imitation loss on a demo minibatch, so fine-tuning does not forget
the demos while the reward is still uninformative.

Run folder::

    out/config.yaml        resolved BCRLConfig
    out/bc/                the BC stage (checkpoints, metrics, TensorBoard)
    out/rl.pt, out/iterations.jsonl, out/practice.h5, out/metrics.jsonl, out/tb/   the RL stage (see on_policy)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from automimic.algos.on_policy import (EnvReward, OnPolicyConfig, RLIteration, bc_regulariser, check_rl_policy,
                                       initial_policy, load_rl_policy, rl_setup, run_on_policy, write_report)
from automimic.algos.registry import Algorithm, register
from automimic.algos.run_config import DemoSource, PolicyChoice
from automimic.config import to_dict
from automimic.training.loop import TrainConfig


@dataclass
class BCRLConfig(PolicyChoice, DemoSource):
    """A BC -> RL run: the fields of :class:`~automimic.algos.run_config.DemoSource` and
    :class:`~automimic.algos.run_config.PolicyChoice` (``seed``, ``data``, ``env_id``, ``demos``,
    ``policy``, ``policy_config``), and:

    Args:
        policy_config: default: a Gaussian-head MLP. The policy must have an action distribution.
        bc: optimisation settings of the BC stage.
        bc_weight: weight of the BC regulariser in every PPO minibatch (0: plain PPO from the BC start).
        bc_minibatch: demo steps per regulariser term.
        rl: the PPO stage (ours: reward scaled by 0.01, Meta-World's dense reward reaches 10 per step).
    """

    policy_config: dict[str, Any] = field(default_factory=lambda: {"head": "gaussian"})
    bc: TrainConfig = field(default_factory=TrainConfig)
    bc_weight: float = 0.1
    bc_minibatch: int = 256
    rl: OnPolicyConfig = field(default_factory=lambda: OnPolicyConfig(reward_scale=0.01))

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.bc_weight < 0 or self.bc_minibatch < 1:
            raise ValueError("bc_weight must be >= 0 and bc_minibatch >= 1")
        check_rl_policy(self.policy, self.policy_config)


def run_bc_rl(cfg: BCRLConfig, out: str | Path, progress: bool = True,
              on_iteration: Callable[[RLIteration], None] | None = None) -> list[RLIteration]:
    """Run (or resume) BC, then PPO with the BC regulariser, into ``out``; one :class:`RLIteration` per iteration."""
    out = Path(out)
    env_id, demos = rl_setup(cfg.data, cfg.env_id, cfg.demos, out, {"algo": "bc-rl", **to_dict(cfg)})
    policy = initial_policy(demos, env_id, out / "bc", policy=cfg.policy, policy_config=cfg.policy_config,
                            train=cfg.bc, seed=cfg.seed, progress=progress)
    extra = (lambda p: bc_regulariser(p, demos, cfg.bc_weight, cfg.bc_minibatch)) if cfg.bc_weight > 0 else None
    return run_on_policy(policy, EnvReward(), cfg.rl, out, env_id, cfg.seed, extra_loss=extra, progress=progress,
                         on_iteration=on_iteration)


register(Algorithm("bc-rl", BCRLConfig, run_bc_rl, load_rl_policy, report=write_report, evaluated="after RL",
                   stages=("bc-warm-start",)))
