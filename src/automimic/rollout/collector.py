"""Collectors: run one episode per seed on some backend and yield them in seed order, surviving failures.

Every algorithm asks a :class:`Collector` for episodes; the backend is a setting. ``InProcess``
runs them here; ``LocalWorkers`` in a pool of ``spawn``-ed processes; ``RayWorkers`` on Ray
actors, locally or across a cluster. Every worker steps ``envs_per_worker`` envs together with one
batched policy query per step (:class:`~automimic.rollout.workers.Worker`); seeds go out in tasks
of that many. An episode is a function of its seed alone, so a failed attempt can simply be run
again:

* the simulator raises inside an episode: that env is rebuilt, the partial episode is discarded
  and counted, and the seed is retried (up to ``retries`` times, then the error is raised with the
  seed named, since a start state that always crashes is a bug to see, not to skip);
* a worker process dies (killed, out of memory): it is replaced and the episodes it was running
  are discarded, counted and run again (a dead process breaks a whole local pool, so every task
  under way in it is lost; a dead Ray actor loses only its own).

**Weights broadcast.** A job's weights (its actor's payload) are shipped once per version, not
with every task: in-process they are used directly, local workers read them from a file written
once, Ray actors fetch them from the object store. A new payload object means a new version;
workers rebuild their actor when a task names a version they do not hold, and every episode records
the version that produced it in ``attrs["weights_version"]``. **Stale episodes**: when a caller
stops reading a call's episodes early (e.g. practice has enough steps for its update), the tasks
still under way are left to finish and their episodes, now from old weights, are dropped and
counted in :attr:`CollectorStats.stale`; the caller re-runs their seeds with the new weights. On-policy
updates therefore only ever see episodes of the current version.

Yielded episodes are identical to a failure-free in-process run's, and :attr:`Collector.stats`
says what it took.
"""

from __future__ import annotations

import abc
import dataclasses
import logging
import multiprocessing as mp
import os
import shutil
import tempfile
from collections import deque
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from automimic.data.episode import Episode
from automimic.rollout import workers as _w

log = logging.getLogger(__name__)

#: Envs a worker steps together unless told otherwise (see ``benchmarks/throughput.py`` in docs/rollouts.md);
#: ``AUTOMIMIC_ENVS_PER_WORKER=1`` gives the one-env-at-a-time rollouts of benchmarks measured before batching.
DEFAULT_ENVS_PER_WORKER = 4


def _env_default() -> int:
    text = os.environ.get("AUTOMIMIC_ENVS_PER_WORKER", "")
    if not text:
        return DEFAULT_ENVS_PER_WORKER
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"AUTOMIMIC_ENVS_PER_WORKER: expected a whole number >= 1, got {text!r}")
    return int(text)
#: Worker deaths without a finished task in between after which a collector gives up: a worker
#: that cannot even start (say, a spawned process that cannot import the script) would loop forever.
MAX_DEATHS_IN_A_ROW = 5
#: Seconds to wait for a new Ray actor before saying the cluster has no CPU free for it.
RAY_ACTOR_START_TIMEOUT = 120.0


@dataclass
class CollectorStats:
    """What failures and weight changes cost so far.

    Attributes:
        episodes: episodes delivered.
        sim_errors: episode attempts in which the simulator (or the worker's actor) raised.
        worker_deaths: times a worker process died and was replaced.
        discarded: episode attempts thrown away (and re-run) because of either: the partial episode
            of a simulator error, and every episode of a task a dead worker was running (with a
            local pool, of every task under way in it).
        stale: episodes that finished after their caller had stopped reading (weights since
            changed), dropped unseen.
        versions: weight versions shipped to the workers.
    """

    episodes: int = 0
    sim_errors: int = 0
    worker_deaths: int = 0
    discarded: int = 0
    stale: int = 0
    versions: int = 0


