"""The deterministic collection schedules of the practice engine (:mod:`automimic.algos.engine`).

* :class:`SeedRule` (on-policy RL, steps-to-go): each step takes practice seeds in order until their
  episodes hold ``min_steps`` env steps (:func:`practice_rollouts`).
* :class:`Cycles` (off-policy practice): each step is ``count`` episodes with the current weights,
  while the longest possible cycle still fits the env-step budget.

Both are functions of the run seed alone, so every backend and worker count collects the same
episodes; an asynchronous mode would be a third :class:`~automimic.algos.engine.Schedule`.
"""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass
class SeedRule:
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
class Cycles:
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
