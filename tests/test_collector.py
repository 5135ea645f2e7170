"""Collectors: seed order, identical episodes across backends, surviving simulator errors and a killed worker."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

from automimic.envs.point import PointReachEnv
from automimic.rollout.actors import ActorSpec
from automimic.rollout.collector import InProcess, LocalWorkers, make_collector
from automimic.rollout.workers import RolloutJob
from automimic.seeding import episode_seeds

JOB = RolloutJob("point/reach", ActorSpec.expert("point/reach"), {"horizon": 120}, stop_on_success=False)


def _policy_job(seed: int = 0, name: str = "mlp", config: dict | None = None) -> RolloutJob:
    """A job acting with a small untrained policy that samples and adds noise: every source of randomness on."""
    import torch

    from automimic.data.transitions import Transitions
    from automimic.policies import build_policy

    torch.manual_seed(seed)
    demos = list(InProcess().episodes(JOB, episode_seeds("collect", 0, 2)))
    policy = build_policy(name, {"obs_keys": ["state"], **(config or {"head": "gaussian", "hidden": [32]})}, 6, 2)
    policy.fit_normalizers(Transitions.from_episodes(demos, ["state"]))
    spec = ActorSpec.policy(policy, deterministic=False, action_noise=0.1)
    return RolloutJob("point/reach", spec, {"horizon": 40}, source="self", stop_on_success=False)


def _same(a, b) -> None:
    assert [e.seed for e in a] == [e.seed for e in b]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.actions, y.actions)
        np.testing.assert_array_equal(x.obs["state"], y.obs["state"])


def test_simulator_errors_are_retried_on_a_fresh_env_and_counted(monkeypatch):
    seeds = episode_seeds("collect", 0, 6)
    reference = list(InProcess().episodes(JOB, seeds))
    step = PointReachEnv.step
    calls = {"n": 0}

    def flaky(self, action):
        calls["n"] += 1
        if calls["n"] in (50, 400):  # two crashes, mid-episode
            raise RuntimeError("simulator exploded")
        return step(self, action)

    monkeypatch.setattr(PointReachEnv, "step", flaky)
    collector = InProcess()
    _same(list(collector.episodes(JOB, seeds)), reference)
    assert collector.stats.sim_errors == 2 and collector.stats.discarded == 2 and collector.stats.episodes == 6


def test_a_seed_that_always_crashes_is_named(monkeypatch):
    def broken(self, action):
        raise RuntimeError("always")

    monkeypatch.setattr(PointReachEnv, "step", broken)
    seed = episode_seeds("collect", 0, 1)[0]
    with pytest.raises(RuntimeError, match=f"seed {seed}: the episode failed 3 times"):
        list(InProcess(retries=2).episodes(JOB, [seed]))


@pytest.mark.slow
def test_local_workers_replace_a_killed_worker_and_give_identical_episodes():
    seeds = episode_seeds("collect", 0, 120)
    reference = list(InProcess().episodes(JOB, seeds))
    collector = LocalWorkers(2)
    got = []
    for episode in collector.episodes(JOB, seeds):
        got.append(episode)
        if len(got) == 5:
            os.kill(collector.worker_pids()[0], signal.SIGKILL)  # a real kill, mid-run
    _same(got, reference)
    assert collector.stats.worker_deaths == 1 and collector.stats.discarded >= 1
    assert collector.stats.episodes == 120


def test_backend_setting_is_checked():
    assert isinstance(make_collector(1), InProcess) and isinstance(make_collector(2), LocalWorkers)
    with pytest.raises(ValueError, match="unknown rollout backend 'slurm'"):
        make_collector(2, backend="slurm")


@pytest.mark.slow
def test_ray_actors_replace_a_killed_actor_and_give_identical_episodes():
    ray = pytest.importorskip("ray")
    from automimic.rollout.collector import RayWorkers

    seeds = episode_seeds("collect", 0, 60)
    reference = list(InProcess().episodes(JOB, seeds))
    from automimic.rollout.collector import start_ray_env

    start_ray_env()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        collector = RayWorkers(2)
        got = []
        for episode in collector.episodes(JOB, seeds):
            got.append(episode)
            if len(got) == 5:
                os.kill(collector.worker_pids()[0], signal.SIGKILL)
        _same(got, reference)
        # A dead actor loses only the task it ran: at most one worker's envs' worth of episodes.
        assert collector.stats.worker_deaths == 1 and 1 <= collector.stats.discarded <= collector.envs_per_worker
    finally:
        ray.shutdown()


def test_cli_backend_option(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from automimic.cli import app
    from automimic.rollout import collector

    r = CliRunner().invoke(app, ["--backend", "slurm", "envs"])
    assert r.exit_code == 2 and "unknown rollout backend 'slurm'; available: local, ray" in r.output
    monkeypatch.setitem(__import__("sys").modules, "ray", None)  # as if Ray were not installed
    r = CliRunner().invoke(app, ["--backend", "ray", "envs"])
    assert r.exit_code == 2 and "pip install 'automimic[ray]'" in r.output
    collector.set_backend("local")


@pytest.mark.slow
@pytest.mark.parametrize("name, config", [("mlp", None), ("diffusion", {"history": 2, "chunk": 4, "execute_steps": 2,
                                                                       "down_dims": [16, 32], "feature_dim": 16,
                                                                       "time_embed_dim": 16, "num_inference_steps": 4,
                                                                       "ddim_eta": 1.0})])
def test_batched_episodes_depend_on_the_seed_alone(name, config):
    # A sampling policy with action noise, four envs per worker: whichever slot, task or process
    # runs a seed, and whatever runs beside it, its episode is the same.
    job = _policy_job(name=name, config=config)
    seeds = episode_seeds("eval", 0, 11)
    with InProcess(envs_per_worker=4) as here:
        reference = list(here.episodes(job, seeds))
    with InProcess(envs_per_worker=4) as shuffled:
        _same(sorted(shuffled.episodes(job, seeds[::-1]), key=lambda e: seeds.index(e.seed)), reference)
    with LocalWorkers(2, envs_per_worker=4) as local:
        _same(list(local.episodes(job, seeds)), reference)
    assert len({tuple(e.actions[0]) for e in reference}) == len(seeds)  # really random per seed


@pytest.mark.slow
def test_weights_are_versioned_and_episodes_of_abandoned_calls_are_counted_stale():
    first, second = _policy_job(seed=0), _policy_job(seed=1)
    seeds = episode_seeds("eval", 0, 24)
    with LocalWorkers(2, envs_per_worker=2) as collector:
        for i, episode in enumerate(collector.episodes(first, seeds)):
            assert episode.attrs["weights_version"] == 1
            if i == 1:
                break  # the caller has what it needs; tasks still under way become stale
        got = list(collector.episodes(second, seeds[:6]))
        assert [e.attrs["weights_version"] for e in got] == [2] * 6
        assert collector.stats.stale >= 1 and collector.stats.versions == 2
        # The same payload again is not shipped again.
        list(collector.episodes(second, seeds[6:8]))
        assert collector.stats.versions == 2
    with InProcess(envs_per_worker=2) as here:
        _same(got, list(here.episodes(second, seeds[:6])))


def test_repeated_seeds_and_bad_envs_per_worker_are_refused():
    with pytest.raises(ValueError, match="every seed must appear once"):
        list(InProcess().episodes(JOB, [1, 1]))
    with pytest.raises(ValueError, match="envs_per_worker must be >= 1"):
        InProcess(envs_per_worker=0)


def test_envs_per_worker_comes_from_the_cli_setting_or_the_environment(monkeypatch):
    from automimic.rollout.collector import set_backend

    monkeypatch.setenv("AUTOMIMIC_ENVS_PER_WORKER", "1")
    assert make_collector(1).envs_per_worker == 1
    set_backend("local", envs_per_worker=3)
    try:
        assert make_collector(1).envs_per_worker == 3
    finally:
        set_backend("local")
        from automimic.rollout import collector

        collector._default["envs_per_worker"] = None
    monkeypatch.setenv("AUTOMIMIC_ENVS_PER_WORKER", "zero")
    with pytest.raises(ValueError, match="AUTOMIMIC_ENVS_PER_WORKER: expected a whole number >= 1, got 'zero'"):
        make_collector(1)
