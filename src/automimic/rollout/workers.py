"""Rollout jobs and what a worker does with one: build the env and actor once, then run seeds.

Results come back in the order of the seeds whatever the number of workers, and each episode is
a function of its seed alone, so ``--workers 1`` and ``--workers 4`` give the same episodes.
Workers are started with ``spawn``: forking a process that has already run torch's thread pool
can deadlock. Scheduling, retries and dead workers are :mod:`automimic.rollout.collector`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

from automimic.data.episode import Episode
from automimic.envs import make_env
from automimic.rollout.actors import ActorSpec
from automimic.rollout.episode_runner import run_episode


@dataclass(frozen=True)
class RolloutJob:
    """What every worker needs: which env, which actor, and how episodes are labelled."""

    env_id: str
    actor: ActorSpec
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    source: str = "expert"
    round: int = 0
    stop_on_success: bool = True


_worker_state: dict[str, Any] = {}


def _init_worker(job: RolloutJob, pooled: bool = True) -> None:
    if pooled:
        import torch

        torch.set_num_threads(1)  # one core per worker: the pool provides the parallelism
    _worker_state["job"] = job
    _worker_state["env"] = make_env(job.env_id, **{**job.actor.env_kwargs(), **job.env_kwargs})
    _worker_state["actor"] = job.actor.build()


def _run_one(seed: int) -> Episode:
    job: RolloutJob = _worker_state["job"]
    return run_episode(_worker_state["env"], _worker_state["actor"], seed, source=job.source, round=job.round,
                       stop_on_success=job.stop_on_success)


def _rebuild_env() -> None:
    """Replace this worker's env and actor: after the simulator raised, its state cannot be trusted."""
    job: RolloutJob = _worker_state["job"]
    try:
        _worker_state["env"].close()
    except Exception:  # noqa: BLE001 - a broken simulator may fail to close too
        pass
    _worker_state["env"] = make_env(job.env_id, **{**job.actor.env_kwargs(), **job.env_kwargs})
    _worker_state["actor"] = job.actor.build()


def _run_one_guarded(seed: int) -> Episode:
    """:func:`_run_one` in a pool worker: on an error, rebuild the env before reporting it."""
    try:
        return _run_one(seed)
    except Exception:
        _rebuild_env()
        raise


def _close_worker() -> None:
    env = _worker_state.get("env")
    if env is not None:
        env.close()
    _worker_state.clear()


def iter_episodes(job: RolloutJob, seeds: Sequence[int], workers: int = 1) -> Iterator[Episode]:
    """Yield one episode per seed, in seed order, using ``workers`` processes (1 = in-process).

    A thin front for :func:`automimic.rollout.collector.make_collector`, which also survives
    simulator errors and dead workers.
    """
    from automimic.rollout.collector import make_collector

    yield from make_collector(workers).episodes(job, seeds)


def run_episodes(job: RolloutJob, seeds: Sequence[int], workers: int = 1,
                 on_episode: Callable[[Episode], None] | None = None) -> list[Episode]:
    """Collect the episodes of :func:`iter_episodes` into a list, calling ``on_episode`` on each."""
    episodes = []
    for episode in iter_episodes(job, seeds, workers):
        if on_episode is not None:
            on_episode(episode)
        episodes.append(episode)
    return episodes