class Collector(abc.ABC):
    """Base: ``episodes(job, seeds)`` yields one :class:`Episode` per seed, in seed order.

    Subclasses say how tasks run (``_submit``, ``_wait``); scheduling, ordering, retries and
    versions live here. Use as a context manager, or call :meth:`close`: workers persist between
    calls, so a practice loop pays the start-up once.

    Args:
        envs_per_worker: envs each worker steps together (one batched policy query per step).
        retries: attempts allowed per seed after a simulator error before giving up.
    """

    def __init__(self, envs_per_worker: int = DEFAULT_ENVS_PER_WORKER, retries: int = 2) -> None:
        if envs_per_worker < 1:
            raise ValueError(f"envs_per_worker must be >= 1, got {envs_per_worker}")
        self.envs_per_worker = envs_per_worker
        self.retries = retries
        self.stats = CollectorStats()
        self.version = 0
        self._shipped: tuple[int, Any] | None = None  # (id of the payload, weights handle)
        self._orphans: dict[Any, list[int]] = {}
        self._deaths_in_a_row = 0

    @property
    def capacity(self) -> int:
        """Tasks kept under way at once."""
        return 1

    @abc.abstractmethod
    def _submit(self, task: _w.Task) -> Any:
        """Start ``task``; return a handle."""

    @abc.abstractmethod
    def _wait(self, handles: Sequence[Any]) -> list[tuple[Any, str, Any]]:
        """Block until at least one handle is done; ``(handle, outcome, value)`` for each done one.

        ``outcome`` is ``ok`` (value: episodes and ``(seed, error)`` failures), ``error`` (the task
        raised: value is the error), ``died`` (its worker died and was replaced) or ``lost`` (it
        went down with another worker's death).
        """

    def _weights(self, payload: Any) -> Any:
        """The handle workers load ``payload`` from (default: the payload itself)."""
        return payload

    def _ship(self, job: _w.RolloutJob) -> tuple[int, Any]:
        payload = job.actor.payload
        if payload is None:
            return self.version, None
        if self._shipped is None or self._shipped[0] != id(payload):
            self.version += 1
            self.stats.versions += 1
            self._shipped = (id(payload), self._weights(payload))
            self._payload = payload  # keeps id() from being reused while this version is current
        return self.version, self._shipped[1]

    def _drain_orphans(self) -> None:
        # Tasks a caller abandoned: their episodes come from weights that are no longer current.
        while self._orphans:
            for handle, outcome, value in self._wait(list(self._orphans)):
                self._orphans.pop(handle)
                if outcome == "ok":
                    self.stats.stale += len(value[0])

    def episodes(self, job: _w.RolloutJob, seeds: Sequence[int]) -> Iterator[Episode]:
        """Yield the episode of every seed, in order, replacing dead workers and retrying failed seeds."""
        seeds = list(seeds)
        if len(set(seeds)) != len(seeds):
            raise ValueError("seeds: every seed must appear once (an episode is a function of its seed)")
        self._drain_orphans()
        version, weights = self._ship(job)
        light = dataclasses.replace(job, actor=job.actor.without_weights())
        position = {seed: i for i, seed in enumerate(seeds)}
        m = self.envs_per_worker
        todo: deque[list[int]] = deque(list(range(i, min(i + m, len(seeds)))) for i in range(0, len(seeds), m))
        running: dict[Any, list[int]] = {}
        ready: dict[int, Episode] = {}
        attempts = [0] * len(seeds)
        next_out = 0
        try:
            while next_out < len(seeds):
                while todo and len(running) < self.capacity:
                    chunk = todo.popleft()
                    running[self._submit(_w.Task(light, version, weights, tuple(seeds[i] for i in chunk)))] = chunk
                for handle, outcome, value in self._wait(list(running)):
                    chunk = running.pop(handle)
                    if outcome == "ok":
                        self._deaths_in_a_row = 0
                        episodes, failed = value
                        for ep in episodes:
                            ready[position[ep.seed]] = ep
                        for seed, err in failed:
                            i = position[seed]
                            attempts[i] += 1
                            todo.appendleft([i])
                            self._sim_error(seed, attempts[i], err)
                    elif outcome == "error":
                        for i in chunk:
                            attempts[i] += 1
                            self._sim_error(seeds[i], attempts[i], value)
                        todo.appendleft(chunk)
                    else:
                        self.stats.worker_deaths += outcome == "died"
                        self._deaths_in_a_row += outcome == "died"
                        self.stats.discarded += len(chunk)
                        todo.appendleft(chunk)
                        log.warning("a rollout worker died; %d seeds re-queued", len(chunk))
                        if self._deaths_in_a_row > MAX_DEATHS_IN_A_ROW:
                            raise RuntimeError(
                                f"rollout workers died {self._deaths_in_a_row} times in a row without finishing a "
                                "task; a script that starts local workers needs an `if __name__ == \"__main__\":` "
                                "guard, and a worker that runs out of memory needs fewer envs_per_worker")
                while next_out in ready:
                    self.stats.episodes += 1
                    yield ready.pop(next_out)
                    next_out += 1
        finally:
            self._orphans.update(running)

    def _sim_error(self, seed: int, attempts: int, err: Any) -> None:
        self.stats.sim_errors += 1
        self.stats.discarded += 1
        log.warning("seed %d: episode raised %s; discarded, retrying", seed, err)
        if attempts > self.retries:
            raise RuntimeError(f"seed {seed}: the episode failed {attempts} times; last error {_text(err)}")

    def close(self) -> None:
        """Stop the workers (what is under way is dropped)."""
        self._orphans.clear()

    def __enter__(self) -> "Collector":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _text(err: Any) -> str:
    return err if isinstance(err, str) else f"{type(err).__name__}: {err}"


