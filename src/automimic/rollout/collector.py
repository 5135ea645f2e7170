"""Collectors: run one episode per seed on some backend and yield them in seed order, surviving failures.

Every algorithm asks a :class:`Collector` for episodes; the backend is a setting. ``InProcess``
runs them here; ``LocalWorkers`` runs them in a pool of ``spawn``-ed processes; ``RayWorkers`` on
Ray actors, locally or across a cluster. An episode is a function of its seed, so a failed attempt
can simply be run again:

* the simulator raises inside an episode: that worker's env is rebuilt, the partial episode is
  discarded and counted, and the seed is retried (up to ``retries`` times, then the error is raised
  with the seed named, since a start state that always crashes is a bug to see, not to skip);
* a worker process dies (killed, out of memory): it is replaced and the episodes it took with it are
  discarded, counted and run again (a dead process breaks a whole local pool, so every episode under
  way in it is lost; a dead Ray actor loses only its own).
Yielded episodes are therefore identical to a failure-free run's, and :attr:`Collector.stats`
says what it took.
"""

from __future__ import annotations

import abc
import logging
import multiprocessing as mp
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Iterator, Sequence

from automimic.data.episode import Episode
from automimic.rollout import workers as _w

log = logging.getLogger(__name__)


@dataclass
class CollectorStats:
    """What failures cost so far.

    Attributes:
        episodes: episodes delivered.
        sim_errors: episode attempts in which the simulator (or actor) raised.
        worker_deaths: times a worker process died and its pool was replaced.
        discarded: episode attempts thrown away (and re-run) because of either: the partial episode
            of a simulator error or of a dead worker, and, when a dead process breaks a local
            pool, every episode that pool had started or queued.
    """

    episodes: int = 0
    sim_errors: int = 0
    worker_deaths: int = 0
    discarded: int = 0


class Collector(abc.ABC):
    """Base: ``episodes(job, seeds)`` yields one :class:`Episode` per seed, in seed order.

    Args:
        retries: attempts allowed per seed after a simulator error before giving up.
    """

    def __init__(self, retries: int = 2) -> None:
        self.retries = retries
        self.stats = CollectorStats()

    @abc.abstractmethod
    def episodes(self, job: _w.RolloutJob, seeds: Sequence[int]) -> Iterator[Episode]:
        """Yield the episode of every seed, in order."""

    def _sim_error(self, seed: int, attempts: int, err: BaseException) -> None:
        self.stats.sim_errors += 1
        self.stats.discarded += 1
        log.warning("seed %d: episode raised %s: %s; discarded, retrying", seed, type(err).__name__, err)
        if attempts > self.retries:
            raise RuntimeError(f"seed {seed}: the episode failed {attempts} times; last error "
                               f"{type(err).__name__}: {err}") from err


class InProcess(Collector):
    """Episodes one after another in this process."""

    def episodes(self, job: _w.RolloutJob, seeds: Sequence[int]) -> Iterator[Episode]:
        """Yield the episode of every seed, in order."""
        _w._init_worker(job, pooled=False)
        try:
            for seed in seeds:
                attempts = 0
                while True:
                    try:
                        episode = _w._run_one(seed)
                        break
                    except Exception as err:  # noqa: BLE001 - any simulator error: rebuild, retry
                        attempts += 1
                        _w._rebuild_env()
                        self._sim_error(seed, attempts, err)
                self.stats.episodes += 1
                yield episode
        finally:
            _w._close_worker()


class LocalWorkers(Collector):
    """Episodes in ``workers`` spawned processes (one core each), at most ``2 × workers`` under way.

    Args:
        workers: worker processes.
        retries: attempts allowed per seed after a simulator error.
    """

    def __init__(self, workers: int, retries: int = 2) -> None:
        super().__init__(retries)
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = workers
        self._executor: ProcessPoolExecutor | None = None

    def worker_pids(self) -> list[int]:
        """PIDs of the current pool's processes (for monitoring, and for tests that kill one)."""
        processes = getattr(self._executor, "_processes", None) or {}
        return sorted(processes)

    def _new_pool(self, job: _w.RolloutJob, size: int) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(size, mp_context=mp.get_context("spawn"), initializer=_w._init_worker,
                                   initargs=(job,))

    def episodes(self, job: _w.RolloutJob, seeds: Sequence[int]) -> Iterator[Episode]:
        """Yield the episode of every seed, in order, replacing dead workers and retrying failed seeds."""
        seeds = list(seeds)
        size = max(1, min(self.workers, len(seeds)))
        todo: deque[int] = deque(range(len(seeds)))
        running: dict[Future, int] = {}
        ready: dict[int, Episode] = {}
        attempts = [0] * len(seeds)
        next_out = 0
        self._executor = self._new_pool(job, size)
        try:
            while next_out < len(seeds):
                while todo and len(running) < 2 * size:
                    i = todo.popleft()
                    running[self._executor.submit(_w._run_one_guarded, seeds[i])] = i
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                broken = False
                for future in done:
                    i = running.pop(future)
                    try:
                        ready[i] = future.result()
                    except BrokenProcessPool:
                        broken = True
                        todo.appendleft(i)
                        self.stats.discarded += 1
                    except Exception as err:  # noqa: BLE001 - the worker rebuilt its env already
                        attempts[i] += 1
                        todo.appendleft(i)
                        self._sim_error(seeds[i], attempts[i], err)
                if broken:
                    # A dead worker breaks the whole pool: what was under way anywhere in it is lost.
                    self.stats.worker_deaths += 1
                    self.stats.discarded += len(running)
                    todo.extendleft(sorted(running.values(), reverse=True))
                    running.clear()
                    log.warning("a rollout worker died; pool replaced, %d seeds re-queued", len(todo))
                    self._executor.shutdown(wait=False, cancel_futures=True)
                    self._executor = self._new_pool(job, size)
                while next_out in ready:
                    self.stats.episodes += 1
                    yield ready.pop(next_out)
                    next_out += 1
        finally:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


