"""Environments: the point mass, Meta-World, ids, seeding and perturbation."""

from __future__ import annotations

import numpy as np
import pytest

from automimic.envs import env_ids, expert_for, make_env
from automimic.envs.metaworld import DEFAULT_PERTURB, object_blocks, task_names
from automimic.rollout.actors import ExpertActor
from automimic.rollout.episode_runner import run_episode


def test_unknown_id_lists_valid_ids():
    with pytest.raises(ValueError) as err:
        make_env("metaworld/push-v9")
    message = str(err.value)
    assert "unknown env id 'metaworld/push-v9'" in message
    assert "metaworld/pick-place-v3" in message and "point/reach" in message
    with pytest.raises(ValueError, match="unknown env id"):
        make_env("nosuchfamily/x")


def test_all_fifty_metaworld_tasks_are_listed():
    assert len(task_names()) == 50
    assert sum(1 for i in env_ids() if i.startswith("metaworld/")) == 50


def test_point_dynamics_and_success_radius():
    env = make_env("point/reach")
    obs, info = env.reset(seed=3)
    assert obs["state"].shape == (6,) and info["start"]["seed"] == 3
    # Full acceleration for one step from rest moves the point by exactly ACCEL.
    obs2, _, _, _, info2 = env.step(np.array([1.0, 0.0]))
    assert np.isclose(obs2["state"][0] - obs["state"][0], 0.05)
    assert np.isclose(obs2["state"][2], 0.05)
    # Place the point just inside, then just outside, the 0.15 radius.
    env._pos = env._goal + np.array([0.149, 0.0])
    env._vel[:] = 0
    assert env.step(np.zeros(2))[4]["success"]
    env._pos = env._goal + np.array([0.151, 0.0])
    env._vel[:] = 0
    assert not env.step(np.zeros(2))[4]["success"]


def test_point_expert_detours_and_succeeds():
    env = make_env("point/reach")
    episodes = [run_episode(env, ExpertActor("point/reach"), s) for s in range(30)]
    assert all(e.success for e in episodes)
    # The detour makes demos clearly longer than the straight-line distance needs (~10-15 steps).
    assert np.mean([e.length for e in episodes]) > 20


def test_seeded_resets_repeat_and_differ():
    for env_id in ("point/reach", "metaworld/pick-place-v3"):
        env = make_env(env_id)
        a, _ = env.reset(seed=11)
        b, _ = env.reset(seed=12)
        c, _ = env.reset(seed=11)
        np.testing.assert_array_equal(a["state"], c["state"])
        assert not np.allclose(a["state"], b["state"])
        with pytest.raises(ValueError, match="needs a seed"):
            env.reset()


def test_metaworld_rollout_reports_success_from_the_simulator():
    env = make_env("metaworld/push-v3")
    ep = run_episode(env, ExpertActor("metaworld/push-v3"), seed=5)
    assert ep.success and ep.length < env.horizon
    assert ep.obs["state"].shape == (ep.length, 39) and ep.actions.shape == (ep.length, 4)
    # A policy that does nothing never succeeds.
    class Idle:
        name = "idle"

        def reset(self, seed, slot=0):
            pass

        def act(self, obs, slots):
            return np.zeros((len(slots), 4), dtype=np.float32)

    idle = run_episode(make_env("metaworld/push-v3", horizon=30), Idle(), seed=5)
    assert not idle.success and idle.length == 30


def test_perturbation_moves_objects_in_xy_only_and_is_recorded():
    plain = make_env("metaworld/push-v3")
    shaken = make_env("metaworld/push-v3", perturb=0.05)
    a, info_a = plain.reset(seed=7)
    b, info_b = shaken.reset(seed=7)
    offset = info_b["start"]["perturb_offset"]
    assert offset.shape == (1, 2) and np.abs(offset).max() > 0
    assert info_b["start"]["perturb_sigma"] == 0.05
    assert info_a["start"]["perturb_offset"].size == 0
    # Object x, y shift by the recorded offset; z does not move; the goal stays put.
    np.testing.assert_allclose(b["state"][4:6] - a["state"][4:6], offset[0], atol=1e-4)
    assert np.isclose(b["state"][6], a["state"][6], atol=1e-4)
    np.testing.assert_allclose(b["state"][36:39], a["state"][36:39], atol=1e-6)
    # Same seed and sigma give the same perturbation.
    again, info_again = make_env("metaworld/push-v3", perturb=0.05).reset(seed=7)
    np.testing.assert_array_equal(info_again["start"]["perturb_offset"], offset)


@pytest.mark.parametrize("task", ["drawer-open-v3", "window-close-v3"])
def test_first_observation_shows_the_placement_a_step_later_confirms(task):
    # Meta-World moves these tasks' bodies after the reset's last physics step (its own first
    # observation was 0.10-0.20 m off, measured); a zero action does not move the object.
    env = make_env(f"metaworld/{task}")
    first, _ = env.reset(seed=3)
    np.testing.assert_allclose(first["state"][4:7], env.step(np.zeros(4))[0]["state"][4:7], atol=1e-3)
    np.testing.assert_array_equal(first["state"][18:36], first["state"][:18])


