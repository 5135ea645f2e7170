"""Evaluate one policy on many tasks: per-task success, per-tier and overall means with 95% intervals.

Every task is evaluated by :func:`automimic.evaluation.evaluate.evaluate` on the same evaluation
seeds, after ``policy.set_task(env_id)`` (a task-conditioned policy switches its task embedding; a
single-task one ignores it), through one collector, so worker processes start once for the whole
suite. A ``cache`` file keeps each finished task's result, so an interrupted MT50 evaluation
continues where it stopped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from tqdm import tqdm

from automimic.envs.suites import TIERS, tier_of
from automimic.evaluation.evaluate import EvalResult, check_policy_env, evaluate
from automimic.evaluation.stats import wilson_interval
from automimic.policies import Policy
from automimic.rollout.collector import make_collector

#: Version of the JSON written by :meth:`MultiTaskResult.save` and of the cache file.
FORMAT = 1


@dataclass(frozen=True)
class GroupResult:
    """Success over a group of tasks (a tier, or all of them).

    Attributes:
        name: ``easy`` / ``medium`` / ``hard`` / ``very hard`` or ``mean``.
        tasks: the env ids in the group.
        episodes: episodes over all its tasks.
        successes: successes over all its tasks.
        success_rate: mean of the tasks' success rates (``successes / episodes``: every task has
            the same episode count).
        ci_low: lower end of the pooled 95% Wilson interval.
        ci_high: upper end of the pooled 95% Wilson interval.
        mean_length: mean episode length over all its episodes.
    """

    name: str
    tasks: list[str]
    episodes: int
    successes: int
    success_rate: float
    ci_low: float
    ci_high: float
    mean_length: float


def _group(name: str, results: Sequence[EvalResult]) -> GroupResult:
    n = sum(r.episodes for r in results)
    k = sum(r.successes for r in results)
    low, high = wilson_interval(k, n)
    lengths = [x for r in results for x in r.per_episode_length]
    return GroupResult(name, [r.env_id for r in results], n, k, k / n, low, high, float(np.mean(lengths)))


@dataclass(frozen=True)
class MultiTaskResult:
    """Outcome of :func:`evaluate_tasks`.

    The mean over tasks comes with a pooled Wilson interval over all episodes. Because every task
    has the same number of episodes, the pooled rate equals the mean of the per-task rates; for this
    fixed set of tasks the pooled interval is, if anything, conservative (its binomial variance
    includes the spread between tasks, which the mean over a fixed task set does not have).

    Attributes:
        results: one :class:`EvalResult` per task, in the order evaluated.
        seed: the evaluation seed block (every task uses the same episode seeds).
        horizon: the step budget (``None``: each env's own).
        deterministic: whether the policy acted with its mean action.
        key: the caller's name for the policy evaluated (e.g. its checkpoint's digest).
    """

    results: list[EvalResult]
    seed: int = 0
    horizon: int | None = None
    deterministic: bool = True
    key: str = ""

    def __post_init__(self) -> None:
        if not self.results:
            raise ValueError("MultiTaskResult needs at least one task's result")
        ids = [r.env_id for r in self.results]
        if len(set(ids)) != len(ids):
            raise ValueError(f"MultiTaskResult: a task appears twice in {ids}")
        counts = {r.episodes for r in self.results}
        if len(counts) != 1:
            raise ValueError(f"MultiTaskResult: every task needs the same episode count, got {sorted(counts)}")

    @property
    def episodes(self) -> int:
        """Episodes per task."""
        return self.results[0].episodes

    def mean(self) -> GroupResult:
        """Mean success over all tasks with its pooled 95% interval."""
        return _group("mean", self.results)

    def tiers(self) -> list[GroupResult]:
        """Mean success per difficulty tier, easiest first, over the Meta-World tasks evaluated
        (tiers with no evaluated task are left out)."""
        by_tier: dict[str, list[EvalResult]] = {t: [] for t in TIERS}
        for r in self.results:
            tier = tier_of(r.env_id)
            if tier is not None:
                by_tier[tier].append(r)
        return [_group(tier, rs) for tier, rs in by_tier.items() if rs]

    def line(self) -> str:
        """One-line summary: ``mean success 0.71 [0.68, 0.74] over 10 tasks x 50 episodes``."""
        m = self.mean()
        return (f"mean success {m.success_rate:.2f} [{m.ci_low:.2f}, {m.ci_high:.2f}] over {len(self.results)} "
                f"tasks x {self.episodes} episodes")

    def markdown(self) -> str:
        """A caption naming seeds, episodes and horizon, then one table: a row per task, per tier, and the mean."""
        seeds = self.results[0].seeds
        caption = (f"{len(self.results)} tasks, {self.episodes} episodes each on evaluation seeds {seeds[0]}..{seeds[-1]} "
                   f"(seed block {self.seed}), horizon {self.horizon or 'of each env'}, "
                   f"{'mean action' if self.deterministic else 'sampled actions'}; 95% Wilson intervals "
                   f"(tiers and mean: pooled over their episodes)")
        rows = ["| task | tier | success | 95% CI | episodes | mean length |", "|---|---|---|---|---|---|"]
        for r in self.results:
            rows.append(f"| {r.env_id} | {tier_of(r.env_id) or ''} | {r.success_rate:.2f} | "
                        f"[{r.ci_low:.2f}, {r.ci_high:.2f}] | {r.episodes} | {r.mean_length:.1f} |")
        for g in [*self.tiers(), self.mean()]:
            title = f"tier: {g.name}" if g.name != "mean" else "mean"
            rows.append(f"| **{title}** ({len(g.tasks)} task{'s' * (len(g.tasks) != 1)}) | | "
                        f"**{g.success_rate:.2f}** | [{g.ci_low:.2f}, {g.ci_high:.2f}] | {g.episodes} | "
                        f"{g.mean_length:.1f} |")
        return caption + "\n\n" + "\n".join(rows) + "\n"

    def to_dict(self) -> dict[str, Any]:
        """Everything :meth:`save` writes: settings, per-task results, tiers and mean."""
        return {"format": FORMAT, "seed": self.seed, "horizon": self.horizon, "deterministic": self.deterministic,
                "key": self.key, "episodes": self.episodes, "mean": asdict(self.mean()),
                "tiers": [asdict(g) for g in self.tiers()], "tasks": [asdict(r) for r in self.results]}

    def save(self, path: str | Path) -> None:
        """Write the result as JSON (read back with :meth:`load`)."""
        _write_atomic(Path(path), self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> "MultiTaskResult":
        """Read a result written by :meth:`save`."""
        d = json.loads(Path(path).read_text())
        return cls([EvalResult(**r) for r in d["tasks"]], d["seed"], d["horizon"], d["deterministic"], d["key"])


def policy_digest(policy: Policy) -> str:
    """A short digest of ``policy``'s class, config and weights: the same checkpoint gives the same
    digest, so it can serve as :func:`evaluate_tasks`'s cache ``key``."""
    h = hashlib.sha256()
    h.update(json.dumps([policy.name, dataclasses.asdict(policy.config)], sort_keys=True, default=str).encode())
    for name, tensor in sorted(policy.state_dict().items()):
        h.update(name.encode())
        h.update(str(tensor.dtype).encode())
        h.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def _write_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def _read_cache(path: Path, settings: dict[str, Any]) -> dict[str, EvalResult]:
    """The per-task results cached at ``path`` for exactly ``settings`` (none when there is no file)."""
    if not path.exists():
        return {}
    try:
        d = json.loads(path.read_text())
        found, results = d["settings"], {k: EvalResult(**v) for k, v in d["results"].items()}
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: unreadable evaluation cache ({err}); delete it to start over") from None
    differ = [k for k in settings if found.get(k) != settings[k]]
    if differ:
        raise ValueError(f"{path}: cache written for {', '.join(f'{k}={found.get(k)!r}' for k in differ)}, not "
                         f"{', '.join(f'{k}={settings[k]!r}' for k in differ)}; delete it or evaluate with its settings")
    return results