class InProcess(Collector):
    """Tasks one after another in this process, on one set of ``envs_per_worker`` envs."""

    def __init__(self, envs_per_worker: int = DEFAULT_ENVS_PER_WORKER, retries: int = 2) -> None:
        super().__init__(envs_per_worker, retries)
        self._worker = _w.Worker(envs_per_worker)

    def _submit(self, task: _w.Task) -> Any:
        return task

    def _wait(self, handles: Sequence[Any]) -> list[tuple[Any, str, Any]]:
        task = handles[0]
        try:
            episodes, failed = self._worker.run_all(task)
        except Exception as err:  # noqa: BLE001 - reported per seed by the caller
            return [(task, "error", err)]
        return [(task, "ok", (episodes, [(f.seed, f.error) for f in failed]))]

    def close(self) -> None:
        """Close the envs."""
        super().close()
        self._worker.close()


class LocalWorkers(Collector):
    """Tasks in ``workers`` spawned processes (one core each), at most ``2 × workers`` under way.

    Weights are written once per version to a temporary file that each process reads when a task
    names a version it does not hold.

    Args:
        workers: worker processes.
        envs_per_worker: envs each process steps together.
        retries: attempts allowed per seed after a simulator error.
    """

    def __init__(self, workers: int, envs_per_worker: int = DEFAULT_ENVS_PER_WORKER, retries: int = 2) -> None:
        super().__init__(envs_per_worker, retries)
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = workers
        self._executor: ProcessPoolExecutor | None = None
        self._dir: Path | None = None

    @property
    def capacity(self) -> int:
        """Two tasks per process: one running, one waiting, so a process never idles between tasks."""
        return 2 * self.workers

    def worker_pids(self) -> list[int]:
        """PIDs of the current pool's processes (for monitoring, and for tests that kill one)."""
        processes = getattr(self._executor, "_processes", None) or {}
        return sorted(processes)

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            self._executor = ProcessPoolExecutor(self.workers, mp_context=mp.get_context("spawn"),
                                                 initializer=_w.init_process_worker, initargs=(self.envs_per_worker,))
        return self._executor

    def _weights(self, payload: Any) -> Any:
        import torch

        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="automimic-weights-"))
        path = self._dir / f"v{self.version}.pt"
        torch.save(payload, path)
        for old in self._dir.glob("v*.pt"):  # orphaned tasks were drained before shipping: nothing reads these
            if old != path:
                old.unlink()
        return str(path)

    def _submit(self, task: _w.Task) -> Any:
        return self._pool().submit(_w.run_in_process_worker, task)

    def _wait(self, handles: Sequence[Any]) -> list[tuple[Any, str, Any]]:
        done, _ = wait(handles, return_when=FIRST_COMPLETED)
        out, broken = [], False
        for future in done:
            try:
                out.append((future, "ok", future.result()))
            except BrokenProcessPool:
                out.append((future, "lost" if broken else "died", None))  # one death breaks them all
                broken = True
            except Exception as err:  # noqa: BLE001 - reported per seed by the caller
                out.append((future, "error", err))
        if broken:
            # A dead process breaks the whole pool: every task under way anywhere in it is lost.
            out += [(f, "lost", None) for f in handles if f not in done]
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        return out

    def close(self) -> None:
        """Shut the pool down and delete the weight files."""
        super().close()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


