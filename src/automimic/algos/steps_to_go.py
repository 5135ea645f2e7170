"""Self-improvement with steps-to-go (arXiv 2509.15155): practice with a learned reward and a learned
success detector, no hand-written reward and no simulator success signal.

Stage 1 (SFT): behaviour cloning plus a categorical steps-to-go head, trained on the demos.
Calibration: the detector threshold ``s`` is picked on held-out rollouts of the SFT policy.
Stage 2 (practice): a fleet of robots practises with the current policy; episodes end when the
frozen SFT model's ``d(o) <= s`` (or at the horizon); the policy is updated by on-policy REINFORCE on
the discounted return of ``r_t = d(o_t) - d(o_{t+1})`` (public reference: gamma 0.9, return scaled by
1/horizon, 2,048 env steps per iteration, minibatch 64), minus a learned value baseline by default
(``baseline="none"`` is the reference's plain REINFORCE). The simulator's success is read only on
the calibration and evaluation seeds. Practice runs on the shared engine (:mod:`automimic.algos.engine`):
the :class:`~automimic.algos.schedules.SeedRule` schedule, the :class:`LearnedProgress` reward source
and the :class:`~automimic.algos.rules.ReinforceRule` (or :class:`~automimic.algos.rules.PPORule`).

Run folder::

    out/config.yaml         resolved StepsToGoConfig
    out/sft/                stage-1 training run (checkpoints, metrics, TensorBoard)
    out/calibration.json    threshold s and the detector's precision/recall on held-out episodes
    out/practice.pt         policy, optimiser, value baseline, RNG, counters and rows after the last finished iteration
    out/iterations.jsonl    one line per finished iteration (iteration 0 = the SFT policy)
    out/practice.h5         every practice episode, with provenance (source self, round = iteration, weights_version)
    out/metrics.jsonl, out/tb/   the same numbers for TensorBoard
    out/log.txt             what the run did, including where simulator success was read
    out/report.md           per-iteration table with success.png and length.png (write_report)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np
import torch

from automimic.checkpoint_io import read_checkpoint
from automimic.algos.bc import checked_demos, fit_policy, pretrained_policy
from automimic.algos.calibration import Calibration, calibrate, default_tolerance, precision_recall
from automimic.algos.engine import Checkpoint, Engine, PerIteration, Step, practice_env_kwargs
from automimic.algos.learned_reward import LearnedReward
from automimic.algos.on_policy import bc_regulariser, episode_states
from automimic.algos.ppo import PPOConfig, ppo_update
from automimic.algos.practice_report import EVAL_COLUMNS, write_practice_report
from automimic.algos.registry import Algorithm, register
from automimic.algos.run_config import DemoSource, PolicyChoice, PretrainedStart
from automimic.algos.rules import PPORule, ReinforceRule, discounted_returns, reinforce_update  # noqa: F401
from automimic.algos.schedules import SeedRule, practice_rollouts
from automimic.algos.value_baseline import ValueBaseline
from automimic.config import to_dict
from automimic.data.episode import Episode
from automimic.envs import make_env
from automimic.evaluation.evaluate import evaluate_episodes
from automimic.policies import Policy, load_policy, policy_from_payload, require_stochastic, stochastic_problem
from automimic.policies.exploration import exploration_distribution  # noqa: F401  (re-exported)
from automimic.policies.steps_to_go_head import StepsToGoHeadConfig
from automimic.rollout.actors import ActorSpec
from automimic.rollout.collector import Collector, make_collector
from automimic.rollout.workers import RolloutJob
from automimic.training.loop import TrainConfig
from automimic.training.run_dir import RunDir, read_rows

BASELINES = ("none", "batch", "pace", "value")
SIM_SUCCESS_NOTE = ("practice reads no simulator success: episodes end on the learned detector d(o) <= s or the "
                    "horizon, rewards are d(o_t) - d(o_t+1); the simulator's success is read only on calibration "
                    "and evaluation seeds")


@dataclass
class StepsToGoConfig(PretrainedStart, PolicyChoice, DemoSource):
    """Steps-to-go self-improvement run. Defaults not from the public reference are marked (ours).

    It has the fields of :class:`~automimic.algos.run_config.DemoSource`,
    :class:`~automimic.algos.run_config.PolicyChoice` and
    :class:`~automimic.algos.run_config.PretrainedStart` (``seed``, ``data``, ``env_id``, ``demos``,
    ``policy``, ``policy_config``, ``init``, ``finetune``), and:

    Args:
        policy_config: default (ours): a Gaussian-head MLP. The policy must have an action
            distribution (REINFORCE needs log-probs).
        head: the steps-to-go head (bins, range, loss weights).
        sft: optimisation settings of stage 1.
        threshold: detector threshold ``s``; ``None`` calibrates it.
        calibrate_episodes: held-out SFT rollouts for calibration.
        calibrate_noise: action noise on those rollouts, so that some fail (ours: 0.3).
        robots: simulated robots each practice worker steps in lock-step, with one batched policy
            query per step (ours: 8); ``workers × robots`` practise at once. Results depend on it
            (it fixes the batch size of the policy query), not on ``workers`` or the backend.
        iterations: practice iterations.
        episode_budget: stop practice once this many practice episodes have been run (0: no cap);
            the last iteration then gathers fewer steps. For comparisons at equal practice budget.
        steps_per_iteration: env steps gathered per policy update (reference: 2048).
        minibatch: REINFORCE minibatch (reference: 64); one pass over the iteration's steps.
        gamma: discount of the learned reward (reference: 0.9).
        lr: Adam learning rate of practice (ours: 3e-5; 1e-4 collapsed on point/reach).
        update: ``reinforce`` (the public reference's update, the default) or ``ppo``: the clipped
            PPO update of :mod:`automimic.algos.ppo` on GAE advantages of the learned reward, with
            the value baseline as its critic (needs ``baseline="value"``).
        ppo: PPO's settings when ``update="ppo"`` (the discount is ``gamma``).
        baseline: ``value`` (ours, the default: minus a learned state value); ``none`` (the public
            reference: plain REINFORCE); ``batch``: returns standardised over the iteration's
            steps; ``pace``: minus :func:`pace_baseline`, the return of keeping the demos' pace.
            See :class:`~automimic.algos.value_baseline.ValueBaseline`.
        grad_clip: max gradient norm in practice (0: off).
        min_std: floor on the policy's action std while practising, in normalised action units
            (ours: 0.1; see :func:`exploration_distribution`).
        learn_std: let REINFORCE change the action std (ours: off, only the mean moves; with it on,
            point/reach reached 0.99 and then swung between 0.23 and 0.98).
        bound_weight: weight of the penalty on mean actions beyond the env's action bounds (ours;
            see :func:`reinforce_update`).
        anchor_weight: weight of the policy's own imitation loss on a demo minibatch, added to
            every practice minibatch (ours; the reference has none, 0 turns it off). It anchors
            practice to the demos where the learned reward is unreliable away from them. Measured
            on point/reach: 0.01 kept 50-demo practice from collapsing (0.89 -> 0.88 success
            instead of 0.06) and 500-demo practice nearly as fast as without (7.9 steps vs 7.1);
            0.1 and 1 held back the 500-demo gain (21 and 28 steps).
        terminal_zero: ``d = 0`` at the state where the detector fired, so the last step's reward
            pays the steps that were left (ours; without it hovering above ``s`` pays as well).
        perturb: start-position perturbation of practice episodes.
        horizon: step budget per episode (0: the env's default).
        eval_every: evaluate on the eval seeds every this many iterations (and after the last).
        eval_episodes: evaluation episodes.
        workers: workers (processes, or Ray actors with ``--backend ray``) for calibration,
            practice and evaluation rollouts.
    """

    policy_config: dict[str, Any] = field(default_factory=lambda: {"head": "gaussian"})
    head: StepsToGoHeadConfig = field(default_factory=StepsToGoHeadConfig)
    sft: TrainConfig = field(default_factory=TrainConfig)
    threshold: float | None = None
    calibrate_episodes: int = 50
    calibrate_noise: float = 0.3
    robots: int = 8
    iterations: int = 20
    episode_budget: int = 0
    steps_per_iteration: int = 2048
    minibatch: int = 64
    gamma: float = 0.9
    lr: float = 3e-5
    update: str = "reinforce"
    ppo: PPOConfig = field(default_factory=PPOConfig)
    baseline: str = "value"
    min_std: float = 0.1
    learn_std: bool = False
    terminal_zero: bool = True
    bound_weight: float = 1.0
    anchor_weight: float = 0.01
    grad_clip: float = 1.0
    perturb: float = 0.0
    horizon: int = 0
    eval_every: int = 1
    eval_episodes: int = 50
    workers: int = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("robots", "steps_per_iteration", "minibatch", "eval_every", "eval_episodes", "workers",
                     "calibrate_episodes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.iterations < 0 or self.horizon < 0 or self.episode_budget < 0:
            raise ValueError("iterations and horizon must be >= 0")
        if self.anchor_weight < 0:
            raise ValueError(f"anchor_weight must be >= 0, got {self.anchor_weight}")
        if not self.init:  # an --init policy replaces policy/policy_config; the run checks that one
            require_stochastic(self.policy, self.policy_config, "practice")
        if self.policy_config.get("image_keys"):
            raise ValueError("policy_config.image_keys: steps-to-go practice feeds the fleet's state only; "
                             "image policies are not supported yet")
        if self.policy != "mlp" and self.min_std <= 0:
            raise ValueError(f"min_std must be > 0 for policy {self.policy!r}: it learns no action std to explore with")
        if self.update not in ("reinforce", "ppo"):
            raise ValueError(f"update must be 'reinforce' or 'ppo', got {self.update!r}")
        if self.update == "ppo" and self.baseline != "value":
            raise ValueError("update=ppo needs baseline=value: the value baseline is PPO's critic")
        if self.baseline not in BASELINES:
            raise ValueError(f"baseline must be one of {BASELINES}, got {self.baseline!r}")
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma}")


@dataclass(frozen=True)
class IterationResult:
    """One line of ``iterations.jsonl``; evaluation fields are ``None`` on iterations without one."""

    iteration: int
    env_steps: int
    episodes: int
    learned_success: float
    mean_length: float
    mean_return: float
    success: float | None
    ci_low: float | None
    ci_high: float | None
    eval_length: float | None
    precision: float | None
    recall: float | None
    seconds: float
    dropped: int = 0

    def line(self) -> str:
        """The per-iteration progress line."""
        text = (f"iter {self.iteration}: env steps {self.env_steps}, practice episodes {self.episodes}, "
                f"learned success {self.learned_success:.2f}, mean length {self.mean_length:.1f}, "
                f"mean return {self.mean_return:.1f}, dropped {self.dropped}")
        if self.success is not None:
            text += (f" | eval {self.success:.2f} [{self.ci_low:.2f}, {self.ci_high:.2f}], length {self.eval_length:.1f},"
                     f" detector P {self.precision:.2f} R {self.recall:.2f}")
        return text + f", {self.seconds:.0f}s"


def pace_baseline(d: np.ndarray, threshold: float, gamma: float) -> np.ndarray:
    """Discounted return of a robot that keeps the demos' pace, one step of ``d`` per step, until ``d <= s``.

    ``sum_{k < n} gamma^k`` with ``n = max(d - s, 0)``: the return the learned reward expects from a
    state if the robot does what the demos did, so ``G - b`` says whether practice beat that pace.
    """
    n = np.maximum(np.asarray(d, dtype=np.float64) - threshold, 0.0)
    if gamma == 1.0:
        return n.astype(np.float32)
    return ((1.0 - gamma ** n) / (1.0 - gamma)).astype(np.float32)


def _progress(ep: Episode, reward: LearnedReward, terminal_zero: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(flattened states, ``d`` at each, learned rewards) of one practice episode."""
    states = episode_states(ep, reward.obs_keys)
    d = reward.steps_to_go(states)
    if ep.attrs["learned_success"] and terminal_zero:
        # The detector says this state is a success: zero steps to go, so crossing s pays what
        # was left. Without it, hovering just above s earns as much as finishing.
        d[-1] = 0.0
    return states, d, reward.rewards(d)


def _evaluate(policy: Policy, reward: LearnedReward, cfg: StepsToGoConfig, env_id: str, calib_tolerance: int,
              progress: bool, collector: Collector) -> dict[str, float]:
    """True success on the eval seeds, and the detector's precision/recall on those episodes."""
    result, episodes = evaluate_episodes(policy, env_id, cfg.eval_episodes, seed=cfg.seed, workers=collector,
                                         horizon=cfg.horizon or None, progress=progress)
    p, r = precision_recall([reward.episode_steps_to_go(e) for e in episodes], [e.success for e in episodes],
                            reward.threshold, calib_tolerance)
    return {"success": result.success_rate, "ci_low": result.ci_low, "ci_high": result.ci_high,
            "eval_length": result.mean_length, "precision": p, "recall": r}


def _log(out: Path, text: str) -> None:
    with open(out / "log.txt", "a") as f:
        f.write(text + "\n")


def check_practicable(policy: Policy, where: str) -> None:
    """Refuse (one line) a policy that REINFORCE/PPO practice cannot score: no action distribution,
    or no steps-to-go head to give the reward."""
    problem = stochastic_problem(policy.name, policy.config)
    if problem is not None:
        raise ValueError(f"{where}: {problem} (on-policy practice needs the action log-probabilities; "
                         "pretrain with that set, or practise off-policy with improve practice --reward steps-to-go)")
    if policy.steps_to_go is None:
        raise ValueError(f"{where}: has no steps-to-go head to give the reward (pretrain with steps_to_go on)")


def _stage1(cfg: StepsToGoConfig, out: Path, env_id: str, demos: list[Episode], progress: bool,
            start: Policy | None = None) -> Policy:
    """Supervised stage: BC + steps-to-go on the demos (resumes from ``out/sft``)."""
    run = RunDir(out / "sft")
    run.write_config({"algo": "steps-to-go-sft", "env_id": env_id, "train_episodes": len(demos)})
    # A finished run returns at once; a cut-short one resumes from its last.pt.
    return fit_policy(demos, env_id, run.path, policy=cfg.policy, policy_config=cfg.policy_config, train=cfg.sft,
                      seed=cfg.seed, steps_to_go=cfg.head, init=start, finetune=cfg.finetune,
                      shared_head=True, progress=progress)  # the head is this method's reward and detector


def _calibration(cfg: StepsToGoConfig, out: Path, env_id: str, sft: Policy, collector: Collector) -> Calibration:
    path = out / "calibration.json"
    if path.exists():
        return Calibration.load(path)
    if cfg.threshold is not None:
        calib = Calibration(float(cfg.threshold), float("nan"), float("nan"), float("nan"), 0, 0, default_tolerance(sft))
    else:
        calib = calibrate(sft, env_id, cfg.calibrate_episodes, seed=cfg.seed, workers=collector,
                          action_noise=cfg.calibrate_noise, horizon=cfg.horizon or None)
    calib.save(path)
    _log(out, f"calibration: {calib.line()}")
    return calib


def run_steps_to_go(cfg: StepsToGoConfig, out: str | Path, progress: bool = True,
                    on_iteration: Callable[[IterationResult], None] | None = None,
                    on_calibration: Callable[[Calibration], None] | None = None) -> list[IterationResult]:
    """Run (or resume) SFT -> calibration -> practice into ``out``; one :class:`IterationResult` per iteration."""
    out = Path(out)
    # Read once: SFT trains on them and the practice anchor samples them.
    demos, env_id = checked_demos(cfg.data, cfg.env_id, cfg.demos, policy=cfg.policy,
                                  policy_config=cfg.policy_config)
    if not env_id:
        raise ValueError(f"{cfg.data}: the store names no env; pass env_id")
    start = pretrained_policy(cfg.init, env_id)
    if start is not None:
        check_practicable(start, f"--init {cfg.init}")
    RunDir(out).write_config({"algo": "steps-to-go", **to_dict(cfg), "env_id": env_id})
    sft = _stage1(cfg, out, env_id, demos, progress, start)
    # One set of workers for calibration, practice and evaluation: they persist between iterations,
    # and on Ray a second set would wait forever for CPUs the first holds.
    with make_collector(cfg.workers, envs_per_worker=cfg.robots) as collector:
        return _practise(cfg, out, env_id, sft, demos, collector, progress, on_iteration, on_calibration)


class LearnedProgress:
    """Steps-to-go's reward source: the frozen head's progress ``d(o_t) - d(o_t+1)``; the detector's stop is the end.

    With ``terminal_zero``, ``d`` of a state where the detector fired counts as 0.
    """

    name = "steps-to-go"

    def __init__(self, reward: LearnedReward, terminal_zero: bool) -> None:
        self.reward, self.terminal_zero = reward, terminal_zero

    def update(self, episodes: list[Episode], policy: Policy, generator: torch.Generator) -> dict[str, float]:
        """Nothing to learn: the head is frozen."""
        return {}

    def rewards(self, episodes: list[Episode], policy: Policy) -> list[np.ndarray]:
        """The learned progress of every step."""
        return [_progress(e, self.reward, self.terminal_zero)[2] for e in episodes]

    def terminals(self, episodes: list[Episode]) -> list[bool]:
        """An episode the detector ended is a true end; any other was cut."""
        return [bool(e.attrs["learned_success"]) for e in episodes]

    def pace(self, gamma: float) -> Callable[[Episode], np.ndarray]:
        """:func:`pace_baseline` of each step of an episode, for the ``pace`` baseline."""
        return lambda e: pace_baseline(_progress(e, self.reward, self.terminal_zero)[1][:-1], self.reward.threshold,
                                       gamma)

    def state(self) -> dict[str, Any]:
        """No state: the head is rebuilt from the SFT stage."""
        return {}

    def load(self, state: dict[str, Any]) -> None:
        """No state."""


@dataclass
class _StepsToGo(PerIteration):
    """Steps-to-go's rows, evaluation and rollout job, for the engine."""

    reward: LearnedReward | None = None
    tolerance: int = 0
    row_class: ClassVar[type] = IterationResult

    def job(self, counters: dict[str, Any]) -> RolloutJob:
        """The simulator's success is never read in practice: the learned detector ends episodes."""
        env_kwargs = practice_env_kwargs(self.cfg.perturb, self.cfg.horizon)
        return RolloutJob(self.env_id, ActorSpec.practice(self.policy, self.reward.model, self.reward.threshold,
                                                          self.cfg.min_std),
                          env_kwargs, source="self", round=counters["steps"] + 1, stop_on_success=False,
                          read_success=False)

    def evaluate(self, collector: Collector) -> dict[str, float]:
        """True success on the eval seeds and the detector's precision/recall there."""
        return _evaluate(self.policy, self.reward, self.cfg, self.env_id, self.tolerance, False, collector)

    def row(self, counters: dict[str, Any], step: Step | None, evaluation: dict[str, float] | None) -> IterationResult:
        """One row per iteration (iteration 0: the SFT policy)."""
        evaluation = evaluation or dict.fromkeys(("success", "ci_low", "ci_high", "eval_length", "precision", "recall"))
        if step is None:
            return IterationResult(0, 0, 0, 0.0, 0.0, 0.0, **evaluation, seconds=0.0)
        episodes, rewards = step.batch.episodes, step.batch.rewards
        # The two updates always averaged the returns this way (float32 sums for PPO): kept, so rows repeat.
        totals = [r.sum() for r in rewards] if self.cfg.update == "ppo" else [float(r.sum()) for r in rewards]
        return IterationResult(counters["steps"], counters["env_steps"], len(episodes),
                               float(np.mean([e.attrs["learned_success"] for e in episodes])),
                               counters["mean_length"], float(np.mean(totals)), **evaluation, seconds=step.seconds,
                               dropped=step.dropped)


def _rule(cfg: StepsToGoConfig, policy: Policy, source: LearnedProgress, horizon: int,
          bounds: tuple[np.ndarray, np.ndarray], anchor: Callable[[torch.Generator], torch.Tensor] | None
          ) -> PPORule | ReinforceRule:
    """The update rule of ``cfg.update``, with this module's update functions (so tests can watch them)."""
    opt = torch.optim.Adam(policy.parameters(), lr=cfg.lr)
    value = ValueBaseline(policy.obs_dim) if cfg.baseline == "value" else None
    if cfg.update == "ppo":
        return PPORule(policy, opt, value, cfg.ppo, cfg.gamma, cfg.min_std, cfg.learn_std,
                       scale=lambda r: r / horizon, extra_loss=anchor, update=ppo_update)
    return ReinforceRule(policy, opt, cfg.gamma, horizon, cfg.minibatch, cfg.baseline, value,
                         source.pace(cfg.gamma) if cfg.baseline == "pace" else None, cfg.grad_clip, cfg.min_std,
                         cfg.learn_std, bounds, cfg.bound_weight, anchor, update=reinforce_update)


def _practise(cfg: StepsToGoConfig, out: Path, env_id: str, sft: Policy, demos: list[Episode],
              collector: Collector, progress: bool,
              on_iteration: Callable[[IterationResult], None] | None,
              on_calibration: Callable[[Calibration], None] | None) -> list[IterationResult]:
    calib = _calibration(cfg, out, env_id, sft, collector)
    if on_calibration is not None:
        on_calibration(calib)
    reward = LearnedReward(sft, calib.threshold)
    policy = sft
    policy.practice_execution()
    policy.eval()
    files = Checkpoint(out, "practice.pt", "iterations.jsonl")
    if files.load() is None:
        _log(out, SIM_SUCCESS_NOTE)
    env_kwargs = practice_env_kwargs(cfg.perturb, cfg.horizon)
    probe = make_env(env_id, **env_kwargs)
    horizon = probe.horizon
    bounds = (np.asarray(probe.action_space.low, dtype=np.float32), np.asarray(probe.action_space.high, dtype=np.float32))
    probe.close()
    source = LearnedProgress(reward, cfg.terminal_zero)
    anchor = bc_regulariser(policy, demos, cfg.anchor_weight, cfg.minibatch) if cfg.anchor_weight > 0 else None
    rule = _rule(cfg, policy, source, horizon, bounds, anchor)
    schedule = SeedRule(cfg.seed, cfg.iterations, cfg.steps_per_iteration, cfg.workers * cfg.robots,
                        first_length=horizon, episode_budget=cfg.episode_budget, take=practice_rollouts)
    engine = Engine(policy, source, rule, schedule, _StepsToGo(policy, cfg, env_id, reward, calib.tolerance), files,
                    torch.Generator().manual_seed(cfg.seed))
    return engine.run(collector, env_id, progress, on_iteration)


def write_report(out: str | Path) -> Path:
    """Write ``report.md`` (the shared practice report plus the detector's columns), ``success.png`` and ``length.png``."""
    from automimic.evaluation.report import plot_lines

    out = Path(out)
    rows = read_rows(out / "iterations.jsonl", IterationResult)
    evaluated = [r for r in rows if r.success is not None]
    if not evaluated:
        raise ValueError(f"{out}: no evaluated iterations to report")
    cfg = RunDir(out).read_config()
    calib = Calibration.load(out / "calibration.json")
    practised = [r for r in rows if r.iteration > 0]
    plot_lines([[r.iteration for r in evaluated], [r.iteration for r in practised]],
               {"evaluation (true success ends it)": [r.eval_length for r in evaluated],
                "practice (learned detector ends it)": [r.mean_length for r in practised]},
               out / "length.png", "mean episode length", "iteration", "steps")
    columns = [("iteration", lambda r: r.iteration), ("env steps", lambda r: r.env_steps), *EVAL_COLUMNS,
               ("learned success", lambda r: f"{r.learned_success:.2f}"),
               ("practice length", lambda r: f"{r.mean_length:.1f}"),
               ("detector P / R", lambda r: f"{r.precision:.2f} / {r.recall:.2f}")]
    intro = (f"{cfg['demos'] or 'all'} demos; detector d(o) <= {calib.threshold:.2f} (calibration precision "
             f"{calib.precision:.2f}, recall {calib.recall:.2f}); {cfg['robots']} robots, "
             f"{cfg['steps_per_iteration']} env steps per iteration, baseline `{cfg['baseline']}`, lr {cfg['lr']}; "
             f"{cfg['eval_episodes']} evaluation episodes. Iteration 0 is the SFT policy. {SIM_SUCCESS_NOTE}.")
    return write_practice_report(out, rows, f"Steps-to-go practice on {cfg['env_id']}", intro, columns,
                                 "\n![episode length](length.png)\n")


def load_practised_policy(out: str | Path) -> Policy:
    """The policy after the last finished practice iteration of a run folder (the SFT policy before any)."""
    out = Path(out)
    if (out / "practice.pt").exists():
        return policy_from_payload(read_checkpoint(out / "practice.pt", "practice checkpoint")["policy"])
    return load_policy(RunDir(out / "sft").checkpoint("last"))


register(Algorithm("steps-to-go", StepsToGoConfig, run_steps_to_go, load_practised_policy, report=write_report,
                   evaluated="practised", stages=("steps-to-go-sft",)))
