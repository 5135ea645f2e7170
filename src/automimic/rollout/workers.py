"""Rollout jobs and what a worker does with them: keep envs and an actor, run a batch of seeds lock-step.

A worker (this process for the in-process backend, a spawned process or a Ray actor otherwise)
holds ``envs_per_worker`` envs and one actor for them; it rebuilds the envs only when a task names
a different env setting, and the actor only when the weights version changes. Each episode is a
function of its seed alone (see :class:`~automimic.rollout.chunking.ChunkRunner`), so the number
of workers and the backend do not change the episodes. Workers are started with ``spawn``: forking
a process that has already run torch's thread pool can deadlock. Scheduling, weights shipping,
retries and dead workers are :mod:`automimic.rollout.collector`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from automimic.data.episode import Episode
from automimic.envs import make_env
from automimic.rollout.actors import ActorSpec
from automimic.rollout.episode_runner import FailedSeed, run_lockstep


@dataclass(frozen=True)
class RolloutJob:
    """What every worker needs: which env, which actor, and how episodes are labelled.

    ``read_success=False`` runs without reading the simulator's success at all (practice with a
    learned detector).
    """

    env_id: str
    actor: ActorSpec
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    source: str = "expert"
    round: int = 0
    stop_on_success: bool = True
    read_success: bool = True


@dataclass(frozen=True, eq=False)  # identity-hashed: a task is also its own handle in-process
class Task:
    """One unit of work: the job without its weights, the weights' version and where to get them."""

    job: RolloutJob
    version: int
    weights: Any  # the payload itself, a file path, or a Ray object reference in a list
    seeds: tuple[int, ...]


class Worker:
    """Envs and an actor kept between tasks.

    Args:
        slots: envs stepping together (``envs_per_worker``).
        load: turns a task's ``weights`` into the payload (e.g. reads a file once per version).
    """

    def __init__(self, slots: int, load: Callable[[Any], Any] | None = None) -> None:
        self.slots = slots
        self.load = load or (lambda weights: weights)
        self.envs: list = []
        self._env_key: Any = None
        self._actor_key: Any = None
        self._kwargs: dict[str, Any] = {}
        self.actor = None

    def prepare(self, task: Task) -> None:
        """Build the envs and the actor this task needs, reusing what the last task left."""
        if self._actor_key == (task.job.actor, task.version):
            return
        payload = self.load(task.weights) if task.weights is not None else None
        kwargs = {**task.job.actor.env_kwargs(payload), **task.job.env_kwargs}
        env_key = (task.job.env_id, repr(sorted(kwargs.items())))
        if env_key != self._env_key:
            self.close()
            self.envs = [make_env(task.job.env_id, **kwargs) for _ in range(self.slots)]
            self._env_key, self._kwargs = env_key, kwargs
        self.actor = task.job.actor.build(payload, self.slots)
        self._actor_key = (task.job.actor, task.version)

    def run(self, task: Task) -> Iterator[Episode | FailedSeed]:
        """Yield the task's episodes (each tagged with ``attrs["weights_version"]``) and failed seeds."""
        self.prepare(task)
        job = task.job
        return run_lockstep(self.envs, self.actor, task.seeds, source=job.source, round=job.round,
                            stop_on_success=job.stop_on_success, read_success=job.read_success,
                            rebuild_env=lambda slot: make_env(job.env_id, **self._kwargs),
                            attrs={"weights_version": task.version})

    def run_all(self, task: Task) -> tuple[list[Episode], list[FailedSeed]]:
        """:meth:`run` collected: the finished episodes and the failed seeds."""
        episodes, failed = [], []
        for item in self.run(task):
            (failed if isinstance(item, FailedSeed) else episodes).append(item)
        return episodes, failed

    def close(self) -> None:
        """Close the envs."""
        for env in self.envs:
            env.close()
        self.envs = []
        self._env_key = self._actor_key = None


_process_worker: dict[str, Worker] = {}


def init_process_worker(slots: int) -> None:
    """Initialiser of a spawned pool process: one torch thread (the pool is the parallelism), one Worker."""
    from automimic.threads import configure_threads

    configure_threads(1)
    _process_worker["worker"] = Worker(slots, load=_load_weights_file)


def run_in_process_worker(task: Task) -> tuple[list[Episode], list[tuple[int, str]]]:
    """Run ``task`` in this pool process; failed seeds come back as ``(seed, error text)``."""
    episodes, failed = _process_worker["worker"].run_all(task)
    return episodes, [(f.seed, f"{type(f.error).__name__}: {f.error}") for f in failed]


def _load_weights_file(path: str) -> Any:
    import torch

    return torch.load(path, map_location="cpu", weights_only=False)
