"""The deterministic collection schedules of the practice engine (:mod:`automimic.algos.engine`).

* :class:`SeedRule` (on-policy RL, steps-to-go): each step takes practice seeds in order until their
  episodes hold ``min_steps`` env steps (:func:`practice_rollouts`).
* :class:`Cycles` (off-policy practice): each step is ``count`` episodes with the current weights,
  while the longest possible cycle still fits the env-step budget.

* :class:`Pipelined` (off-policy practice, ``async_lag`` ≥ 1): :class:`Cycles` collected
  asynchronously: rollout workers run up to ``lag`` cycles ahead of the learner, so they keep
  stepping while it updates, and an episode's weights are at most ``lag`` cycles old.

All three are functions of the run seed alone (and of ``lag``), so every backend and worker count
collects the same episodes.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from automimic.algos.engine import store_new
from automimic.data.episode import Episode
from automimic.data.store import EpisodeStore
from automimic.rollout.collector import Collector
from automimic.rollout.workers import RolloutJob
from automimic.seeding import BLOCK, episode_seeds


def practice_rollouts(collector: Collector, job: RolloutJob, seed: int, start: int, min_steps: int,
                      max_episodes: int | None, expected_length: float, robots: int) -> tuple[list[Episode], int]:
    """The sampled episodes of one iteration and how many more were run and dropped.

    The iteration takes practice seeds from index ``start`` in order until their episodes hold
    ``min_steps`` env steps (or ``max_episodes`` are taken): a rule on seeds alone, so every backend
    and worker count takes the same episodes. Seeds are requested in batches sized from
    ``expected_length`` (rounded up to whole multiples of ``robots``); episodes beyond the rule
    come from the current weights but would be stale after the update, so they are dropped and
    their seeds run again with the next weights.
    """
    taken: list[Episode] = []
    steps = dropped = 0
    index = start
    while steps < min_steps and (max_episodes is None or len(taken) < max_episodes):
        n = int(np.ceil((min_steps - steps) / max(expected_length, 1.0)))
        n = int(np.ceil(n / robots)) * robots
        if max_episodes is not None:
            n = min(n, max_episodes - len(taken))
        if index + n > BLOCK:
            raise ValueError(f"practice would use more than the {BLOCK} practice seeds of run seed {seed}")
        for ep in collector.episodes(job, episode_seeds("practice", seed, n, start=index)):
            if steps >= min_steps or (max_episodes is not None and len(taken) >= max_episodes):
                dropped += 1
                continue
            taken.append(ep)
            steps += ep.length
            index += 1
    return taken, dropped


class Synchronous:
    """What a schedule that collects only when asked has to do for the engine's hooks: nothing."""

    def settle(self) -> None:
        """No collection runs between steps."""

    def state(self) -> dict[str, Any]:
        """Nothing to checkpoint: the counters say where the schedule stands."""
        return {}

    def load(self, state: dict[str, Any]) -> None:
        """Nothing to restore."""

    def close(self) -> None:
        """Nothing to stop."""


@dataclass
class SeedRule(Synchronous):
    """On-policy schedule: ``iterations`` steps of :func:`practice_rollouts` (at most ``episode_budget`` episodes).

    Args:
        seed: the run seed (practice seeds are drawn from its block).
        iterations: steps to run.
        min_steps: env steps per step.
        robots: envs stepping at once (``workers * robots``), the batch size of seed requests.
        first_length: expected episode length before any practice when the first evaluation gives none.
        episode_budget: stop once this many practice episodes have been run (0: no cap).
        take: the rule itself (a parameter so a test can watch it).
    """

    seed: int
    iterations: int
    min_steps: int
    robots: int
    first_length: float = 100.0
    episode_budget: int = 0
    take: Callable[..., tuple[list[Episode], int]] = practice_rollouts
    unit: str = "steps"

    @property
    def total(self) -> int:
        """Iterations of the progress bar."""
        return self.iterations

    def more(self, counters: dict[str, Any]) -> bool:
        """Iterations left and, with a budget, episodes left."""
        return counters["steps"] < self.iterations and not (
            self.episode_budget and counters["episodes"] >= self.episode_budget)

    def collect(self, collector: Collector, job: RolloutJob, counters: dict[str, Any],
                store: EpisodeStore) -> tuple[list[Episode], int]:
        """The next iteration's episodes; the previous one's mean length sizes the seed requests."""
        left = self.episode_budget - counters["episodes"] if self.episode_budget else None
        expected = counters.get("mean_length") or counters.get("eval_length") or self.first_length
        episodes, dropped = self.take(collector, job, self.seed, counters["episodes"], self.min_steps, left,
                                      expected, self.robots)
        store_new(store, counters["episodes"], episodes)
        return episodes, dropped


