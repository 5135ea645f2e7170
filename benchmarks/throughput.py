"""Rollout throughput: env steps per second for bare stepping, the scripted expert and policy practice.

    python benchmarks/throughput.py                       # push-v3 and pick-place-v3, all rows (~5 min)
    python benchmarks/throughput.py --tasks push-v3 --episodes 10

Rows per task: bare Meta-World stepping with random actions in one process (what one core can give),
the scripted expert through the in-process collector, and practice rollouts of an MLP and an ACT
policy (weights untrained: speed does not depend on them) with 1 and 2 local workers and 2 Ray
actors. Every episode runs the full horizon (no early stop on success), so steps = episodes x horizon.
Rates are steady-state: steps of the episodes after the first one over the time between the first and
the last episode's arrival, so pool and actor start-up are left out; start-up is printed on its own
(pool spawn, and Ray's ``init`` plus its first actor). Run it alone: it measures the machine.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from automimic.data.episode import Episode
from automimic.data.transitions import Transitions
from automimic.envs import make_env
from automimic.policies import build_policy
from automimic.rollout.actors import ActorSpec
from automimic.rollout.collector import InProcess, LocalWorkers, RayWorkers, require_ray, start_ray_env
from automimic.rollout.workers import RolloutJob
from automimic.seeding import episode_seeds


def bare_steps_per_s(env_id: str, steps: int, horizon: int) -> float:
    """Random-action stepping in this process, resetting every ``horizon`` steps."""
    env = make_env(env_id, horizon=horizon)
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    t = time.perf_counter()
    for i in range(steps):
        env.step(rng.uniform(-1, 1, size=env.action_space.shape).astype(np.float32))
        if (i + 1) % horizon == 0:
            env.reset(seed=i)
    rate = steps / (time.perf_counter() - t)
    env.close()
    return rate


def untrained_policy(name: str, env_id: str) -> ActorSpec:
    """A policy of class ``name`` with normalisers fitted on a few random observations."""
    env = make_env(env_id)
    obs = np.stack([env.reset(seed=s)[0]["state"] for s in range(8)])
    env.close()
    episode = Episode(obs={"state": obs}, actions=np.zeros((8, 4), np.float32), rewards=np.zeros(8, np.float32),
                      success=True)
    data = Transitions.from_episodes([episode])
    torch.manual_seed(0)
    policy = build_policy(name, {"obs_keys": ["state"]}, obs.shape[1], 4)
    policy.fit_normalizers(data)
    policy.eval()
    return ActorSpec.policy(policy, name=name)


def timed(collector, job: RolloutJob, episodes: int) -> tuple[float, float]:
    """(steady-state steps/s, seconds until the first episode arrived)."""
    start = time.perf_counter()
    arrivals, steps = [], []
    for episode in collector.episodes(job, episode_seeds("practice", 0, episodes)):
        arrivals.append(time.perf_counter())
        steps.append(episode.length)
    return sum(steps[1:]) / (arrivals[-1] - arrivals[0]), arrivals[0] - start


def main() -> None:
    """Measure every row and print the table."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", nargs="+", default=["push-v3", "pick-place-v3"])
    p.add_argument("--episodes", type=int, default=20, help="episodes per collector row")
    p.add_argument("--horizon", type=int, default=200)
    p.add_argument("--no-ray", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(1)
    rows = []
    ray_startup = None
    if not args.no_ray:
        ray = require_ray()
        start_ray_env()
        t = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        ray_startup = time.perf_counter() - t
    for task in args.tasks:
        env_id = f"metaworld/{task}"
        bare = bare_steps_per_s(env_id, 20 * args.horizon, args.horizon)
        rows.append((task, "bare stepping, random actions", 1, bare, None, None))

        def job(actor: ActorSpec) -> RolloutJob:
            return RolloutJob(env_id, actor, {"horizon": args.horizon}, source="self", stop_on_success=False)

        rate, first = timed(InProcess(), job(ActorSpec.expert(env_id)), args.episodes)
        rows.append((task, "scripted expert", 1, rate, rate / bare, first))
        for name in ("mlp", "act"):
            spec = untrained_policy(name, env_id)
            for label, collector, n in [("in-process", InProcess(), 1), ("2 local workers", LocalWorkers(2), 2)] + (
                    [] if args.no_ray else [("2 Ray actors", RayWorkers(2), 2)]):
                rate, first = timed(collector, job(spec), args.episodes)
                rows.append((task, f"{name} practice, {label}", n, rate, rate / (bare * n), first))
    print("| task | rollout | workers | env steps/s | vs bare x workers | first episode after (s) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for task, what, n, rate, frac, first in rows:
        print(f"| {task} | {what} | {n} | {rate:.0f} | {'' if frac is None else f'{frac:.0%}'} | "
              f"{'' if first is None else f'{first:.1f}'} |")
    if ray_startup is not None:
        print(f"\nRay start-up: ray.init(num_cpus=2) {ray_startup:.1f} s (first actor's start is in its row)")


if __name__ == "__main__":
    main()
