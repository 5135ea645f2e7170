"""The practice engine: one loop for every kind of practice (on-policy RL, steps-to-go, off-policy).

Every kind of practice is the same loop with three parts swapped::

    schedule ──► collector (current weights) ──► run store practice.h5 (provenance) ──► reward source
       ▲                                                                                    │ labels
       └──────────────── evaluation schedule, rows, checkpoint ◄── update rule ◄───────────┘

* a :class:`Schedule` says whether another batch fits and collects it (the seam for a later
  asynchronous mode: today's deterministic schedules are :class:`SeedRule`, on-policy's "take seeds
  until the batch holds enough steps", and ``practice.Cycles``, off-policy's fixed cycles);
* a :class:`RewardSource` labels the episodes (simulator success, the env's reward, a GAIL/AIRL
  discriminator, the steps-to-go head) and may learn from them first;
* an :class:`UpdateRule` learns from the labelled batch (REINFORCE, PPO, the off-policy learner).

The engine owns what they share: the one resume path (a checkpoint with the policy, the rule's and
the reward's state, the generator, the counters and the rows), the rows file, the metrics and
TensorBoard writer (:meth:`RunDir.log`), the progress bar, the evaluation schedule and the ``on_row``
callback. What differs per algorithm (its row, its evaluation, its rollout job) is a :class:`Method`.

Every practice episode is stored in ``out/practice.h5`` with provenance (``source="self"``,
``round`` = iteration or cycle, ``weights_version``), without the sampler's per-step ``kept``
actions (the replay and the update hold them in memory). A kill loses at most the step under way:
the store is append-only, so on resume the step's episodes are read back or recollected (they are a
function of their seeds and the checkpointed weights) and never stored twice.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Protocol

import numpy as np
import torch
from tqdm import tqdm

from automimic.checkpoint_io import read_checkpoint
from automimic.data.episode import Episode
from automimic.data.store import EpisodeStore
from automimic.policies import Policy, policy_payload
from automimic.rollout.collector import Collector
from automimic.rollout.workers import RolloutJob
from automimic.training.run_dir import RunDir, append_row

#: The store every kind of practice writes its episodes to, inside the run folder.
PRACTICE_STORE = "practice.h5"
#: Counters every engine run keeps: finished steps (iterations or cycles), env steps, practice episodes.
COUNTERS = {"steps": 0, "env_steps": 0, "episodes": 0}


@dataclass(frozen=True)
class Labelled:
    """A collected batch with its labels: per episode the rewards ``(T,)`` and whether it ended for good."""

    episodes: list[Episode]
    rewards: list[np.ndarray]
    terminals: list[bool]
    info: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not len(self.episodes) == len(self.rewards) == len(self.terminals):
            raise ValueError(f"{len(self.episodes)} episodes but {len(self.rewards)} rewards and "
                             f"{len(self.terminals)} terminal flags")


class RewardSource(Protocol):
    """Where practice rewards come from."""

    name: str

    def update(self, episodes: list[Episode], policy: Policy, generator: torch.Generator) -> dict[str, float]:
        """Learn from this batch before it is scored (a discriminator's steps); returns stats."""

    def rewards(self, episodes: list[Episode], policy: Policy) -> list[np.ndarray]:
        """The reward ``(T,)`` of every step of every episode."""

    def terminals(self, episodes: list[Episode]) -> list[bool]:
        """Whether each episode ended for good (else its last state is bootstrapped)."""

    def state(self) -> dict[str, Any]:
        """Everything needed to resume (weights, optimiser)."""

    def load(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`state`."""


def practice_env_kwargs(perturb: float, horizon: int) -> dict[str, Any]:
    """The env settings of practice episodes: start perturbation and, if set (> 0), the step budget."""
    return {"perturb": perturb, **({"horizon": horizon} if horizon else {})}


def env_terminals(episodes: list[Episode]) -> list[bool]:
    """Whether the env itself ended each episode (Gymnasium's ``terminated``); a cut or success stop is not an end."""
    return [bool(e.attrs.get("terminated", False)) for e in episodes]


def label(reward: RewardSource, episodes: list[Episode], policy: Policy, generator: torch.Generator) -> Labelled:
    """Let ``reward`` learn from ``episodes``, then label them."""
    info = reward.update(episodes, policy, generator)
    return Labelled(episodes, reward.rewards(episodes, policy), reward.terminals(episodes), info)


class UpdateRule(Protocol):
    """How the policy learns from labelled batches."""

    def begin(self, generator: torch.Generator) -> None:
        """Once, before the first evaluation of a fresh run (a warm-up); most rules do nothing."""

    def learn(self, batch: Labelled, generator: torch.Generator, counters: dict[str, Any]) -> dict[str, float]:
        """Learn from one batch (``counters`` already count it); returns stats for the row."""

    def state(self) -> dict[str, Any]:
        """Everything needed to resume (optimiser, critics, value function)."""

    def load(self, state: dict[str, Any], past: Callable[[], Labelled]) -> None:
        """Inverse of :meth:`state`; ``past()`` labels the practice episodes the checkpoint counts (a replay's)."""


class Schedule(Protocol):
    """Which episodes come next, and when they are collected (synchronously, or ahead in the background)."""

    unit: str  # the counter the progress bar follows: "steps" or "env_steps"
    total: int  # that counter's end

    def more(self, counters: dict[str, Any]) -> bool:
        """Whether another batch fits."""

    def collect(self, collector: Collector, job: RolloutJob, counters: dict[str, Any],
                store: EpisodeStore) -> tuple[list[Episode], int]:
        """The next batch, stored in ``store``, and how many stale episodes were run and dropped."""

    def settle(self) -> None:
        """Wait for collection still running (evaluation is about to use the workers)."""

    def state(self) -> dict[str, Any]:
        """What to checkpoint beyond the counters (an asynchronous schedule's cycles in flight)."""

    def load(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`state`."""

    def close(self) -> None:
        """Stop any background collection."""


def store_new(store: EpisodeStore, stored: int, episodes: list[Episode]) -> None:
    """Append those of ``episodes`` (practice episodes ``stored``, ``stored + 1``, ...) that ``store`` lacks.

    A killed step may have stored its episodes already; they must be the same seeds.
    """
    names = store.names() if store.path.exists() else []
    have = [store.read(n).seed for n in names[stored: stored + len(episodes)]]
    if have != [e.seed for e in episodes[: len(have)]]:
        raise ValueError(f"{store.path}: holds practice episodes this run's checkpoint does not know; "
                         "delete the run folder or use a new --out")
    for episode in episodes[len(have):]:
        store.append(dataclasses.replace(episode, attrs={k: v for k, v in episode.attrs.items() if k != "kept"}))


@dataclass(frozen=True)
class Step:
    """What one collect-label-learn step did, for the method's row."""

    batch: Labelled
    dropped: int
    stats: dict[str, float]
    collect_s: float
    learn_s: float
    seconds: float


class Method(Protocol):
    """What differs between algorithms around the shared loop."""

    row_class: type  # the dataclass of a row
    step_field: str  # the row field that is the metrics' step ("iteration" or "env_steps")
    eval_unit: str  # the counter evaluation is scheduled on
    eval_every: int

    def job(self, counters: dict[str, Any]) -> RolloutJob:
        """The rollout job of the next batch (actor with the current weights, provenance)."""

    def evaluate(self, collector: Collector) -> dict[str, float]:
        """Evaluate the current policy (eval seeds); the row's evaluation fields."""

    def row(self, counters: dict[str, Any], step: Step | None, evaluation: dict[str, float] | None) -> Any:
        """The row after ``step`` (``None``: the first row, before practice); ``None`` for no row."""


@dataclass
class PerIteration:
    """Base of the methods with one row per iteration and evaluations every ``cfg.eval_every`` iterations.

    ``cfg`` is the algorithm's config (it has ``eval_every``, ``perturb`` and ``horizon``).
    """

    policy: Policy
    cfg: Any
    env_id: str
    step_field: ClassVar[str] = "iteration"
    eval_unit: ClassVar[str] = "steps"

    def __post_init__(self) -> None:
        self.eval_every: int = self.cfg.eval_every


@dataclass
class Checkpoint:
    """Where a run keeps its progress: the checkpoint file and the rows file of its folder."""

    out: Path
    checkpoint: str
    rows: str

    def save(self, payload: dict[str, Any]) -> None:
        """Write ``payload`` atomically (a kill leaves the previous checkpoint)."""
        path = self.out / self.checkpoint
        tmp = path.with_suffix(".tmp")
        torch.save(payload, tmp)
        tmp.replace(path)

    def load(self) -> dict[str, Any] | None:
        """The last checkpoint, or ``None`` for a fresh run."""
        path = self.out / self.checkpoint
        return read_checkpoint(path, "practice checkpoint") if path.exists() else None

    def rewrite_rows(self, rows: list[Any]) -> None:
        """Rewrite the rows file from the checkpoint, so a kill between the two writes leaves no stray line."""
        (self.out / self.rows).write_text("".join(json.dumps(dataclasses.asdict(r)) + "\n" for r in rows))


def row_metrics(row: Any, step_field: str) -> dict[str, float]:
    """A row's numbers for :meth:`RunDir.log`: every number but the step, and ``x_info`` dicts as ``x/key``."""
    numbers: dict[str, float] = {}
    extra: dict[str, float] = {}
    for k, v in dataclasses.asdict(row).items():
        if isinstance(v, (int, float)) and not isinstance(v, bool) and k != step_field:
            numbers[k] = v
        elif isinstance(v, dict):
            extra.update({f"{k.removesuffix('_info')}/{key}": value for key, value in v.items()})
    return {**numbers, **extra}


@dataclass
class Engine:
    """One practice run: ``policy`` collects under ``schedule``, ``reward`` labels, ``rule`` learns.

    Args:
        policy: the policy being practised (its weights are checkpointed and loaded in place).
        reward: the reward source.
        rule: the update rule.
        schedule: what to collect next.
        method: the algorithm's rows, evaluation and rollout job.
        files: the checkpoint and rows files.
        generator: the training randomness (checkpointed).
        desc: the progress bar's label.
    """

    policy: Policy
    reward: RewardSource
    rule: UpdateRule
    schedule: Schedule
    method: Method
    files: Checkpoint
    generator: torch.Generator
    desc: str = "practice"

    def run(self, collector: Collector, env_id: str, progress: bool = True,
            on_row: Callable[[Any], None] | None = None) -> list[Any]:
        """Run (or resume) practice with ``collector``; returns every row."""
        out = self.files.out
        run = RunDir(out)
        store = EpisodeStore(out / PRACTICE_STORE, env_id)
        counters, rows = self._resume(run, store)
        self.files.rewrite_rows(rows)

        def save(row: Any) -> None:
            if row is not None:
                rows.append(row)
            self.files.save({"policy": policy_payload(self.policy), "rule": self.rule.state(),
                             "reward": self.reward.state(), "generator": self.generator.get_state(),
                             "schedule": self.schedule.state(), "counters": counters,
                             "rows": [dataclasses.asdict(r) for r in rows]})
            if row is not None:
                append_row(out / self.files.rows, row)
                run.log(getattr(row, self.method.step_field), row_metrics(row, self.method.step_field))
                if on_row is not None:
                    on_row(row)

        unit = self.schedule.unit
        bar = tqdm(total=self.schedule.total, initial=counters[unit], desc=self.desc,
                   unit="iter" if unit == "steps" else "step", disable=not progress)
        try:
            if not rows:
                self.rule.begin(self.generator)
                save(self.method.row(counters, None, self._evaluate(collector, counters)))
            while self.schedule.more(counters):
                before = counters[unit]
                save(self._step(collector, store, counters))
                bar.update(counters[unit] - before)
        finally:
            self.schedule.close()
            bar.close()
            run.close()
        return rows

    def _resume(self, run: RunDir, store: EpisodeStore) -> tuple[dict[str, Any], list[Any]]:
        """The counters and rows of the last checkpoint (fresh ones without), with every part loaded."""
        state = self.files.load()
        if state is None:
            return dict(COUNTERS), []
        missing = sorted({"policy", "rule", "reward", "generator", "counters", "rows"} - set(state))
        if missing:
            raise ValueError(f"{self.files.out / self.files.checkpoint}: written by an automimic before the practice "
                             f"engine (no {', '.join(missing)}); it cannot resume: delete the run folder or use a "
                             "new --out")
        self.policy.load_state_dict(state["policy"]["state_dict"])
        counters = state["counters"]
        self.reward.load(state["reward"])
        self.rule.load(state["rule"], lambda: self._relabel(store.episodes(limit=counters["episodes"])))
        self.generator.set_state(state["generator"])
        self.schedule.load(state.get("schedule") or {})
        rows = [self.method.row_class(**r) for r in state["rows"]]
        run.drop_metrics_after(getattr(rows[-1], self.method.step_field))
        return counters, rows

    def _relabel(self, episodes: list[Episode]) -> Labelled:
        """Labels of stored episodes, without letting the reward source learn from them again."""
        return Labelled(episodes, self.reward.rewards(episodes, self.policy), self.reward.terminals(episodes))

    def _evaluate(self, collector: Collector, counters: dict[str, Any]) -> dict[str, float]:
        """Evaluate and schedule the next evaluation."""
        self.schedule.settle()
        evaluation = self.method.evaluate(collector)
        counters["next_eval"] = counters[self.method.eval_unit] + self.method.eval_every
        counters["eval_length"] = evaluation.get("eval_length")
        return evaluation

    def _step(self, collector: Collector, store: EpisodeStore, counters: dict[str, Any]) -> Any:
        """Collect, label and learn from one batch; evaluate when due; the method's row."""
        t0 = time.time()
        episodes, dropped = self.schedule.collect(collector, self.method.job(counters), counters, store)
        t1 = time.time()
        counters["episodes"] += len(episodes)
        counters["env_steps"] += sum(e.length for e in episodes)
        counters["steps"] += 1
        counters["mean_length"] = float(np.mean([e.length for e in episodes]))
        batch = label(self.reward, episodes, self.policy, self.generator)
        stats = self.rule.learn(batch, self.generator, counters)
        t2 = time.time()
        due = counters[self.method.eval_unit] >= counters["next_eval"] or not self.schedule.more(counters)
        evaluation = self._evaluate(collector, counters) if due else None
        return self.method.row(counters, Step(batch, dropped, stats, t1 - t0, t2 - t1, time.time() - t0), evaluation)
