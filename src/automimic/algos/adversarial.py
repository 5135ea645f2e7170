"""Adversarial imitation: GAIL (Ho & Ermon, 2016) and AIRL (Fu et al., 2018) on the shared PPO stage.

A discriminator learns to tell the demos' transitions from the policy's; its output is the reward
the policy is trained on with PPO (:mod:`automimic.algos.on_policy`), so the policy is pushed
towards transitions the discriminator takes for the expert's. Each iteration: sample episodes with
the current policy, take ``disc_steps`` discriminator steps on random expert/policy minibatches,
score the episodes with the updated discriminator, one PPO update. The env's own reward is never
used (only its success, in evaluation and the practice-success column).

Run folder::

    out/config.yaml        resolved AdversarialConfig
    out/bc/                the BC warm start (with ``warm_start``)
    out/rl.pt, out/iterations.jsonl, out/practice.h5, out/metrics.jsonl, out/tb/   the RL stage (see on_policy)
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from automimic.algos.discriminator import AIRLDiscriminator, Discriminator, DiscriminatorConfig
from automimic.algos.engine import env_terminals
from automimic.algos.on_policy import (OnPolicyConfig, RLIteration, action_bounds, check_rl_policy, episode_states,
                                       initial_policy, load_rl_policy, rl_setup, run_on_policy, write_report)
from automimic.algos.registry import Algorithm, register
from automimic.algos.run_config import DemoSource, PolicyChoice
from automimic.algos.ppo import log_probs
from automimic.config import to_dict
from automimic.data.episode import Episode
from automimic.policies import Policy
from automimic.training.loop import TrainConfig

ALGOS = ("gail", "airl")


@dataclass
class AdversarialConfig(PolicyChoice, DemoSource):
    """A GAIL or AIRL run: the fields of :class:`~automimic.algos.run_config.DemoSource` and
    :class:`~automimic.algos.run_config.PolicyChoice` (``seed``, ``data``, ``env_id``, ``demos``,
    ``policy``, ``policy_config``), and:

    Args:
        algo: ``gail`` or ``airl``.
        policy_config: default: a Gaussian-head MLP. The policy must have an action distribution;
            AIRL needs a single-step one.
        warm_start: behaviour-clone the policy on the demos before RL (ours; the original
            algorithms start from scratch, which from 5 demos needs far more env steps).
        bc: optimisation settings of that warm start.
        discriminator: the discriminator's settings (GAIL reads ``inputs`` ``sa`` or ``ss``).
        disc_steps: discriminator gradient steps per iteration.
        disc_batch: expert and policy transitions per discriminator step.
        rl: the PPO stage.
    """

    algo: str = "gail"
    policy_config: dict[str, Any] = field(default_factory=lambda: {"head": "gaussian"})
    warm_start: bool = True
    bc: TrainConfig = field(default_factory=TrainConfig)
    discriminator: DiscriminatorConfig = field(default_factory=lambda: DiscriminatorConfig(gradient_penalty=10.0))
    disc_steps: int = 8
    disc_batch: int = 256
    rl: OnPolicyConfig = field(default_factory=OnPolicyConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.algo not in ALGOS:
            raise ValueError(f"algo must be one of {ALGOS}, got {self.algo!r}")
        if self.disc_steps < 1 or self.disc_batch < 1:
            raise ValueError("disc_steps and disc_batch must be >= 1")
        check_rl_policy(self.policy, self.policy_config)


@dataclass(frozen=True)
class TransitionBatch:
    """``(s, a, s', done)`` rows of some episodes; actions clipped to the env's bounds, as executed."""

    obs: torch.Tensor
    actions: torch.Tensor
    next_obs: torch.Tensor
    done: torch.Tensor

    @classmethod
    def of(cls, episodes: list[Episode], keys: tuple[str, ...], bounds: tuple[np.ndarray, np.ndarray]) -> "TransitionBatch":
        """The transitions of ``episodes``; only an env's own termination counts as done."""
        states = [episode_states(e, keys) for e in episodes]
        done = [np.eye(1, e.length, e.length - 1)[0] * bool(e.attrs.get("terminated", False)) for e in episodes]
        t = lambda x: torch.as_tensor(np.concatenate(x), dtype=torch.float32)  # noqa: E731
        return cls(t([s[:-1] for s in states]), t([np.clip(e.actions, *bounds) for e in episodes]),
                   t([s[1:] for s in states]), t(done))

    def __len__(self) -> int:
        return len(self.obs)


class _AdversarialReward(abc.ABC):
    """What GAIL's and AIRL's rewards share: the demos' transitions, the minibatch steps, the checkpoint."""

    name = "adversarial"

    def __init__(self, disc: torch.nn.Module, expert: list[Episode], keys: tuple[str, ...],
                 bounds: tuple[np.ndarray, np.ndarray], steps: int, batch: int) -> None:
        self.disc, self.keys, self.bounds, self.steps, self.batch = disc, keys, bounds, steps, batch
        self.expert = TransitionBatch.of(expert, keys, bounds)

    @abc.abstractmethod
    def rows(self, tr: TransitionBatch, policy: Policy, kept: torch.Tensor | None) -> torch.Tensor:
        """The discriminator's input rows of transitions ``tr`` (``kept``: the policy's sampled actions)."""

    def update(self, episodes: list[Episode], policy: Policy, generator: torch.Generator) -> dict[str, float]:
        """``steps`` discriminator steps on random expert and policy minibatches; the mean stats."""
        tr = TransitionBatch.of(episodes, self.keys, self.bounds)
        expert = self.rows(self.expert, policy, None)
        mine = self.rows(tr, policy, torch.as_tensor(np.concatenate([e.attrs["kept"] for e in episodes])))
        stats = []
        for _ in range(self.steps):
            ie = torch.randint(len(expert), (self.batch,), generator=generator)
            ip = torch.randint(len(mine), (self.batch,), generator=generator)
            stats.append(self.disc.update(expert[ie], mine[ip], generator))
        return {k: float(np.mean([s[k] for s in stats])) for k in ("expert_accuracy", "policy_accuracy", "loss")}

    def rewards(self, episodes: list[Episode], policy: Policy) -> list[np.ndarray]:
        """The discriminator's reward for every step of every episode."""
        return [self.disc.reward(self.rows(TransitionBatch.of([e], self.keys, self.bounds), policy,
                                           torch.as_tensor(e.attrs["kept"])))
                for e in episodes]

    def terminals(self, episodes: list[Episode]) -> list[bool]:
        """Only the env's own end is final."""
        return env_terminals(episodes)

    def state(self) -> dict[str, Any]:
        """Discriminator weights and optimiser."""
        return {"module": self.disc.state_dict(), "opt": self.disc.opt.state_dict()}

    def load(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`state`."""
        self.disc.load_state_dict(state["module"])
        self.disc.opt.load_state_dict(state["opt"])


class GAILReward(_AdversarialReward):
    """GAIL's reward ``-log(1 - D)`` from a :class:`Discriminator` on ``(s, a)`` or ``(s, s')``."""

    name = "gail"

    def rows(self, tr: TransitionBatch, policy: Policy, kept: torch.Tensor | None) -> torch.Tensor:
        """``[s, a]`` or ``[s, s']``."""
        return self.disc.inputs(tr.obs, tr.actions, tr.next_obs)


class AIRLReward(_AdversarialReward):
    """AIRL's reward ``f(s, s') - log pi(a|s)`` from an :class:`AIRLDiscriminator`.

    ``log pi`` is the current policy's, with the exploration std floor the RL stage samples with.
    """

    name = "airl"

    def __init__(self, *args: Any, min_std: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.min_std = min_std

    def rows(self, tr: TransitionBatch, policy: Policy, kept: torch.Tensor | None) -> torch.Tensor:
        """``[s, s', done, log pi(a|s)]``; the demos' actions are scored in the policy's normalised units."""
        if policy.history > 0:
            raise ValueError(f"AIRL needs a single-step policy (log pi(a|s) of the current state); "
                             f"{policy.name!r} reads a history of {policy.history}")
        actions = policy.normalize_actions(tr.actions) if kept is None else kept
        with torch.no_grad():
            log_pi, _ = log_probs(policy, tr.obs, actions, self.min_std)
        return self.disc.inputs(tr.obs, tr.next_obs, tr.done, log_pi)


def run_adversarial(cfg: AdversarialConfig, out: str | Path, progress: bool = True,
                    on_iteration: Callable[[RLIteration], None] | None = None) -> list[RLIteration]:
    """Run (or resume) GAIL or AIRL (``cfg.algo``) into ``out``; one :class:`RLIteration` per iteration."""
    out = Path(out)
    env_id, demos = rl_setup(cfg.data, cfg.env_id, cfg.demos, out, {"algo": cfg.algo, **to_dict(cfg)})
    policy = initial_policy(demos, env_id, out / "bc", policy=cfg.policy, policy_config=cfg.policy_config,
                            train=cfg.bc, seed=cfg.seed, warm_start=cfg.warm_start, progress=progress)
    torch.manual_seed(cfg.seed)  # the discriminator's initial weights
    bounds = action_bounds(env_id, cfg.rl)
    shared = dict(expert=demos, keys=policy.obs_keys, bounds=bounds, steps=cfg.disc_steps, batch=cfg.disc_batch)
    if cfg.algo == "gail":
        reward = GAILReward(Discriminator(policy.obs_dim, policy.action_dim, cfg.discriminator), **shared)
    else:
        reward = AIRLReward(AIRLDiscriminator(policy.obs_dim, cfg.rl.gamma, cfg.discriminator), **shared,
                            min_std=cfg.rl.min_std)
    return run_on_policy(policy, reward, cfg.rl, out, env_id, cfg.seed, progress=progress, on_iteration=on_iteration)


for _name in ALGOS:
    register(Algorithm(_name, AdversarialConfig, run_adversarial, load_rl_policy, report=write_report,
                       evaluated="after RL", overrides=(f"algo={_name}",), stages=("bc-warm-start",)))