def evaluate_tasks(policy: Policy, env_ids: Sequence[str], episodes: int = 50, *, seed: int = 0,
                   workers: int = 1, horizon: int | None = None, deterministic: bool = True,
                   cache: str | Path | None = None, key: str = "", progress: bool = True) -> MultiTaskResult:
    """Evaluate ``policy`` on every task of ``env_ids`` (``episodes`` each, the same evaluation seeds).

    Before each task, ``policy.set_task(env_id)``. Every task is checked first (a task a
    task-conditioned policy does not know, or an env it cannot act in, is a one-line ``ValueError``
    before anything runs). One collector of ``workers`` workers serves all tasks.

    ``cache``: a JSON file where each finished task's result is written as it finishes (atomically)
    and from which a restarted call takes the tasks already done. It records ``episodes``, ``seed``,
    ``horizon``, ``deterministic`` and ``key`` (the caller's name for the policy, e.g.
    :func:`policy_digest`); a cache written for other settings is refused rather than mixed in.
    Cached tasks outside ``env_ids`` are kept in the file and left out of the result.
    """
    env_ids = list(env_ids)
    if not env_ids:
        raise ValueError("evaluate_tasks: no tasks given")
    if len(set(env_ids)) != len(env_ids):
        raise ValueError(f"evaluate_tasks: a task appears twice in {env_ids}")
    settings = {"format": FORMAT, "episodes": episodes, "seed": seed, "horizon": horizon,
                "deterministic": deterministic, "key": key}
    cache_path = Path(cache) if cache is not None else None
    done = _read_cache(cache_path, settings) if cache_path is not None else {}
    todo = [e for e in env_ids if e not in done]
    if policy.tasks:
        unknown = [e for e in todo if e not in policy.tasks]
        if unknown:
            raise ValueError(f"the policy knows {len(policy.tasks)} tasks ({', '.join(policy.tasks)}), "
                             f"not {', '.join(unknown)}")
    for env_id in todo:
        check_policy_env(policy, env_id)
    bar = tqdm(total=len(env_ids), desc="tasks", unit="task", disable=not progress, initial=len(env_ids) - len(todo))
    if todo:
        with make_collector(workers) as collector:
            for env_id in todo:
                policy.set_task(env_id)
                done[env_id] = evaluate(policy, env_id, episodes, seed=seed, workers=collector, horizon=horizon,
                                        deterministic=deterministic, progress=progress)
                if cache_path is not None:
                    _write_atomic(cache_path, {"settings": settings, "results": {k: asdict(v) for k, v in done.items()}})
                bar.update(1)
                bar.set_postfix(last=f"{env_id.split('/')[-1]} {done[env_id].success_rate:.2f}")
    bar.close()
    return MultiTaskResult([done[e] for e in env_ids], seed, horizon, deterministic, key)