def test_perturbation_leaves_an_axis_the_task_never_varies_alone():
    # drawer-open-v3 places the drawer at x in [-0.1, 0.1] and always at y = 0.9: a y shift would make
    # starts that evaluation never has.
    plain, _ = make_env("metaworld/drawer-open-v3").reset(seed=3)
    shaken, info = make_env("metaworld/drawer-open-v3", perturb=0.05).reset(seed=3)
    offset = info["start"]["perturb_offset"]
    assert offset.shape == (1, 2) and offset[0, 0] != 0 and offset[0, 1] == 0
    assert info["start"]["start_vector"][1] == 0.9
    np.testing.assert_allclose(shaken["state"][4:6] - plain["state"][4:6], offset[0], atol=1e-4)


def test_object_blocks_found_for_every_family_of_task():
    assert object_blocks("push-v3") == (0,)  # [object xyz, goal xyz]: only the object moves objects
    assert object_blocks("drawer-open-v3") == (0,)


@pytest.mark.slow
def test_expert_solves_perturbed_starts_at_default_sigma():
    env = make_env("metaworld/pick-place-v3", perturb=DEFAULT_PERTURB)
    actor = ExpertActor("metaworld/pick-place-v3")
    wins = sum(run_episode(env, actor, seed).success for seed in range(1000, 1050))
    assert wins >= 45, f"expert solved only {wins}/50 perturbed starts"


def test_gymnasium_envs_are_wrapped():
    env = make_env("gym/Pendulum-v1")
    obs, info = env.reset(seed=0)
    assert obs["state"].shape == (3,) and env.horizon == 200
    _, _, _, _, info = env.step(np.zeros(1, dtype=np.float32))
    assert info["success"] is False
    with pytest.raises(ValueError, match="has no scripted expert"):
        expert_for("gym/Pendulum-v1")


def _flags(env, act, seed=0, cap=1000):
    """Step a plain Gymnasium loop (``act(obs) -> action``) until terminated or truncated.

    Returns one ``(terminated, truncated, success)`` per step; the loop is what a user writes
    without automimic's runner, so the env alone must end it.
    """
    obs, _ = env.reset(seed=seed)
    flags = []
    for _ in range(cap):
        obs, _, terminated, truncated, info = env.step(act(obs))
        flags.append((terminated, truncated, info["success"]))
        if terminated or truncated:
            break
    return flags


def _cut_exactly_at(flags, horizon):
    """The episode ran ``horizon`` steps, was cut (truncated) only at the last, never terminated."""
    assert len(flags) == horizon
    assert [t for t, _, _ in flags] == [False] * horizon
    assert [c for _, c, _ in flags] == [False] * (horizon - 1) + [True]


@pytest.mark.parametrize("env_id, horizon", [("metaworld/reach-v3", 5), ("point/reach", 7),
                                             ("gym/Pendulum-v1", 7), ("gym/CartPole-v1", 5)])
def test_every_family_truncates_at_its_horizon_and_never_terminates_on_a_cut(env_id, horizon):
    env = make_env(env_id, horizon=horizon)
    # A zero action (CartPole: push left) ends no task in 7 steps: the pole takes ~10 to fall.
    zero = (lambda obs: 0) if env_id == "gym/CartPole-v1" else (lambda obs: np.zeros(env.action_space.shape, np.float32))
    _cut_exactly_at(_flags(env, zero), horizon)
    _cut_exactly_at(_flags(env, zero, seed=1), horizon)  # the count restarts at every reset


def test_the_default_horizons_are_enforced_by_the_env():
    # Meta-World itself would run on to 500 and point/reach forever: the env, not the runner, cuts at 200.
    for env_id in ("metaworld/push-v3", "point/reach"):
        env = make_env(env_id)
        assert env.horizon == 200
        _cut_exactly_at(_flags(env, lambda obs: np.zeros(env.action_space.shape, np.float32)), 200)


def test_a_gym_horizon_replaces_the_registered_time_limit_either_way():
    # Pendulum registers 200 steps; a longer horizon must not be cut at 200, a shorter one cuts first.
    longer = make_env("gym/Pendulum-v1", horizon=250)
    _cut_exactly_at(_flags(longer, lambda obs: np.zeros(1, np.float32)), 250)
    assert make_env("gym/Pendulum-v1").horizon == 200


def test_success_does_not_terminate_metaworld_or_point():
    # Success is a flag: the task's world goes on, and automimic's runner (not the env) stops there.
    for env_id, horizon in (("metaworld/reach-v3", 80), ("point/reach", 150)):
        env = make_env(env_id, horizon=horizon)
        expert = expert_for(env_id)
        expert.reset(0)
        flags = _flags(env, expert)
        assert any(s for _, _, s in flags), f"{env_id}: the expert did not succeed within {horizon} steps"
        _cut_exactly_at(flags, horizon)


def test_a_real_task_end_terminates_and_is_not_a_cut():
    # CartPole ends for good when the pole falls: pushing right all the time drops it in ~10 steps.
    env = make_env("gym/CartPole-v1", horizon=100)
    flags = _flags(env, lambda obs: 1)
    assert 5 < len(flags) < 100
    assert flags[-1][:2] == (True, False)
    assert not any(t or c for t, c, _ in flags[:-1])


def test_camera_observations_keep_the_horizon():
    env = make_env("point/reach", horizon=4, cameras=["top"], image_size=16)
    _cut_exactly_at(_flags(env, lambda obs: np.zeros(2, np.float32)), 4)
