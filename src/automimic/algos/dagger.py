"""DAgger (Ross et al., 2011): roll out the learner, have the expert label the states it visits, aggregate, retrain.

Round 0 is behaviour cloning on the demos. In round ``r >= 1`` the round-``r - 1`` policy acts,
mixed with the scripted expert by ``beta_r`` (per step, the expert's action with probability
``beta_r``); every visited state is stored with the expert's action as its label
(``source=dagger``, ``round=r``, ``attrs["beta"]``), and the next policy is trained on the demos plus
every labelled episode so far.

Run folder::

    out/config.yaml        resolved DAggerConfig
    out/episodes.h5        the demos, then every round's relabelled episodes
    out/round_<r>/         that round's training run (checkpoints, metrics, TensorBoard)
    out/rounds.jsonl       one line per finished round
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from tqdm import tqdm

from automimic.algos.bc import fit_policy, start_round_store
from automimic.algos.registry import Algorithm, register
from automimic.algos.run_config import DemoSource, PolicyChoice
from automimic.config import to_dict
from automimic.data.store import EpisodeStore
from automimic.envs import expert_for
from automimic.evaluation.evaluate import evaluate
from automimic.policies import Policy, load_policy
from automimic.rollout.actors import ActorSpec
from automimic.rollout.collector import iter_episodes
from automimic.rollout.workers import RolloutJob
from automimic.seeding import episode_seeds
from automimic.training.loop import TrainConfig
from automimic.training.run_dir import RunDir, append_row, read_rows

SCHEDULES = ("constant", "linear", "exponential")


def beta_for_round(schedule: str, r: int, rounds: int, beta: float, decay: float = 0.5) -> float:
    """The expert's share ``beta_r`` in DAgger round ``r >= 1``.

    ``constant``: ``beta``; ``linear``: ``beta * (1 - (r - 1) / rounds)``, from ``beta`` down
    towards 0 after the last round; ``exponential``: ``beta * decay ** (r - 1)`` (Ross et al.'s
    ``p^(i-1)``).
    """
    if r < 1:
        raise ValueError(f"DAgger rounds start at 1 (round 0 is behaviour cloning), got {r}")
    if schedule == "constant":
        return beta
    if schedule == "linear":
        return beta * max(0.0, 1.0 - (r - 1) / rounds)
    if schedule == "exponential":
        return beta * decay ** (r - 1)
    raise ValueError(f"beta_schedule must be one of {SCHEDULES}, got {schedule!r}")


@dataclass
class DAggerConfig(PolicyChoice, DemoSource):
    """DAgger run: the fields of :class:`~automimic.algos.run_config.DemoSource` (the demos it
    starts from) and :class:`~automimic.algos.run_config.PolicyChoice` (``seed``, ``data``,
    ``env_id``, ``demos``, ``policy``, ``policy_config``), and:

    Args:
        expert: the labelling expert as ``"package.module:name"``: a class built with the env id
            (``reset(seed)``, ``__call__(obs) -> action``) or a function ``obs -> action``; empty:
            the scripted expert of ``env_id``, which must then have one. Named by import path so
            every worker can build it.
        train: optimisation settings of every round's training on the aggregate.
        warm_start: continue each round's training from the previous round's policy (weights and
            normalisers) instead of starting from scratch, as the ``imitation`` library does.
        warm_steps: training steps of each warm-started round (0: ``train.steps``); fewer steps is
            what makes warm-starting cheaper than retraining.
        rounds: DAgger rounds after the BC round.
        episodes_per_round: learner rollouts labelled per round.
        beta_schedule: ``constant``, ``linear`` or ``exponential`` (see :func:`beta_for_round`).
        beta: the expert's share in round 1.
        beta_decay: factor per round of the exponential schedule.
        perturb: start-position perturbation of the rollouts.
        eval_episodes: evaluation episodes after every round.
        workers: rollout workers.
    """

    expert: str = ""
    train: TrainConfig = field(default_factory=TrainConfig)
    warm_start: bool = False
    warm_steps: int = 0
    rounds: int = 4
    episodes_per_round: int = 20
    beta_schedule: str = "linear"
    beta: float = 0.5
    beta_decay: float = 0.5
    perturb: float = 0.0
    eval_episodes: int = 50
    workers: int = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.beta_schedule not in SCHEDULES:
            raise ValueError(f"beta_schedule must be one of {SCHEDULES}, got {self.beta_schedule!r}")
        if not 0.0 <= self.beta <= 1.0 or not 0.0 <= self.beta_decay <= 1.0:
            raise ValueError(f"beta and beta_decay must be in [0, 1], got {self.beta}, {self.beta_decay}")
        if self.warm_steps < 0:
            raise ValueError(f"warm_steps must be >= 0, got {self.warm_steps}")
        for name in ("episodes_per_round", "eval_episodes", "workers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.rounds < 0:
            raise ValueError(f"rounds must be >= 0, got {self.rounds}")


@dataclass(frozen=True)
class DAggerRound:
    """One line of ``rounds.jsonl``."""

    round: int
    beta: float
    labelled: int
    train_episodes: int
    success: float
    ci_low: float
    ci_high: float
    mean_length: float
    seconds: float

    def line(self) -> str:
        """The per-round progress line."""
        return (f"round {self.round}: beta {self.beta:.2f}, labelled {self.labelled}, train on {self.train_episodes} "
                f"episodes, eval {self.success:.2f} [{self.ci_low:.2f}, {self.ci_high:.2f}], {self.seconds:.0f}s")


def _finished(out: Path) -> list[DAggerRound]:
    return read_rows(out / "rounds.jsonl", DAggerRound)


def _label(cfg: DAggerConfig, env_id: str, store: EpisodeStore, r: int, beta: float, learner: Policy,
           progress: bool) -> None:
    """Roll the mixture out on this round's seeds and store each visited trajectory with expert labels."""
    done = {(i.seed, i.round) for i in store.index() if i.source == "dagger"}
    seeds = [s for s in episode_seeds("practice", cfg.seed, cfg.episodes_per_round,
                                      start=(r - 1) * cfg.episodes_per_round) if (s, r) not in done]
    job = RolloutJob(env_id, ActorSpec.dagger(learner, env_id, beta, cfg.expert), {"perturb": cfg.perturb}, source="dagger",
                     round=r)
    for ep in tqdm(iter_episodes(job, seeds, cfg.workers), total=len(seeds), desc=f"round {r} labelling",
                   unit="ep", disable=not progress, leave=False):
        store.append(dataclasses.replace(ep, actions=ep.attrs["kept"], attrs={**ep.scalar_attrs(), "beta": beta}))


