"""Rollout throughput: env steps per second for bare stepping, the scripted expert and policy practice.

    python benchmarks/throughput.py                       # push-v3 and pick-place-v3, all rows (~15 min)
    python benchmarks/throughput.py --tasks push-v3 --episodes 16 --no-ray

Rows per task: bare Meta-World stepping with random actions in one process (what one core can give),
the scripted expert, and practice rollouts of an MLP and an ACT policy (weights untrained: speed
does not depend on them) in-process, with 2 local workers and with 2 Ray actors, each with 1, 4 and
8 envs per worker (8: one batched policy query per step for 8 envs). Two more rows per policy put
the policy in the learner process instead, batched over envs that step in 2 gymnasium
``AsyncVectorEnv`` processes, the other place batched inference could live. Every episode runs
the full horizon (no early stop on success), so steps = episodes x horizon. Rates are steady
state: every collector first runs a warm-up call (pool or actor start-up, weights shipped), whose
time to the first episode is printed, then a timed call with the same weights. Run it alone: it
measures the machine.
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
from automimic.threads import configure_threads


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
    """(steady-state steps/s, seconds until the warm-up call's first episode arrived)."""
    start = time.perf_counter()
    # Enough warm-up tasks to start every worker (a process pool starts its processes on demand).
    warm = collector.episodes(job, episode_seeds("practice", 0, collector.capacity * collector.envs_per_worker))
    next(warm)
    first = time.perf_counter() - start
    list(warm)
    t = time.perf_counter()
    steps = sum(e.length for e in collector.episodes(job, episode_seeds("practice", 1, episodes)))
    return steps / (time.perf_counter() - t), first


def learner_side_steps_per_s(spec: ActorSpec, env_id: str, envs: int, horizon: int, steps: int) -> float:
    """The policy batched in this process over ``envs`` envs stepping in gymnasium ``AsyncVectorEnv`` processes."""
    import gymnasium as gym

    from automimic.policies import policy_from_payload
    from automimic.rollout.chunking import ChunkRunner

    vec = gym.vector.AsyncVectorEnv([lambda: make_env(env_id, horizon=horizon) for _ in range(envs)],
                                    context="spawn", autoreset_mode=gym.vector.AutoresetMode.DISABLED)
    runner = ChunkRunner(policy_from_payload(spec.payload), envs)
    obs, _ = vec.reset(seed=0)
    for _ in range(5):  # warm-up
        obs, *_ = vec.step(runner.act(obs["state"]))
    t = time.perf_counter()
    for k in range(steps // envs):
        obs, _, terminated, truncated, _ = vec.step(runner.act(obs["state"]))
        if (terminated | truncated).any():  # full-horizon episodes all end together
            obs, _ = vec.reset(seed=k)
            for i in range(envs):
                runner.reset(i, k)
    rate = (steps // envs) * envs / (time.perf_counter() - t)
    vec.close()
    return rate


def main() -> None:
    """Measure every row and print the table."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", nargs="+", default=["push-v3", "pick-place-v3"])
    p.add_argument("--episodes", type=int, default=32, help="episodes per timed collector call")
    p.add_argument("--horizon", type=int, default=200)
    p.add_argument("--envs-per-worker", type=int, nargs="+", default=[1, 4, 8])
    p.add_argument("--no-ray", action="store_true")
    args = p.parse_args()
    configure_threads()  # $AUTOMIMIC_THREADS, else 1: see automimic.threads
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
        rows.append((task, "bare stepping, random actions", 1, "", bare, None, None))

        def job(actor: ActorSpec) -> RolloutJob:
            return RolloutJob(env_id, actor, {"horizon": args.horizon}, source="self", stop_on_success=False)

        with InProcess(1) as collector:
            rate, first = timed(collector, job(ActorSpec.expert(env_id)), args.episodes)
        rows.append((task, "scripted expert, in-process", 1, 1, rate, rate / bare, first))
        for name in ("mlp", "act"):
            spec = untrained_policy(name, env_id)
            for m in args.envs_per_worker:
                backends = [("in-process", lambda: InProcess(m), 1), ("2 local workers", lambda: LocalWorkers(2, m), 2)]
                if not args.no_ray:
                    backends.append(("2 Ray actors", lambda: RayWorkers(2, envs_per_worker=m), 2))
                for label, make, n in backends:
                    with make() as collector:
                        rate, first = timed(collector, job(spec), args.episodes)
                    rows.append((task, f"{name} practice, {label}", n, m, rate, rate / (bare * n), first))
            for envs in (2, 8):
                rate = learner_side_steps_per_s(spec, env_id, envs, args.horizon, 16 * args.horizon)
                rows.append((task, f"{name} in the learner, {envs} envs in {envs} AsyncVectorEnv processes", 2, envs, rate,
                             rate / (bare * 2), None))
    print("| task | rollout | workers | envs per worker | env steps/s | vs bare x workers | first episode after (s) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for task, what, n, m, rate, frac, first in rows:
        print(f"| {task} | {what} | {n} | {m} | {rate:.0f} | {'' if frac is None else f'{frac:.0%}'} | "
              f"{'' if first is None else f'{first:.1f}'} |")
    if ray_startup is not None:
        print(f"\nRay start-up: ray.init(num_cpus=2) {ray_startup:.1f} s (first actor's start is in its row)")


if __name__ == "__main__":
    main()
