"""Record scripted-expert demonstrations into an episode store (resumable)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from tqdm import tqdm

from automimic.data.store import MULTITASK, EpisodeStore
from automimic.envs import expert_for
from automimic.rollout.actors import ActorSpec
from automimic.rollout.collector import Collector, iter_episodes
from automimic.rollout.workers import RolloutJob
from automimic.seeding import BLOCK, episode_seeds


def collect_demos(env_id: str, episodes: int, out: str | Path, *, seed: int = 0, workers: int | Collector = 1,
                  perturb: float = 0.0, horizon: int | None = None, keep_failures: bool = False,
                  max_attempts: int | None = None, cameras: Sequence[str] = (), image_size: int | None = None,
                  expert: str = "", multitask: bool = False, progress: bool = True) -> EpisodeStore:
    """Append ``episodes`` expert episodes of ``env_id`` to ``out``, skipping failures unless asked.

    Start seeds come from the ``collect`` namespace (never used for evaluation). Running the same
    command again after an interruption continues after the last stored start seed.

    Args:
        env_id: which env, e.g. ``metaworld/push-v3``.
        episodes: how many episodes the store should hold for this env when done.
        out: the HDF5 file (created if needed).
        seed: run seed selecting the block of start seeds.
        workers: worker processes for the rollouts, or a running collector (kept open across calls).
        perturb: start-position perturbation (see ``make_env``).
        horizon: step budget per episode (the env's default when ``None``).
        keep_failures: store failed expert episodes too (flagged ``success=False``).
        max_attempts: give up after this many rollouts (default: 4 x episodes + 10).
        cameras: also record these cameras' frames as ``<camera>_image`` observations.
        image_size: side of those frames (default 84).
        expert: record this expert instead of the env's scripted one: ``"package.module:name"``,
            a class built with the env id or a function ``obs -> action`` (any Gymnasium env).
        multitask: ``out`` is a store of several envs (:data:`~automimic.data.store.MULTITASK`):
            this env's episodes are added beside the others'.
    """
    expert_for(env_id, expert)  # a missing or misnamed expert fails here, before the store is touched
    store = EpisodeStore(out, env_id=MULTITASK if multitask else env_id)
    done = store.index() if Path(out).exists() else []
    have = sum(1 for e in done if e.env_id == env_id)
    first = episode_seeds("collect", seed, 1)[0]
    tried = [e.seed - first for e in done if e.seed is not None and 0 <= e.seed - first < BLOCK]
    start = max(tried) + 1 if tried else 0
    budget = max_attempts if max_attempts is not None else 4 * episodes + 10
    needed = episodes - have
    if needed <= 0:
        return store
    env_kwargs = {"perturb": perturb, **({"horizon": horizon} if horizon else {})}
    if cameras:
        env_kwargs.update(cameras=list(cameras), **({"image_size": image_size} if image_size else {}))
    job = RolloutJob(env_id, ActorSpec.expert(env_id, expert), env_kwargs, source="expert")
    seeds = episode_seeds("collect", seed, min(budget, BLOCK - start), start=start)
    bar = tqdm(total=needed, desc=f"collect {env_id}", unit="ep", disable=not progress)
    failures = 0
    for ep in iter_episodes(job, seeds, workers):
        if ep.success or keep_failures:
            # Another process may be collecting into the same file: the store decides under its
            # lock whether this seed is still missing.
            if store.append_unique(ep, episodes) is not None:
                bar.update(1)
                needed -= 1
            else:
                needed = episodes - sum(1 for e in store.index() if e.env_id == env_id)
        else:
            failures += 1
        bar.set_postfix(failed=failures)
        if needed <= 0:
            break
    bar.close()
    if needed > 0:
        raise RuntimeError(f"{env_id}: expert succeeded too rarely ({failures} failures); "
                           f"{needed} episodes still missing after {len(seeds)} attempts")
    return store