class _RayRolloutActor:
    """One Ray actor: a :class:`~automimic.rollout.workers.Worker` kept between tasks."""

    def __init__(self, slots: int) -> None:
        import ray

        from automimic.threads import configure_threads

        # Ray starts actors with torch's default of one thread per core; actors are the parallelism.
        configure_threads(1)
        self.worker = _w.Worker(slots, load=lambda ref: ray.get(ref[0]))

    def pid(self) -> int:
        """The actor's process id."""
        import os

        return os.getpid()

    def run(self, task: _w.Task) -> tuple[list[Episode], list[tuple[int, str]]]:
        """Run ``task``; failed seeds come back as ``(seed, error text)``."""
        episodes, failed = self.worker.run_all(task)
        return episodes, [(f.seed, f"{type(f.error).__name__}: {f.error}") for f in failed]


class RayWorkers(Collector):
    """Tasks on ``workers`` Ray actors (one CPU each), one task per actor at a time.

    Uses the running Ray session, or starts one: ``address=None`` starts a local one with
    ``num_cpus=workers``; ``"auto"`` or ``"HOST:PORT"`` joins a cluster. Weights go into the object
    store once per version. A dead actor loses only the task it was running; it is replaced and
    the seeds re-run.

    Args:
        workers: actors.
        address: Ray cluster address (``None``: local).
        envs_per_worker: envs each actor steps together.
        retries: attempts allowed per seed after a simulator error.
    """

    def __init__(self, workers: int, address: str | None = None, envs_per_worker: int = DEFAULT_ENVS_PER_WORKER,
                 retries: int = 2) -> None:
        super().__init__(envs_per_worker, retries)
        self.ray = require_ray()
        if not self.ray.is_initialized():
            start_ray_env()
            kwargs = {"address": address} if address else {"num_cpus": workers}
            self.ray.init(include_dashboard=False, log_to_driver=False, **kwargs)
        self.workers = workers
        self._remote = self.ray.remote(num_cpus=1)(_RayRolloutActor)
        self._free: deque = deque()
        self._pids: dict[object, int] = {}
        self._busy: dict[object, object] = {}  # task ref -> actor

    @property
    def capacity(self) -> int:
        """One task per actor."""
        return self.workers

    def worker_pids(self) -> list[int]:
        """Process ids of the live actors."""
        return sorted(self._pids.values())

    def _spawn(self):
        actor = self._remote.remote(self.envs_per_worker)
        ref = actor.pid.remote()
        ready, _ = self.ray.wait([ref], timeout=RAY_ACTOR_START_TIMEOUT)
        if not ready:
            self.ray.kill(actor)
            raise RuntimeError(f"Ray could not start a rollout actor in {RAY_ACTOR_START_TIMEOUT:.0f} s: each takes "
                               "one CPU and none is free (does another collector still hold them?)")
        self._pids[actor] = self.ray.get(ref)
        return actor

    def _weights(self, payload: Any) -> Any:
        return [self.ray.put(payload)]  # in a list, so Ray hands the actor the reference, not the value

    def _submit(self, task: _w.Task) -> Any:
        if not self._free:
            self._free.append(self._spawn())
        actor = self._free.popleft()
        ref = actor.run.remote(task)
        self._busy[ref] = actor
        return ref

    def _wait(self, handles: Sequence[Any]) -> list[tuple[Any, str, Any]]:
        from ray.exceptions import RayActorError, RayTaskError

        done, _ = self.ray.wait(list(handles), num_returns=1)
        out = []
        for ref in done:
            actor = self._busy.pop(ref)
            try:
                out.append((ref, "ok", self.ray.get(ref)))
                self._free.append(actor)
            except RayActorError:
                self._pids.pop(actor, None)
                out.append((ref, "died", None))
            except RayTaskError as err:
                self._free.append(actor)
                out.append((ref, "error", err.cause if err.cause is not None else err))
        return out

    def close(self) -> None:
        """Kill the actors."""
        super().close()
        for actor in list(self._free) + list(self._busy.values()):
            self.ray.kill(actor)
        self._free.clear()
        self._busy.clear()
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
_default: dict[str, Any] = {"backend": "local", "address": None, "envs_per_worker": None}