def run_dagger(cfg: DAggerConfig, out: str | Path, progress: bool = True,
               on_round: Callable[[DAggerRound], None] | None = None) -> list[DAggerRound]:
    """Run (or resume) DAgger into ``out``; one :class:`DAggerRound` per round, round 0 = BC on the demos."""
    out = Path(out)
    env_id, store = start_round_store(cfg.data, cfg.env_id, cfg.demos, out, "dagger",
                                      {"algo": "dagger", **to_dict(cfg)})
    expert_for(env_id, cfg.expert)  # a missing or misnamed expert fails here, not inside a worker
    results = _finished(out)
    for r in range(len(results), cfg.rounds + 1):
        t0 = time.time()
        beta, labelled, previous, train = 1.0, 0, None, cfg.train
        if r > 0:
            beta = beta_for_round(cfg.beta_schedule, r, cfg.rounds, cfg.beta, cfg.beta_decay)
            previous = load_policy(RunDir(out / f"round_{r - 1}").checkpoint("last"))
            _label(cfg, env_id, store, r, beta, previous, progress)
            if cfg.warm_start and cfg.warm_steps:
                train = dataclasses.replace(cfg.train, steps=cfg.warm_steps)
            labelled = sum(1 for i in store.index() if i.source == "dagger" and i.round == r)
        training = [e for i, e in store.entries() if i.source != "dagger" or i.round <= r]
        run_dir = RunDir(out / f"round_{r}")
        run_dir.write_config({"algo": "dagger-round", "round": r, "env_id": env_id, "train_episodes": len(training)})
        policy = fit_policy(training, env_id, run_dir.path, policy=cfg.policy, policy_config=cfg.policy_config,
                            train=train, seed=cfg.seed, init=previous if cfg.warm_start else None,
                            progress=progress)
        result = evaluate(policy, env_id, cfg.eval_episodes, seed=cfg.seed, workers=cfg.workers, progress=progress)
        row = DAggerRound(r, beta, labelled, len(training), result.success_rate, result.ci_low, result.ci_high,
                          result.mean_length, time.time() - t0)
        append_row(out / "rounds.jsonl", row)
        results.append(row)
        if on_round is not None:
            on_round(row)
    return results


def load_dagger_policy(out: str | Path) -> Policy:
    """The policy of the last finished round of a DAgger run folder."""
    rows = _finished(Path(out))
    if not rows:
        raise ValueError(f"{out}: no finished DAgger round")
    return load_policy(RunDir(Path(out) / f"round_{rows[-1].round}").checkpoint("last"))


register(Algorithm("dagger", DAggerConfig, run_dagger, load_dagger_policy, evaluated="last round",
                   stages=("dagger-round",)))
