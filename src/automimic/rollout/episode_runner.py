"""Run episodes of an actor on envs that step together, and return them as :class:`Episode` s.

One env per slot; a free slot takes the next seed; the actor is queried once per step for all
slots under way. A simulator error ends only its own slot's episode: the env is rebuilt and the
seed reported as failed, the others go on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from automimic.data.episode import Episode
from automimic.envs import AutomimicEnv
from automimic.rollout.actors import Actor


@dataclass(frozen=True)
class FailedSeed:
    """An episode that the simulator broke: it was discarded, and the env it ran on was rebuilt."""

    seed: int
    error: BaseException


class _Live:
    def __init__(self, seed: int, obs: dict[str, Any], start: dict[str, Any]) -> None:
        self.seed, self.obs, self.start = seed, obs, start
        self.observations: dict[str, list[np.ndarray]] = {k: [] for k in obs}
        self.actions: list[np.ndarray] = []
        self.rewards: list[float] = []
        self.success = self.stopped = self.ended = self.terminated = False


def run_lockstep(envs: list[AutomimicEnv], actor: Actor, seeds: Sequence[int], *, source: str = "expert",
                 round: int = 0, stop_on_success: bool = True, read_success: bool = True,
                 rebuild_env: Callable[[int], AutomimicEnv] | None = None,
                 attrs: dict[str, Any] | None = None,
                 on_frame: Callable[[np.ndarray], None] | None = None) -> Iterator[Episode | FailedSeed]:
    """Yield the episode of every seed (as each finishes), running ``len(envs)`` of them at a time.

    An episode ends when the task succeeds (unless ``stop_on_success`` is off), when the actor's
    ``stop`` (if it has one, e.g. a learned success detector) fires on the new observation, when
    the env terminates, or at the horizon. With ``read_success=False`` the simulator's ``info`` is
    never read (practice without a success signal): ``success`` is then ``False`` and
    ``attrs["learned_success"]`` says whether ``stop`` ended the episode. An actor with ``kept``
    adds what it kept per step as ``attrs["kept"]``. Every episode records ``attrs["terminated"]``:
    whether the env itself ended the episode (Gymnasium's ``terminated``). A simulator error yields a :class:`FailedSeed`
    and replaces that slot's env with ``rebuild_env(slot)`` (without one, it is raised).
    ``on_frame`` receives slot 0's rendered frame before every action and after the last (videos).
    """
    stop_fn = getattr(actor, "stop", None)
    kept_fn = getattr(actor, "kept", None)
    todo = list(seeds)[::-1]
    live: list[_Live | None] = [None] * len(envs)

    def fail(slot: int, seed: int, err: BaseException) -> FailedSeed:
        if rebuild_env is None:
            raise err
        live[slot] = None
        try:
            envs[slot].close()
        except Exception:  # noqa: BLE001 - a broken simulator may fail to close too
            pass
        envs[slot] = rebuild_env(slot)
        return FailedSeed(seed, err)

    def start(slot: int) -> Iterator[FailedSeed]:
        while todo and live[slot] is None:
            seed = todo.pop()
            try:
                obs, info = envs[slot].reset(seed=seed)
            except Exception as err:  # noqa: BLE001 - any simulator error: rebuild, report
                yield fail(slot, seed, err)
                continue
            actor.reset(seed, slot)
            live[slot] = _Live(seed, obs, info["start"])

    for slot in range(len(envs)):
        yield from start(slot)
    while any(ep is not None for ep in live):
        active = [s for s in range(len(envs)) if live[s] is not None]
        if on_frame is not None and live[0] is not None:
            on_frame(envs[0].render())
        actions = np.asarray(actor.act([live[s].obs for s in active], active), dtype=np.float32)
        stepped = []
        for j, s in enumerate(active):
            ep = live[s]
            try:
                obs, reward, terminated, truncated, info = envs[s].step(actions[j])
            except Exception as err:  # noqa: BLE001 - any simulator error: rebuild, report
                yield fail(s, ep.seed, err)
                continue
            for k in ep.observations:
                ep.observations[k].append(ep.obs[k])
            ep.obs = obs
            ep.actions.append(actions[j])
            ep.rewards.append(reward)
            if read_success:
                ep.success = ep.success or bool(info["success"])
            ep.terminated = bool(terminated)
            ep.ended = (ep.success and stop_on_success) or terminated or truncated or len(ep.actions) >= envs[s].horizon
            stepped.append(s)
        if stop_fn is not None and stepped:
            fired = np.asarray(stop_fn([live[s].obs for s in stepped], stepped), dtype=bool)
            for s, f in zip(stepped, fired):
                live[s].stopped = bool(f)
        for s in stepped:
            ep = live[s]
            if not (ep.ended or ep.stopped):
                continue
            if on_frame is not None and s == 0:
                on_frame(envs[0].render())
            # Learners need to know whether the env ended the episode for good (no value after it)
            # or it was cut at the horizon (bootstrapped).
            extra = {"terminated": ep.terminated}
            if stop_fn is not None:
                extra["learned_success"] = ep.stopped
            if kept_fn is not None:
                extra["kept"] = kept_fn(s)
            live[s] = None
            yield Episode(
                obs={k: np.stack(v) for k, v in ep.observations.items()},
                actions=np.stack(ep.actions), rewards=np.asarray(ep.rewards, dtype=np.float32),
                success=ep.success, final_obs={k: np.asarray(v) for k, v in ep.obs.items()}, source=source,
                round=round, seed=ep.seed, policy=actor.name, env_id=envs[s].env_id,
                perturb_sigma=float(ep.start["perturb_sigma"]), perturb_offset=ep.start["perturb_offset"],
                start_vector=ep.start["start_vector"], attrs={**(attrs or {}), **extra})
            yield from start(s)


def run_episode(env: AutomimicEnv, actor: Actor, seed: int, *, source: str = "expert", round: int = 0,
                stop_on_success: bool = True, on_frame: Callable[[np.ndarray], None] | None = None) -> Episode:
    """Roll a one-slot ``actor`` out from the start state ``seed`` names, for at most ``env.horizon`` steps.

    See :func:`run_lockstep`; ``on_frame`` receives a rendered frame before every action and after
    the last one (for videos).
    """
    (episode,) = run_lockstep([env], actor, [seed], source=source, round=round, stop_on_success=stop_on_success,
                              on_frame=on_frame)
    return episode
