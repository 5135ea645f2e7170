"""The on-policy RL stage shared by GAIL, AIRL, BC -> RL and residual RL: collect, reward, PPO, evaluate.

The practice engine (:mod:`automimic.algos.engine`) with the :class:`~automimic.algos.schedules.SeedRule`
schedule and the :class:`~automimic.algos.rules.PPORule`, parameterised by where rewards come from (a
:class:`RewardModel`: the env's own reward, a GAIL or AIRL discriminator) and by an optional extra
loss (BC -> RL's behaviour-cloning regulariser). Every iteration gathers ``steps_per_iteration`` env steps of sampled episodes with
the current weights (through the same collectors as every other rollout: in-process, local
workers or Ray), lets the reward model learn from them (a discriminator's step), scores them,
and runs the PPO core (:mod:`automimic.algos.ppo`) with a learned value function as critic.

Episodes end at the horizon, when the env terminates, or (``stop_on_success``) when the task
succeeds. Only the env's own ``terminated`` is a true end; a success stop is treated like a cut
(bootstrapped with ``V``), so ending early never looks like losing the rest of the episode's
reward (with Meta-World's dense reward it otherwise would, and the policy would learn to avoid
succeeding).

Run folder (inside the algorithm's own)::

    out/rl.pt              policy, optimiser, value function, reward model, RNG, counters and rows after the last iteration
    out/iterations.jsonl   one line per finished iteration (iteration 0 = the starting policy)
    out/report.md, out/success.png   success against env steps (write_report)
    out/practice.h5        every sampled episode, with provenance (source self, round = iteration, weights_version)
    out/metrics.jsonl, out/tb/   the same numbers for TensorBoard
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np
import torch

from automimic.checkpoint_io import read_checkpoint
from automimic.algos.bc import checked_demos, fit_policy
from automimic.algos.engine import Checkpoint, Engine, PerIteration, RewardSource, Step, env_terminals, practice_env_kwargs
from automimic.algos.ppo import PPOConfig
from automimic.algos.practice_report import EVAL_COLUMNS, write_practice_report
from automimic.algos.rules import PPORule, episode_states, gae_batch  # noqa: F401  (re-exported)
from automimic.algos.schedules import SeedRule, practice_rollouts  # noqa: F401  (re-exported)
from automimic.algos.value_baseline import ValueBaseline
from automimic.data.episode import Episode
from automimic.data.transitions import Transitions
from automimic.envs import make_env
from automimic.evaluation.evaluate import evaluate
from automimic.policies import Policy, build_policy, policy_from_payload, require_stochastic
from automimic.policies.steps_to_go_head import StepsToGoHeadConfig
from automimic.rollout.actors import ActorSpec
from automimic.rollout.collector import Collector, make_collector
from automimic.rollout.workers import RolloutJob
from automimic.seeding import seed_everything
from automimic.training.loop import TrainConfig
from automimic.training.run_dir import RunDir, read_rows

#: Where the RL stage's rewards come from (GAIL/AIRL discriminators, the env's reward): a reward source.
RewardModel = RewardSource

@dataclass
class OnPolicyConfig:
    """Settings of the on-policy RL stage (defaults: common PPO settings for continuous control).

    Args:
        iterations: PPO iterations.
        steps_per_iteration: env steps gathered per update.
        gamma: discount.
        lr: Adam learning rate of the policy (ours: 3e-5; from a BC start with its std near the
            floor, 3e-4 moved the policy by an approximate KL of 4-10 in one epoch on point/reach).
        ppo: the PPO update's settings (clip, epochs, minibatch, GAE lambda, entropy, KL stop).
        min_std: floor on the policy's action std while sampling and scoring, in normalised action
            units (a BC policy's std is often ~0.01, too little to explore).
        learn_std: let PPO change the action std.
        reward_scale: factor on every reward before the value fit and GAE (keeps value targets
            near unit size; Meta-World's dense reward reaches 10 per step).
        stop_on_success: end an episode when the task succeeds (bootstrapped, see the module docstring).
        perturb: start-position perturbation of the sampled episodes.
        horizon: step budget per episode (0: the env's default).
        robots: envs each worker steps together, one batched policy query per step; results
            depend on it (it fixes the query's batch size), not on ``workers`` or the backend.
        eval_every: evaluate on the eval seeds every this many iterations (and after the last).
        eval_episodes: evaluation episodes.
        workers: rollout workers (processes, or Ray actors with ``--backend ray``).
    """

    iterations: int = 20
    steps_per_iteration: int = 2048
    gamma: float = 0.99
    lr: float = 3e-5
    ppo: PPOConfig = field(default_factory=PPOConfig)
    min_std: float = 0.1
    learn_std: bool = True
    reward_scale: float = 1.0
    stop_on_success: bool = True
    perturb: float = 0.0
    horizon: int = 0
    robots: int = 8
    eval_every: int = 5
    eval_episodes: int = 50
    workers: int = 2

    def __post_init__(self) -> None:
        for name in ("steps_per_iteration", "robots", "eval_every", "eval_episodes", "workers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.iterations < 0 or self.horizon < 0:
            raise ValueError("iterations and horizon must be >= 0")
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma}")
        if self.reward_scale <= 0:
            raise ValueError(f"reward_scale must be > 0, got {self.reward_scale}")


@dataclass(frozen=True)
class RLIteration:
    """One line of ``iterations.jsonl``; evaluation fields are ``None`` on iterations without one."""

    iteration: int
    env_steps: int
    episodes: int
    mean_length: float
    mean_return: float
    env_return: float
    practice_success: float
    success: float | None
    ci_low: float | None
    ci_high: float | None
    eval_length: float | None
    approx_kl: float
    clip_fraction: float
    seconds: float
    dropped: int = 0
    reward_info: dict[str, float] = field(default_factory=dict)

    def line(self) -> str:
        """The per-iteration progress line."""
        text = (f"iter {self.iteration}: env steps {self.env_steps}, episodes {self.episodes}, "
                f"length {self.mean_length:.1f}, return {self.mean_return:.2f}, env return {self.env_return:.1f}, "
                f"practice success {self.practice_success:.2f}, kl {self.approx_kl:.3f}")
        text += "".join(f", {k} {v:.2f}" for k, v in self.reward_info.items())
        if self.success is not None:
            text += f" | eval {self.success:.2f} [{self.ci_low:.2f}, {self.ci_high:.2f}], length {self.eval_length:.1f}"
        return text + f", {self.seconds:.0f}s"


class EnvReward:
    """The env's own reward (BC -> RL and residual RL)."""

    name = "env"

    def update(self, episodes: list[Episode], policy: Policy, generator: torch.Generator) -> dict[str, float]:
        """Nothing to learn."""
        return {}

    def rewards(self, episodes: list[Episode], policy: Policy) -> list[np.ndarray]:
        """The rewards the env returned."""
        return [np.asarray(e.rewards, dtype=np.float32) for e in episodes]

    def terminals(self, episodes: list[Episode]) -> list[bool]:
        """Only the env's own end is final."""
        return env_terminals(episodes)

    def state(self) -> dict[str, Any]:
        """No state."""
        return {}

    def load(self, state: dict[str, Any]) -> None:
        """No state."""


def rl_setup(data: str, env_id: str, demos: int, out: Path, config: dict[str, Any],
             growable: tuple[str, ...] = ()) -> tuple[str, list[Episode]]:
    """The env id and the demos (``demos`` successful ones spread over the store; 0: all) of an RL run,
    whose ``config`` (plus the resolved env id) is written to ``out/config.yaml`` (``growable``: see
    :meth:`RunDir.write_config`)."""
    episodes, env_id = checked_demos(data, env_id, demos, policy=config.get("policy"),
                                     policy_config=config.get("policy_config"))
    if not env_id:
        raise ValueError(f"{data}: the store names no env; pass env_id")
    RunDir(out).write_config({**config, "env_id": env_id}, growable)
    return env_id, episodes


def check_rl_policy(policy: str, policy_config: dict[str, Any]) -> None:
    """Refuse a policy class PPO cannot train (it needs the policy's action log-probabilities)."""
    require_stochastic(policy, policy_config, "on-policy RL")


def action_bounds(env_id: str, cfg: OnPolicyConfig) -> tuple[np.ndarray, np.ndarray]:
    """The env's action low and high (env units)."""
    env = make_env(env_id, **({"horizon": cfg.horizon} if cfg.horizon else {}))
    try:
        return (np.asarray(env.action_space.low, dtype=np.float32), np.asarray(env.action_space.high, dtype=np.float32))
    finally:
        env.close()


def initial_policy(demos: list[Episode], env_id: str, out: Path, *, policy: str, policy_config: dict[str, Any],
                   train: TrainConfig, seed: int, warm_start: bool = True, progress: bool = True,
                   steps_to_go: StepsToGoHeadConfig | None = None, init: Policy | None = None,
                   finetune: str = "full", shared_head: bool = False) -> Policy:
    """The policy RL starts from: behaviour-cloned on ``demos`` into ``out`` (resumable; with a
    ``steps_to_go`` head if given; fine-tuned from ``init``, a pretrained policy, if given), or,
    without ``warm_start``, freshly initialised with normalisers fitted on the demos. ``shared_head``:
    see :func:`~automimic.algos.bc.warm_start`."""
    if warm_start or init is not None:
        RunDir(out).write_config({"algo": "bc-warm-start", "env_id": env_id, "train_episodes": len(demos)})
        return fit_policy(demos, env_id, out, policy=policy, policy_config=policy_config, train=train, seed=seed,
                          steps_to_go=steps_to_go, init=init, finetune=finetune, shared_head=shared_head,
                          progress=progress)
    seed_everything(seed)
    data = Transitions.from_episodes(demos, policy_config.get("obs_keys"))
    model = build_policy(policy, {**policy_config, "obs_keys": data.obs_keys}, data.obs.shape[1],
                         data.actions.shape[1])
    model.fit_normalizers(data)
    return model.eval()


def bc_regulariser(policy: Policy, demos: list[Episode], weight: float,
                   minibatch: int = 256) -> Callable[[torch.Generator], torch.Tensor]:
    """``weight`` times ``policy``'s own imitation loss on a random demo minibatch, for :func:`ppo_update`.

    The loss is taken on whatever module is passed to the closure's owner at call time, i.e. the
    policy being trained, so it keeps pulling PPO back towards the demos (BC -> RL without forgetting).
    """
    data = Transitions.from_episodes(demos, policy.obs_keys)

    def loss(generator: torch.Generator) -> torch.Tensor:
        idx = torch.randint(len(data), (min(minibatch, len(data)),), generator=generator)
        return weight * policy.loss(data.batch(idx, policy.history, policy.chunk))["loss"]

    return loss


def _eval(policy: Policy, env_id: str, cfg: OnPolicyConfig, seed: int, collector: Collector) -> dict[str, float]:
    result = evaluate(policy, env_id, cfg.eval_episodes, seed=seed, workers=collector, horizon=cfg.horizon or None,
                      progress=False)
    return {"success": result.success_rate, "ci_low": result.ci_low, "ci_high": result.ci_high,
            "eval_length": result.mean_length}


@dataclass
class _OnPolicy(PerIteration):
    """The on-policy stage's rows, evaluation and rollout job, for the engine."""

    seed: int = 0
    row_class: ClassVar[type] = RLIteration

    def job(self, counters: dict[str, Any]) -> RolloutJob:
        """Sample with the current weights and the std floor; round = the iteration the episodes are for."""
        env_kwargs = practice_env_kwargs(self.cfg.perturb, self.cfg.horizon)
        return RolloutJob(self.env_id, ActorSpec.sample(self.policy, self.cfg.min_std), env_kwargs, source="self",
                          round=counters["steps"] + 1, stop_on_success=self.cfg.stop_on_success)

    def evaluate(self, collector: Collector) -> dict[str, float]:
        """Success on the eval seeds."""
        return _eval(self.policy, self.env_id, self.cfg, self.seed, collector)

    def row(self, counters: dict[str, Any], step: Step | None, evaluation: dict[str, float] | None) -> RLIteration:
        """One row per iteration (iteration 0: the starting policy)."""
        evaluation = evaluation or dict.fromkeys(("success", "ci_low", "ci_high", "eval_length"))
        if step is None:
            return RLIteration(0, 0, 0, 0.0, 0.0, 0.0, 0.0, **evaluation, approx_kl=0.0, clip_fraction=0.0, seconds=0.0)
        episodes = step.batch.episodes
        return RLIteration(
            counters["steps"], counters["env_steps"], len(episodes), counters["mean_length"],
            step.stats["mean_return"], float(np.mean([e.rewards.sum() for e in episodes])),
            float(np.mean([e.success for e in episodes])), **evaluation, approx_kl=step.stats["approx_kl"],
            clip_fraction=step.stats["clip_fraction"], seconds=step.seconds, dropped=step.dropped,
            reward_info=step.batch.info)


def run_on_policy(policy: Policy, reward: RewardModel, cfg: OnPolicyConfig, out: str | Path, env_id: str, seed: int,
                  *, extra_loss: Callable[[Policy], Callable[[torch.Generator], torch.Tensor]] | None = None,
                  progress: bool = True, on_iteration: Callable[[RLIteration], None] | None = None) -> list[RLIteration]:
    """Run (or resume from ``out/rl.pt``) PPO on ``reward`` starting from ``policy``; one row per iteration.

    ``extra_loss(policy)`` builds the per-minibatch extra loss for the policy being trained.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    policy.practice_execution()
    policy.eval()
    gen = torch.Generator().manual_seed(seed)
    value = ValueBaseline(policy.obs_dim)
    opt = torch.optim.Adam([p for p in policy.parameters() if p.requires_grad], lr=cfg.lr)
    rule = PPORule(policy, opt, value, cfg.ppo, cfg.gamma, cfg.min_std, cfg.learn_std,
                   scale=lambda r: r * cfg.reward_scale,
                   extra_loss=extra_loss(policy) if extra_loss is not None else None)
    schedule = SeedRule(seed, cfg.iterations, cfg.steps_per_iteration, cfg.workers * cfg.robots)
    engine = Engine(policy, reward, rule, schedule, _OnPolicy(policy, cfg, env_id, seed),
                    Checkpoint(out, "rl.pt", "iterations.jsonl"), gen, desc=f"rl ({reward.name} reward)")
    # One set of workers for sampling and evaluation, kept between iterations.
    with make_collector(cfg.workers, envs_per_worker=cfg.robots) as collector:
        return engine.run(collector, env_id, progress, on_iteration)


def load_rl_policy(out: str | Path) -> Policy:
    """The policy after the last finished RL iteration of a run folder (``out/rl.pt``)."""
    path = Path(out) / "rl.pt"
    if not path.exists():
        raise FileNotFoundError(f"{out}: no RL checkpoint ({path}); has the RL stage run?")
    return policy_from_payload(read_checkpoint(path, "RL checkpoint")["policy"])


def write_report(out: str | Path) -> Path:
    """Write ``report.md`` (table of evaluated iterations) and ``success.png`` (success against env steps)."""
    out = Path(out)
    cfg = RunDir(out).read_config()
    rl = cfg["rl"]
    columns = [("iteration", lambda r: r.iteration), ("env steps", lambda r: r.env_steps), *EVAL_COLUMNS,
               ("practice success", lambda r: f"{r.practice_success:.2f}"), ("return", lambda r: f"{r.mean_return:.2f}"),
               ("env return", lambda r: f"{r.env_return:.1f}"), ("kl", lambda r: f"{r.approx_kl:.3f}")]
    intro = (f"`{cfg['algo']}`: {cfg['demos'] or 'all'} expert demos, {rl['steps_per_iteration']} env steps per "
             f"iteration, seed {cfg['seed']}; {rl['eval_episodes']} evaluation episodes per row (eval seeds, 95% "
             "Wilson intervals). Iteration 0 is the starting policy.")
    return write_practice_report(out, read_rows(out / "iterations.jsonl", RLIteration),
                                 f"{cfg['algo']} on {cfg['env_id']}", intro, columns)