def set_backend(backend: str, address: str | None = None, envs_per_worker: int | None = None) -> None:
    """Choose what every later ``make_collector`` call uses (the CLI's ``--backend``, ``--ray-address``,
    ``--envs-per-worker``)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown rollout backend {backend!r}; available: {', '.join(BACKENDS)}")
    if backend == "ray":
        require_ray()
    if envs_per_worker is not None and envs_per_worker < 1:
        raise ValueError(f"envs_per_worker must be >= 1, got {envs_per_worker}")
    _default.update(backend=backend, address=address,
                    envs_per_worker=envs_per_worker or _default["envs_per_worker"])


def make_collector(workers: int = 1, backend: str | None = None, retries: int = 2,
                   envs_per_worker: int | None = None, processes: bool = False) -> Collector:
    """The collector for ``workers`` on ``backend`` (default: the one :func:`set_backend` chose).

    ``local`` with one worker runs in-process (unless ``processes``: a caller that keeps working
    while episodes are collected needs them in another process); with more, in spawned processes. ``ray`` runs
    ``workers`` Ray actors. Each worker steps ``envs_per_worker`` envs together (default: the
    CLI's ``--envs-per-worker``, else ``AUTOMIMIC_ENVS_PER_WORKER``, else 4).
    """
    backend = backend or _default["backend"]
    m = envs_per_worker or _default["envs_per_worker"] or _env_default()
    if backend not in BACKENDS:
        raise ValueError(f"unknown rollout backend {backend!r}; available: {', '.join(BACKENDS)}")
    if backend == "ray":
        return RayWorkers(workers, _default["address"], m, retries)
    return InProcess(m, retries) if workers <= 1 and not processes else LocalWorkers(max(workers, 1), m, retries)


def iter_episodes(job: _w.RolloutJob, seeds: Sequence[int], workers: int | Collector = 1) -> Iterator[Episode]:
    """Yield one episode per seed, in seed order, using ``workers`` workers of the chosen backend.

    A thin front for :func:`automimic.rollout.collector.make_collector`, which also survives
    simulator errors and dead workers. ``workers`` may also be a running collector, which is then
    used and left open (a run that rolls out again and again keeps its workers).
    """
    if isinstance(workers, Collector):
        yield from workers.episodes(job, seeds)
        return
    with make_collector(workers) as collector:
        yield from collector.episodes(job, seeds)


def run_episodes(job: _w.RolloutJob, seeds: Sequence[int], workers: int | Collector = 1,
                 on_episode: Callable[[Episode], None] | None = None) -> list[Episode]:
    """Collect the episodes of :func:`iter_episodes` into a list, calling ``on_episode`` on each."""
    episodes = []
    for episode in iter_episodes(job, seeds, workers):
        if on_episode is not None:
            on_episode(episode)
        episodes.append(episode)
    return episodes
