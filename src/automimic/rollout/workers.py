"""Run many episodes, in this process or in a pool of worker processes, in seed order.

Results come back in the order of the seeds whatever the number of workers, and each episode is
a function of its seed alone, so ``--workers 1`` and ``--workers 4`` give the same episodes.
Workers are started with ``spawn``: forking a process that has already run torch's thread pool
can deadlock.
"""

from __future__ import annotations

import multiprocessing as mp
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


def iter_episodes(job: RolloutJob, seeds: Sequence[int], workers: int = 1) -> Iterator[Episode]:
    """Yield one episode per seed, in seed order, using ``workers`` processes (1 = in-process)."""
    if workers <= 1:
        _init_worker(job, pooled=False)
        try:
            for seed in seeds:
                yield _run_one(seed)
        finally:
            _worker_state["env"].close()
            _worker_state.clear()
        return
    ctx = mp.get_context("spawn")
    with ctx.Pool(min(workers, len(seeds)) or 1, initializer=_init_worker, initargs=(job,)) as pool:
        yield from pool.imap(_run_one, seeds, chunksize=1)


def run_episodes(job: RolloutJob, seeds: Sequence[int], workers: int = 1,
                 on_episode: Callable[[Episode], None] | None = None) -> list[Episode]:
    """Collect the episodes of :func:`iter_episodes` into a list, calling ``on_episode`` on each."""
    episodes = []
    for episode in iter_episodes(job, seeds, workers):
        if on_episode is not None:
            on_episode(episode)
        episodes.append(episode)
    return episodes
