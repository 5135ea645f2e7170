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
        assert collector.stats.worker_deaths == 1 and collector.stats.discarded == 1
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