class _RayRolloutActor:
    """One Ray actor: an env and an actor built once, then one episode per call."""

    def __init__(self, job: _w.RolloutJob) -> None:
        _w._init_worker(job)

    def pid(self) -> int:
        """The actor's process id."""
        import os

        return os.getpid()

    def run(self, seed: int) -> Episode:
        """The episode of ``seed`` (the env is rebuilt before an error is reported)."""
        return _w._run_one_guarded(seed)


class RayWorkers(Collector):
    """Episodes on ``workers`` Ray actors (one CPU each), one episode per actor at a time.

    Uses the running Ray session, or starts one: ``address=None`` starts a local one with
    ``num_cpus=workers``; ``"auto"`` or ``"HOST:PORT"`` joins a cluster. A dead actor loses only
    the episode it was running; it is replaced and the seed re-run.

    Args:
        workers: actors.
        address: Ray cluster address (``None``: local).
        retries: attempts allowed per seed after a simulator error.
    """

    def __init__(self, workers: int, address: str | None = None, retries: int = 2) -> None:
        super().__init__(retries)
        self.ray = require_ray()
        if not self.ray.is_initialized():
            start_ray_env()
            kwargs = {"address": address} if address else {"num_cpus": workers}
            self.ray.init(include_dashboard=False, log_to_driver=False, **kwargs)
        self.workers = workers
        self._pids: dict[object, int] = {}

    def worker_pids(self) -> list[int]:
        """Process ids of the live actors."""
        return sorted(self._pids.values())

    def _spawn(self, remote_cls, job: _w.RolloutJob):
        actor = remote_cls.remote(job)
        self._pids[actor] = self.ray.get(actor.pid.remote())
        return actor

    def episodes(self, job: _w.RolloutJob, seeds: Sequence[int]) -> Iterator[Episode]:
        """Yield the episode of every seed, in order, replacing dead actors and retrying failed seeds."""
        ray = self.ray
        from ray.exceptions import RayActorError, RayTaskError

        seeds = list(seeds)
        remote_cls = ray.remote(num_cpus=1)(_RayRolloutActor)
        free = deque(self._spawn(remote_cls, job) for _ in range(max(1, min(self.workers, len(seeds)))))
        todo: deque[int] = deque(range(len(seeds)))
        running: dict[object, tuple[int, object]] = {}
        ready: dict[int, Episode] = {}
        attempts = [0] * len(seeds)
        next_out = 0
        try:
            while next_out < len(seeds):
                while todo and free:
                    i, actor = todo.popleft(), free.popleft()
                    running[actor.run.remote(seeds[i])] = (i, actor)
                done, _ = ray.wait(list(running), num_returns=1)
                for ref in done:
                    i, actor = running.pop(ref)
                    try:
                        ready[i] = ray.get(ref)
                        free.append(actor)
                    except RayActorError:
                        self.stats.worker_deaths += 1
                        self.stats.discarded += 1
                        self._pids.pop(actor, None)
                        log.warning("Ray rollout actor died on seed %d; replaced, seed re-queued", seeds[i])
                        todo.appendleft(i)
                        free.append(self._spawn(remote_cls, job))
                    except RayTaskError as err:
                        attempts[i] += 1
                        todo.appendleft(i)
                        free.append(actor)
                        self._sim_error(seeds[i], attempts[i], err.cause if err.cause is not None else err)
                while next_out in ready:
                    self.stats.episodes += 1
                    yield ready.pop(next_out)
                    next_out += 1
        finally:
            for actor in list(free) + [a for _, a in running.values()]:
                ray.kill(actor)
            self._pids.clear()


def start_ray_env() -> None:
    """Environment for a Ray instance this process starts: workers at normal priority.

    Ray starts its workers at niceness 15 by default; next to any busy process they then starve
    (measured: a torch import inside an actor took 50 s instead of 1.3 s while two benchmarks ran).
    Must run before ``ray.init``; an explicit ``RAY_worker_niceness`` wins.
    """
    import os

    os.environ.setdefault("RAY_worker_niceness", "0")


def require_ray():
    """The ``ray`` module, or a one-line error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ValueError("the Ray backend needs Ray: pip install 'automimic[ray]'") from None
    return ray


BACKENDS = ("local", "ray")
_default = {"backend": "local", "address": None}


def set_backend(backend: str, address: str | None = None) -> None:
    """Choose the backend every later ``make_collector`` call uses (the CLI's ``--backend``/``--ray-address``)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown rollout backend {backend!r}; available: {', '.join(BACKENDS)}")
    if backend == "ray":
        require_ray()
    _default.update(backend=backend, address=address)


def make_collector(workers: int = 1, backend: str | None = None, retries: int = 2) -> Collector:
    """The collector for ``workers`` on ``backend`` (default: the one :func:`set_backend` chose).

    ``local`` with one worker runs in-process; with more, in spawned processes. ``ray`` runs
    ``workers`` Ray actors.
    """
    backend = backend or _default["backend"]
    if backend not in BACKENDS:
        raise ValueError(f"unknown rollout backend {backend!r}; available: {', '.join(BACKENDS)}")
    if backend == "ray":
        return RayWorkers(workers, _default["address"], retries)
    return InProcess(retries) if workers <= 1 else LocalWorkers(workers, retries)
