"""Off-policy practice: every practice step and every demo in one replay, a critic, and the demo policy as prior.

The loop (``automimic improve practice``)::

    demos ─► BC prior (frozen) ─► PriorActorPolicy (prior + actor + critic ensemble)
                                       │ acts in the collector (workers / Ray), noise on the actor's proposal only
                                       ▼
    run store practice.h5 (provenance) ─► reward source labels each episode ─► replay (demos + practice)
                                                                                 │ utd updates per env step
                                       OffPolicyLearner (n-step TD, target nets, IBRL selection) ◄┘

The loop is the practice engine's (:mod:`automimic.algos.engine`): the
:class:`~automimic.algos.schedules.Cycles` schedule, a reward source of
:mod:`~automimic.algos.practice_rewards` and the :class:`OffPolicyRule`. The schedule is
deterministic: cycles of ``robots * workers`` episodes with the current weights, then ``utd`` updates per env step they took, so the run seed alone fixes every number on a given
machine. The budget counts every env step of practice (evaluation is not practice and is not
counted); a cycle starts only if its longest possible outcome still fits the budget.

Reward sources (``reward``): ``success`` — sparse, from the simulator's success flag: 1 at the
success step (``success_reward=binary``) or -1 per step until success (``step``); the episode ends
at success, a true terminal. ``env`` — the env's own reward, terminal only where the env says so.
``steps-to-go`` and ``ot`` — learned rewards that never read the simulator's success or reward in
practice (:mod:`automimic.algos.practice_rewards`; settings in ``learned_reward``).

Run folder::

    out/config.yaml              resolved PracticeConfig (algo: practice)
    out/bc/                      the BC prior (checkpoints, metrics)
    out/practice.h5              every practice episode, with provenance (round = cycle, weights_version)
    out/offpolicy.pt             policy, learner (the rule's state), generator, counters and rows after the last finished cycle
    out/evals.jsonl              one row per evaluation (env steps 0 = after the demo warm-up)
    out/metrics.jsonl, out/tb/   the same numbers for TensorBoard
    out/report.md, out/success.png

A kill loses at most the cycle under way: on resume the replay is rebuilt from the demos and the
store's first ``episodes`` practice episodes, episodes a killed cycle had already stored are reused
(they are a function of their seeds and the checkpointed weights), and the rows, metrics and
numbers continue exactly as an uninterrupted run's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np
import torch

from automimic.checkpoint_io import read_checkpoint
from automimic.algos.engine import Checkpoint, Engine, Labelled, Step, practice_env_kwargs
from automimic.algos.offpolicy import OffPolicyLearner, UpdateConfig
from automimic.algos.bc import pretrained_policy
from automimic.algos.on_policy import episode_states, initial_policy, rl_setup
from automimic.algos.practice_report import EVAL_COLUMNS, write_practice_report
# label and PracticeReward (the simulator's reward source) moved there; re-exported here.
from automimic.algos.practice_rewards import (LEARNED_REWARDS, LearnedRewardConfig, PracticeReward,  # noqa: F401
                                              check_learned_reward, label, learned_reward_report,
                                              learned_reward_source)
from automimic.algos.registry import Algorithm, register
from automimic.algos.run_config import DemoSource, PolicyChoice, PretrainedStart
from automimic.algos.schedules import Cycles, Pipelined
from automimic.config import to_dict
from automimic.data.episode import Episode
from automimic.data.replay import ReplayBuffer
from automimic.data.store import EpisodeStore
from automimic.data.transitions import Transitions
from automimic.envs import make_env
from automimic.evaluation.evaluate import evaluate_episodes
from automimic.policies import Policy, policy_from_payload
from automimic.policies.prior_actor import PriorActorPolicy
from automimic.rollout.actors import ActorSpec
from automimic.rollout.collector import Collector, make_collector
from automimic.rollout.workers import RolloutJob
from automimic.seeding import seed_everything
from automimic.training.loop import TrainConfig
from automimic.training.run_dir import RunDir, read_rows

PRIORS = ("select", "residual", "bc")
REWARDS = ("success", "env", *LEARNED_REWARDS)
SUCCESS_REWARDS = ("binary", "step")


@dataclass
class PracticeConfig(PretrainedStart, PolicyChoice, DemoSource):
    """An off-policy practice run.

    It has the fields of :class:`~automimic.algos.run_config.DemoSource`,
    :class:`~automimic.algos.run_config.PolicyChoice` (the BC prior's class and config) and
    :class:`~automimic.algos.run_config.PretrainedStart` (``seed``, ``data``, ``env_id``,
    ``demos``, ``policy``, ``policy_config``, ``init``, ``finetune``), and:

    Args:
        bc: optimisation settings of the BC prior.
        prior: how the demo policy stays in the loop: ``select`` (IBRL: the critic picks the prior's
            or the actor's action), ``residual`` (a bounded correction on the frozen prior) or ``bc``
            (the actor alone, with ``update.bc_weight`` pulling it to the demos).
        reward: ``success`` (sparse, from the simulator), ``env`` (the env's own reward), or a learned
            reward that reads neither in practice: ``steps-to-go`` (the BC prior's head) or ``ot`` (ROT).
        learned_reward: settings of the ``steps-to-go`` and ``ot`` rewards.
        success_reward: ``binary`` (1 at success) or ``step`` (-1 per step until success).
        env_reward_scale: factor on the env's reward (``reward=env``).
        budget: env steps of practice.
        utd: updates per env step of practice (update-to-data ratio).
        update: the off-policy update's settings.
        warmup_updates: critic updates on the demos alone before practice (the actor is behaviour-
            cloned as many steps in ``select`` and ``bc``).
        actor_start: env steps of practice during which the prior alone acts (with the exploration
            noise) and only the critic learns; then the actor starts to learn and to propose. A critic
            that has seen only demos, all successes, gives the actor gradients that point anywhere:
            measured on push-v3 from 5 demos, an actor trained from the start took success from
            0.64-0.68 to 0.06-0.34 within 6k env steps in every prior mode.
        actor_hidden: hidden widths of the actor.
        critic_hidden: hidden widths of each critic.
        critics: critics in the ensemble.
        residual_scale: bound of the residual (``prior=residual``), as a fraction of the action half-range.
        explore_std: exploration noise on the actor's proposal (``[-1, 1]`` units); on the prior's
            action during the critic-only phase.
        select_pessimism: ``prior=select`` takes the actor's action only where its ensemble-mean Q,
            less this many ensemble stds, beats the prior's (0: IBRL's plain rule; see
            :class:`~automimic.policies.prior_actor.PriorActorConfig`).
        robots: envs each worker steps together; a cycle is ``robots * workers`` episodes.
        async_lag: 0 collects each cycle with the current weights, then learns from it (the
            deterministic default). ``k >= 1`` collects asynchronously: worker processes run up to
            ``k`` cycles ahead while the learner updates, so an episode's weights are at most ``k``
            cycles old (:class:`~automimic.algos.schedules.Pipelined`; results differ from the
            synchronous run's but still repeat and resume exactly). Its workers are always
            separate processes (or Ray actors), even with ``workers=1``.
        workers: rollout workers (processes, or Ray actors with ``--backend ray``).
        perturb: start-position perturbation of practice episodes (evaluation never has one).
        horizon: step budget per episode (0: the env's default).
        eval_every: evaluate every this many env steps of practice (and at 0 and at the end).
        eval_episodes: evaluation episodes.
    """

    bc: TrainConfig = field(default_factory=TrainConfig)
    prior: str = "select"
    reward: str = "success"
    success_reward: str = "binary"
    env_reward_scale: float = 1.0
    learned_reward: LearnedRewardConfig = field(default_factory=LearnedRewardConfig)
    budget: int = 100_000
    utd: float = 0.5
    update: UpdateConfig = field(default_factory=UpdateConfig)
    warmup_updates: int = 1000
    actor_start: int = 10_000
    actor_hidden: tuple[int, ...] = (256, 256)
    critic_hidden: tuple[int, ...] = (256, 256)
    critics: int = 2
    residual_scale: float = 0.2
    explore_std: float = 0.1
    select_pessimism: float = 0.0
    async_lag: int = 0
    robots: int = 8
    workers: int = 1
    perturb: float = 0.0
    horizon: int = 0
    eval_every: int = 10_000
    eval_episodes: int = 50

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.prior not in PRIORS:
            raise ValueError(f"prior must be one of {PRIORS}, got {self.prior!r}")
        if self.reward not in REWARDS:
            raise ValueError(f"reward must be one of {REWARDS}, got {self.reward!r}")
        if self.success_reward not in SUCCESS_REWARDS:
            raise ValueError(f"success_reward must be one of {SUCCESS_REWARDS}, got {self.success_reward!r}")
        if self.prior == "bc" and self.update.bc_weight <= 0:
            raise ValueError("prior 'bc' keeps the actor near the demos through update.bc_weight, which is 0; "
                             "set it > 0 (e.g. --set update.bc_weight=2.5)")
        for name in ("robots", "workers", "eval_every", "eval_episodes", "budget"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.utd <= 0:
            raise ValueError(f"utd must be > 0, got {self.utd}")
        if min(self.warmup_updates, self.horizon, self.perturb, self.actor_start, self.select_pessimism,
               self.async_lag) < 0:
            raise ValueError("warmup_updates, actor_start, horizon, perturb, select_pessimism and async_lag must be >= 0")


@dataclass(frozen=True)
class PracticeRow:
    """One line of ``evals.jsonl``: where practice stands at an evaluation."""

    env_steps: int
    episodes: int
    updates: int
    practice_success: float
    success: float
    ci_low: float
    ci_high: float
    eval_length: float
    critic_loss: float
    actor_loss: float
    q_mean: float
    actor_share: float
    updates_per_s: float
    env_steps_per_s: float
    seconds: float
    reward_info: dict[str, float] = field(default_factory=dict)  # learned rewards: diagnostics at evaluation

    def line(self) -> str:
        """The per-evaluation progress line."""
        return (f"env steps {self.env_steps}: eval {self.success:.2f} [{self.ci_low:.2f}, {self.ci_high:.2f}], "
                f"length {self.eval_length:.1f} | practice success {self.practice_success:.2f}, "
                f"episodes {self.episodes}, updates {self.updates}, q {self.q_mean:.2f}, "
                f"actor share {self.actor_share:.2f}, {self.updates_per_s:.0f} upd/s, "
                f"{self.env_steps_per_s:.0f} steps/s, {self.seconds:.0f}s")


def check_practice(cfg: PracticeConfig, env_id: str) -> tuple[int, np.ndarray, np.ndarray]:
    """Refuse what cannot work, before anything is written; returns the episode horizon and the action bounds."""
    from automimic.policies.base import policy_config_class

    # The class's own config says whether it predicts chunks: no list of class names to keep up to date.
    policy_cfg = policy_config_class(cfg.policy)(**cfg.policy_config)
    chunked = int(getattr(policy_cfg, "chunk", 0) or 0) > 0
    if chunked and cfg.prior != "residual":
        raise ValueError(f"prior {cfg.prior!r}: a chunked policy ({cfg.policy}) practises through a residual on its "
                         "frozen chunks; use --prior residual")
    env = make_env(env_id, **({"horizon": cfg.horizon} if cfg.horizon else {}))
    try:
        horizon = int(env.horizon)
        low = np.asarray(env.action_space.low, dtype=np.float32)
        high = np.asarray(env.action_space.high, dtype=np.float32)
        if cfg.reward == "success" and not env.reports_success:
            raise ValueError(f"reward 'success': {env_id} reports no success flag; use --reward env")
    finally:
        env.close()
    if cfg.budget < horizon:
        raise ValueError(f"budget {cfg.budget} is smaller than one episode ({horizon} steps of {env_id})")
    check_learned_reward(cfg.reward, cfg.learned_reward, cfg.policy, chunked, cfg.policy_config, cfg.budget, horizon)
    return horizon, low, high


def _add(buffer: ReplayBuffer, policy: PriorActorPolicy, batch: Labelled, demo: bool) -> None:
    for episode, rewards, terminal in zip(batch.episodes, batch.rewards, batch.terminals):
        states = episode_states(episode, policy.obs_keys)
        with torch.no_grad():
            prior = policy.prior_unit(torch.as_tensor(states))
        buffer.add(states[:-1], episode.actions, rewards, states[1:], terminal, demo, prior[:-1], prior[1:])


@dataclass
class OffPolicyRule:
    """Every labelled episode into the replay, then ``utd`` learner updates per env step it took."""

    policy: PriorActorPolicy
    learner: OffPolicyLearner
    buffer: ReplayBuffer
    demos: Transitions
    cfg: PracticeConfig
    updates_due: float = 0.0

    def begin(self, generator: torch.Generator) -> None:
        """Critic TD steps on the demos; in ``select``/``bc`` the actor is behaviour-cloned alongside."""
        cfg = self.cfg
        opt = torch.optim.Adam(self.learner.net.actor.parameters(), lr=cfg.update.actor_lr)
        clone = cfg.prior != "residual"
        for _ in range(cfg.warmup_updates):
            batch = self.buffer.sample(cfg.update.batch, generator, 1.0, cfg.update.n_step, cfg.update.gamma)
            self.learner.critic_step(batch, generator, cfg.actor_start == 0)
            self.learner.soft_update()
            if clone:
                idx = torch.randint(len(self.demos), (cfg.update.batch,), generator=generator)
                loss = self.learner.imitation_loss(self.demos.batch(idx))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        self.learner.sync_targets()
        self.learner.publish()
        self.learner.take_stats()
        self.policy.actor_on.fill_(cfg.actor_start == 0)

    def learn(self, batch: Labelled, generator: torch.Generator, counters: dict[str, Any]) -> dict[str, float]:
        """Replay the batch, then the updates it is due (the actor learns from ``actor_start`` env steps on)."""
        cfg = self.cfg
        _add(self.buffer, self.policy, batch, demo=False)
        self.updates_due += cfg.utd * sum(e.length for e in batch.episodes)
        todo = int(self.updates_due)
        self.updates_due -= todo
        self.policy.train()
        self.learner.net.train()
        learn_actor = counters["env_steps"] >= cfg.actor_start
        for _ in range(todo):
            self.learner.update(self.buffer.sample(cfg.update.batch, generator, cfg.update.demo_fraction,
                                                   cfg.update.n_step, cfg.update.gamma), generator, actor=learn_actor)
        self.learner.publish()
        self.policy.actor_on.fill_(learn_actor)
        self.learner.net.eval()
        self.policy.eval()
        return {"updates": todo}

    def state(self) -> dict[str, Any]:
        """Learner and update debt."""
        return {"learner": self.learner.state(), "updates_due": self.updates_due}

    def load(self, state: dict[str, Any], past: Callable[[], Labelled]) -> None:
        """Inverse of :meth:`state`; the replay gets the practice episodes the checkpoint counts back."""
        self.learner.load(state["learner"])
        self.updates_due = state["updates_due"]
        _add(self.buffer, self.policy, past(), demo=False)


@dataclass
class _OffPolicy:
    """Off-policy practice's rows (one per evaluation), evaluation and rollout job, for the engine."""

    policy: PriorActorPolicy
    learner: OffPolicyLearner
    cfg: PracticeConfig
    env_id: str
    reward: Any = None  # the reward source; a learned one changes the job and adds evaluation diagnostics
    clock: dict[str, float] = field(default_factory=dict)
    row_class: ClassVar[type] = PracticeRow
    step_field: ClassVar[str] = "env_steps"
    eval_unit: ClassVar[str] = "env_steps"

    def __post_init__(self) -> None:
        self.eval_every = self.cfg.eval_every
        self._restart_clock()

    def _restart_clock(self) -> None:
        self.clock.update(t=time.time(), update_s=0.0, roll_s=0.0, steps=0, updates=0)

    def job(self, counters: dict[str, Any]) -> RolloutJob:
        """The practising policy with its exploration noise; round = cycle."""
        env_kwargs = practice_env_kwargs(self.cfg.perturb, self.cfg.horizon)
        job = RolloutJob(self.env_id, ActorSpec.policy(self.policy, name=f"practice:{self.cfg.prior}",
                                                       deterministic=False),
                         env_kwargs, source="self", round=counters["steps"])
        practice_job = getattr(self.reward, "practice_job", None)  # a learned reward: no simulator success read
        return job if practice_job is None else practice_job(job, self.policy)

    def evaluate(self, collector: Collector) -> dict[str, float]:
        """Success on the eval seeds; with a learned reward also its diagnostics there (evaluation may read success)."""
        result, episodes = evaluate_episodes(self.policy, self.env_id, self.cfg.eval_episodes, seed=self.cfg.seed,
                                             workers=collector, horizon=self.cfg.horizon or None, progress=False)
        diagnose = getattr(self.reward, "diagnose", None)
        return {"success": result.success_rate, "ci_low": result.ci_low, "ci_high": result.ci_high,
                "eval_length": result.mean_length, "reward_info": diagnose(episodes) if diagnose else {}}

    def row(self, counters: dict[str, Any], step: Step | None, evaluation: dict[str, float] | None) -> PracticeRow | None:
        """Counts practice successes since the last evaluation; a row at each evaluation."""
        if step is not None:
            # With the steps-to-go reward practice never sees success: its detector's verdict counts instead.
            counters["successes"] = counters.get("successes", 0) + sum(
                bool(e.attrs.get("learned_success", e.success)) for e in step.batch.episodes)
            counters["window"] = counters.get("window", 0) + len(step.batch.episodes)
            self.clock["roll_s"] += step.collect_s
            self.clock["update_s"] += step.learn_s
            self.clock["steps"] += sum(e.length for e in step.batch.episodes)
            self.clock["updates"] += step.stats["updates"]
        if evaluation is None:
            return None
        stats = self.learner.take_stats()
        c = self.clock
        row = PracticeRow(
            counters["env_steps"], counters["episodes"], self.learner.updates,
            counters.get("successes", 0) / max(counters.get("window", 0), 1), evaluation["success"],
            evaluation["ci_low"], evaluation["ci_high"], evaluation["eval_length"], stats.critic_loss,
            stats.actor_loss, stats.q_mean, stats.target_actor_share, c["updates"] / max(c["update_s"], 1e-9),
            c["steps"] / max(c["roll_s"], 1e-9), time.time() - c["t"], evaluation["reward_info"])
        counters.update(successes=0, window=0)
        self._restart_clock()
        return row


def prior_settings(cfg: PracticeConfig) -> dict[str, Any]:
    """What :func:`practice_prior` trains the prior from, besides the demos and the seed: two runs
    with equal settings on the same demos and seed practise from the same prior."""
    settings = {name: to_dict(cfg)[name] for name in ("policy", "policy_config", "bc", "init", "finetune")}
    if cfg.reward == "steps-to-go":
        settings["steps_to_go_head"] = to_dict(cfg.learned_reward.head)
        if cfg.init:
            settings["pretrained_head"] = cfg.learned_reward.pretrained_head
    return settings


def practice_prior(cfg: PracticeConfig, demos: list[Episode], env_id: str, out: Path,
                   progress: bool = True) -> Policy:
    """The BC prior of practice run ``cfg`` in ``out/bc`` (trained, or read back when finished): with
    the steps-to-go reward it carries the head that gives the reward (the SFT stage)."""
    stg = cfg.reward == "steps-to-go"
    return initial_policy(demos, env_id, out / "bc", policy=cfg.policy, policy_config=cfg.policy_config,
                          train=cfg.bc, seed=cfg.seed, progress=progress, init=pretrained_policy(cfg.init, env_id),
                          finetune=cfg.finetune, steps_to_go=cfg.learned_reward.head if stg else None,
                          # The steps-to-go reward and detector are the head: by default fine-tuned
                          # as pretrained, on the trunk (the better detector; docs/multitask.md).
                          shared_head=stg and cfg.learned_reward.pretrained_head == "shared")


def run_practice(cfg: PracticeConfig, out: str | Path, progress: bool = True,
                 on_row: Callable[[PracticeRow], None] | None = None) -> list[PracticeRow]:
    """Run (or resume) off-policy practice into ``out``; one :class:`PracticeRow` per evaluation."""
    out = Path(out)
    env_id = cfg.env_id or EpisodeStore(cfg.data).env_id() or ""
    if not env_id:
        raise ValueError(f"{cfg.data}: the store names no env; pass --env")
    horizon, low, high = check_practice(cfg, env_id)
    # A finished run given a larger budget practises on from its last cycle.
    env_id, demos = rl_setup(cfg.data, env_id, cfg.demos, out, {"algo": "practice", **to_dict(cfg)}, ("budget",))
    base = practice_prior(cfg, demos, env_id, out, progress)
    demo_data = Transitions.from_episodes(demos, base.obs_keys)
    with make_collector(cfg.workers, envs_per_worker=cfg.robots, processes=cfg.async_lag > 0) as collector:
        # Before the seeding below: a resumed run reads the calibration back instead of rolling it out.
        reward: Any = (learned_reward_source(cfg.reward, cfg.learned_reward, base, demos, env_id, out, cfg.seed,
                                             cfg.horizon, collector)
                       if cfg.reward in LEARNED_REWARDS else PracticeReward(cfg))
        seed_everything(cfg.seed)
        policy = PriorActorPolicy.from_base(
            base, demo_data, low, high, mode={"bc": "actor"}.get(cfg.prior, cfg.prior), actor_hidden=cfg.actor_hidden,
            critic_hidden=cfg.critic_hidden, critics=cfg.critics, residual_scale=cfg.residual_scale,
            explore_std=cfg.explore_std, select_pessimism=cfg.select_pessimism)
        learner = OffPolicyLearner(policy, cfg.update)
        per_cycle = cfg.robots * cfg.workers
        buffer = ReplayBuffer(policy.obs_dim, policy.action_dim,
                              sum(e.length for e in demos) + cfg.budget + per_cycle * horizon,
                              reward_fn=getattr(reward, "replay_reward", None),
                              reward_version=lambda: getattr(reward, "version", 0))
        _add(buffer, policy, Labelled(demos, reward.rewards(demos, policy), reward.terminals(demos)), demo=True)
        # Env steps a reward source took before practice (detector calibration) come out of the budget.
        budget = cfg.budget - getattr(reward, "setup_env_steps", 0)
        schedule = (Pipelined(cfg.seed, per_cycle, horizon, budget, lag=cfg.async_lag) if cfg.async_lag
                    else Cycles(cfg.seed, per_cycle, horizon, budget))
        engine = Engine(policy, reward, OffPolicyRule(policy, learner, buffer, demo_data, cfg), schedule,
                        _OffPolicy(policy, learner, cfg, env_id, reward),
                        Checkpoint(out, "offpolicy.pt", "evals.jsonl"), torch.Generator().manual_seed(cfg.seed),
                        desc=f"practice ({cfg.prior}, {cfg.reward})")
        return engine.run(collector, env_id, progress, on_row)


def load_practice_policy(out: str | Path) -> PriorActorPolicy:
    """The practised policy after the last finished cycle of an off-policy practice run (``out/offpolicy.pt``)."""
    path = Path(out) / "offpolicy.pt"
    if not path.exists():
        raise FileNotFoundError(f"{out}: no practice checkpoint ({path}); has practice run?")
    return policy_from_payload(read_checkpoint(path, "practice checkpoint")["policy"])


def practice_rows(out: str | Path) -> list[PracticeRow]:
    """The evaluation rows of a practice run folder (none if it has not started)."""
    return read_rows(Path(out) / "evals.jsonl", PracticeRow)


def write_report(out: str | Path) -> Path:
    """Write ``report.md`` (table of evaluations) and ``success.png`` (success against env steps)."""
    out = Path(out)
    cfg = RunDir(out).read_config()
    columns = [("env steps", lambda r: r.env_steps), ("episodes", lambda r: r.episodes),
               ("updates", lambda r: r.updates), ("practice success", lambda r: f"{r.practice_success:.2f}"),
               *EVAL_COLUMNS, ("q", lambda r: f"{r.q_mean:.2f}"), ("actor share", lambda r: f"{r.actor_share:.2f}"),
               ("upd/s", lambda r: f"{r.updates_per_s:.0f}"), ("steps/s", lambda r: f"{r.env_steps_per_s:.0f}")]
    learned_columns, learned_note = learned_reward_report(out, cfg["reward"])
    intro = (f"{cfg['demos'] or 'all'} expert demos, prior `{cfg['prior']}`, reward `{cfg['reward']}`"
             + (f" ({cfg['success_reward']})" if cfg["reward"] == "success" else "")
             + f", budget {cfg['budget']} env steps, {cfg['utd']} updates per env step, seed {cfg['seed']}; "
             f"{cfg['eval_episodes']} evaluation episodes per row (eval seeds, 95% Wilson intervals). Env steps 0 is "
             "the policy after the demo warm-up, before any practice." + learned_note)
    columns += learned_columns
    return write_practice_report(out, practice_rows(out), f"Off-policy practice on {cfg['env_id']}", intro, columns)


register(Algorithm("practice", PracticeConfig, run_practice, load_practice_policy, report=write_report,
                   evaluated="after practice", stages=("bc-warm-start",)))