@dataclass
class Cycles(Synchronous):
    """Off-policy schedule: cycles of ``count`` episodes while ``count * horizon`` more env steps fit ``budget``.

    Episodes a killed cycle already stored are read back instead of run again.
    """

    seed: int
    count: int
    horizon: int
    budget: int
    unit: str = "env_steps"

    @property
    def total(self) -> int:
        """Env steps of the progress bar."""
        return self.budget

    def more(self, counters: dict[str, Any]) -> bool:
        """Whether the longest possible next cycle fits the budget."""
        return counters["env_steps"] + self.count * self.horizon <= self.budget

    def collect(self, collector: Collector, job: RolloutJob, counters: dict[str, Any],
                store: EpisodeStore) -> tuple[list[Episode], int]:
        """The next cycle's episodes after the ones the checkpoint counts: any a killed run stored, then fresh ones."""
        stored = counters["episodes"]
        if stored + self.count > BLOCK:
            raise ValueError(f"practice would use more than the {BLOCK} practice seeds of run seed {self.seed}")
        seeds = episode_seeds("practice", self.seed, self.count, start=stored)
        names = store.names() if store.path.exists() else []
        done = [store.read(n) for n in names[stored: stored + self.count]]
        store_new(store, stored, done)  # checks that they are this run's seeds
        done += list(collector.episodes(job, seeds[len(done):]))
        store_new(store, stored, done)
        return done, 0


@dataclass
class Pipelined(Cycles):
    """:class:`Cycles` collected ``lag`` cycles ahead of the learner, in a background thread.

    When the learner takes cycle ``i``, cycles ``i + 1 .. i + lag`` are already being collected
    with the weights of the steps they were submitted at, and cycle ``i + lag + 1`` is submitted
    with the current weights (a snapshot: :func:`policy_payload` copies them). So the workers step
    while the learner updates, and cycle ``c`` acts with the weights after cycle ``c - lag - 1``
    (the starting weights for the first ``lag + 1``). What it gives up against :class:`Cycles`:
    freshness (an episode's weights are up to ``lag`` cycles old, recorded as
    ``attrs["weights_lag"]``), so results differ from the synchronous run's; the rule stays a
    function of the seed and ``lag``, so a run still repeats and resumes exactly. A cycle is
    submitted only if it fits the budget even if every cycle in flight runs to the horizon, and
    evaluation waits for the cycles in flight (it shares the workers). Use worker processes (or
    Ray): in-process collection would compete with the learner for the interpreter.
    """

    lag: int = 1
    _pending: deque = field(default_factory=deque, init=False, repr=False)
    _restored: list = field(default_factory=list, init=False, repr=False)
    _pool: ThreadPoolExecutor | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.lag < 1:
            raise ValueError(f"lag must be >= 1, got {self.lag}")

    def _fits(self, counters: dict[str, Any], cycles: int) -> bool:
        return counters["env_steps"] + cycles * self.count * self.horizon <= self.budget

    def _submit(self, collector: Collector, cycle: int, job: RolloutJob, at: int) -> None:
        """Start collecting ``cycle`` with ``job``'s weights, taken when the learner had ``at`` cycles."""
        if (cycle + 1) * self.count > BLOCK:
            raise ValueError(f"practice would use more than the {BLOCK} practice seeds of run seed {self.seed}")
        seeds = episode_seeds("practice", self.seed, self.count, start=cycle * self.count)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="practice-collect")
        future: Future = self._pool.submit(lambda: list(collector.episodes(job, seeds)))
        self._pending.append((cycle, job, at, future))

    def collect(self, collector: Collector, job: RolloutJob, counters: dict[str, Any],
                store: EpisodeStore) -> tuple[list[Episode], int]:
        """Cycle ``counters["steps"]``'s episodes (collected earlier, or now if none is in flight),
        after topping the pipeline up with the current weights."""
        taken = counters["steps"]
        for cycle, old, at in self._restored:  # cycles in flight when the checkpoint was written
            self._submit(collector, cycle, old, at)
        self._restored = []
        while len(self._pending) <= self.lag and self._fits(counters, len(self._pending) + 1):
            cycle = taken + len(self._pending)
            self._submit(collector, cycle, dataclasses.replace(job, round=cycle), taken)
        cycle, _, at, future = self._pending.popleft()
        if cycle != taken:
            raise RuntimeError(f"pipelined practice: cycle {cycle} came up where cycle {taken} was due")
        episodes = [dataclasses.replace(e, attrs={**e.attrs, "weights_lag": taken - at}) for e in future.result()]
        store_new(store, counters["episodes"], episodes)
        return episodes, 0

    def settle(self) -> None:
        """Wait for the cycles in flight (their episodes are kept for their turn)."""
        for *_, future in self._pending:
            future.result()

    def state(self) -> dict[str, Any]:
        """The cycles in flight and the weights they were submitted with, to submit again on resume."""
        return {"pending": [(cycle, job, at) for cycle, job, at, _ in self._pending]}

    def load(self, state: dict[str, Any]) -> None:
        """Resubmit (at the next :meth:`collect`) the cycles that were in flight."""
        self._restored = list(state.get("pending", []))

    def close(self) -> None:
        """Wait for and stop the collection thread."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
