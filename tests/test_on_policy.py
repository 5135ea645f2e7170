"""The shared on-policy RL stage and the four algorithms on it: GAIL, AIRL, BC -> RL, residual RL."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from automimic.algos.adversarial import AdversarialConfig, run_adversarial
from automimic.algos.bc_rl import BCRLConfig, run_bc_rl
from automimic.algos.on_policy import OnPolicyConfig, bc_regulariser, gae_batch, initial_policy, load_rl_policy
from automimic.algos.ppo import gae
from automimic.algos.residual_rl import ResidualRLConfig, run_residual_rl
from automimic.algos.value_baseline import ValueBaseline
from automimic.data.store import EpisodeStore
from automimic.envs import make_env
from automimic.evaluation.evaluate import evaluate
from automimic.policies import build_policy
from automimic.rollout.actors import ActorSpec
from automimic.rollout.episode_runner import run_lockstep
from automimic.training.loop import TrainConfig

RL = dict(iterations=2, steps_per_iteration=200, eval_every=1, eval_episodes=4, workers=1, robots=2)
BC = TrainConfig(steps=100, log_every=50)
SMALL = {"hidden": [32, 32]}


def _run(algo: str, data, out, on_iteration=None, **kw):
    rl = OnPolicyConfig(**{**RL, **kw.pop("rl", {})})
    if algo in ("gail", "airl"):
        cfg = AdversarialConfig(algo=algo, data=str(data), demos=5, bc=BC, rl=rl, disc_steps=2, disc_batch=64,
                                policy_config={"head": "gaussian", **SMALL}, **kw)
        return run_adversarial(cfg, out, progress=False, on_iteration=on_iteration)
    if algo == "bc-rl":
        cfg = BCRLConfig(data=str(data), demos=5, bc=BC, rl=rl, policy_config={"head": "gaussian", **SMALL}, **kw)
        return run_bc_rl(cfg, out, progress=False, on_iteration=on_iteration)
    cfg = ResidualRLConfig(data=str(data), demos=5, bc=BC, rl=rl, base_config=SMALL, **kw)
    return run_residual_rl(cfg, out, progress=False, on_iteration=on_iteration)


class _Killed(Exception):
    pass


def _comparable(rows):
    return [{k: v for k, v in dataclasses.asdict(r).items() if k != "seconds"} for r in rows]


@pytest.mark.parametrize("algo", ["gail", "airl", "bc-rl", "residual"])
def test_each_algorithm_runs_resumes_and_repeats(algo, point_demos, tmp_path):
    full = _run(algo, point_demos, tmp_path / "full")
    assert [r.iteration for r in full] == [0, 1, 2]
    assert all(r.success is not None for r in full) and full[-1].env_steps >= 2 * RL["steps_per_iteration"]
    assert load_rl_policy(tmp_path / "full").obs_dim == 6

    def kill(row):
        if row.iteration == 1:
            raise _Killed
    with pytest.raises(_Killed):
        _run(algo, point_demos, tmp_path / "cut", on_iteration=kill)
    assert len((tmp_path / "cut" / "iterations.jsonl").read_text().splitlines()) == 2
    resumed = _run(algo, point_demos, tmp_path / "cut")
    assert _comparable(resumed) == _comparable(full)
    lines = [json.loads(line) for line in (tmp_path / "cut" / "iterations.jsonl").read_text().splitlines()]
    assert [line["iteration"] for line in lines] == [0, 1, 2]
    assert (tmp_path / "cut" / "tb").is_dir()
    if algo in ("gail", "airl"):
        assert {"expert_accuracy", "policy_accuracy"} <= set(full[1].reward_info)


def test_residual_rl_starts_exactly_at_the_frozen_base(point_demos, tmp_path):
    rows = _run("residual", point_demos, tmp_path / "res", rl={"iterations": 0})
    from automimic.algos.bc import select_episodes

    base = initial_policy(select_episodes(EpisodeStore(point_demos).episodes(), 5), "point/reach", tmp_path / "res" / "bc",
                          policy="mlp", policy_config=SMALL, train=BC, seed=0)
    result = evaluate(base, "point/reach", 4, seed=0, progress=False)
    assert rows[0].success == result.success_rate and rows[0].eval_length == result.mean_length


def test_bc_rl_refuses_a_policy_without_log_probabilities():
    with pytest.raises(ValueError, match="head must be 'gaussian'"):
        BCRLConfig(policy_config={"head": "deterministic"})
    with pytest.raises(ValueError, match="algo must be one of"):
        AdversarialConfig(algo="gaifo")


def test_gae_batch_bootstraps_cut_episodes_but_not_terminated_ones():
    value = ValueBaseline(1)
    states = np.arange(4, dtype=np.float32)[:, None]
    value.fit(torch.as_tensor(states), torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.Generator().manual_seed(0))
    v = value(torch.as_tensor(states)).numpy()
    r = np.array([1.0, 0.5, 2.0], dtype=np.float32)
    kept = np.zeros((3, 1), dtype=np.float32)
    _, _, adv, _ = gae_batch([states, states], [r, r], [True, False], [kept, kept], value, 0.9, 0.95)
    terminal, _ = gae(r, v[:-1], 0.0, 0.9, 0.95, terminal=True)
    cut, _ = gae(r, v[:-1], float(v[-1]), 0.9, 0.95, terminal=False)
    np.testing.assert_allclose(adv.numpy(), np.concatenate([terminal, cut]), rtol=1e-5)
    assert adv[5] == pytest.approx(r[2] + 0.9 * v[3] - v[2], rel=1e-5)  # the cut one sees V(s_T)


def test_sampled_episodes_record_whether_the_env_terminated(point_demos):
    data = EpisodeStore(point_demos).episodes()[:5]
    from automimic.data.transitions import Transitions

    t = Transitions.from_episodes(data)
    policy = build_policy("mlp", {"head": "gaussian", "obs_keys": list(t.obs_keys), **SMALL}, t.obs.shape[1], 2)
    policy.fit_normalizers(t)
    actor = ActorSpec.sample(policy, 0.1).build(slots=2)
    eps = list(run_lockstep([make_env("point/reach", horizon=5) for _ in range(2)], actor, [1, 2]))
    assert all(e.attrs["terminated"] is False and e.attrs["kept"].shape == (5, 2) for e in eps)
    env = make_env("gym/CartPole-v1")

    class Push:
        name = "push"

        def __init__(self):
            self._kept = []

        def reset(self, seed, slot=0):
            self._kept = []

        def act(self, obs, slots):
            self._kept.append(np.zeros(1, dtype=np.float32))
            return np.ones((len(slots), 1), dtype=np.float32)

        def kept(self, slot):
            return np.stack(self._kept)

    inner_step = env.step  # CartPole's action is discrete
    env.step = lambda a: inner_step(int(a[0]))
    (ep,) = run_lockstep([env], Push(), [0])
    assert ep.attrs["terminated"] is True and ep.length < 100  # always pushing right topples the pole


def test_bc_regulariser_is_the_weighted_imitation_loss(point_demos):
    from automimic.data.transitions import Transitions

    demos = EpisodeStore(point_demos).episodes()[:3]
    t = Transitions.from_episodes(demos)
    policy = build_policy("mlp", {"head": "gaussian", "obs_keys": list(t.obs_keys), **SMALL}, t.obs.shape[1], 2)
    policy.fit_normalizers(t)
    loss = bc_regulariser(policy, demos, 0.5, minibatch=len(t) * 10)
    full = policy.loss(t.batch(torch.arange(len(t))))["loss"]
    # A huge minibatch of random rows averages to close to the full-data loss, times the weight.
    assert loss(torch.Generator().manual_seed(0)).item() == pytest.approx(0.5 * full.item(), rel=0.05)
    loss(torch.Generator().manual_seed(0)).backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in policy.parameters())


def test_worker_processes_give_the_same_iterations_as_in_process(point_demos, tmp_path):
    one = _run("bc-rl", point_demos, tmp_path / "one", rl={"iterations": 1})
    two = _run("bc-rl", point_demos, tmp_path / "two", rl={"iterations": 1, "workers": 2})
    # Only how many surplus episodes were run and dropped may differ (the request size scales with workers).
    strip = lambda rows: [{k: v for k, v in r.items() if k != "dropped"} for r in _comparable(rows)]  # noqa: E731
    assert strip(one) == strip(two)


def test_the_engine_stores_every_practice_episode_with_provenance(point_demos, tmp_path):
    rows = _run("bc-rl", point_demos, tmp_path / "run")
    episodes = EpisodeStore(tmp_path / "run" / "practice.h5").episodes()
    assert len(episodes) == sum(r.episodes for r in rows) and sum(e.length for e in episodes) == rows[-1].env_steps
    assert all(e.source == "self" and e.attrs["weights_version"] >= 1 and "terminated" in e.attrs for e in episodes)
    # round = the iteration the episodes were sampled for; the seeds are the practice seeds in order.
    assert [e.round for e in episodes] == [r.iteration for r in rows[1:] for _ in range(r.episodes)]
    assert len({e.seed for e in episodes}) == len(episodes)


def test_killed_mid_iteration_and_resumed_rl_ends_with_the_uninterrupted_rows_weights_and_store(
        point_demos, tmp_path, monkeypatch):
    full = _run("gail", point_demos, tmp_path / "full")
    # Kill inside iteration 2, after its episodes are stored and its PPO update ran, before its checkpoint.
    calls = {"n": 0}
    fit = ValueBaseline.fit

    def dying(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(ValueBaseline, "fit", dying)
    with pytest.raises(KeyboardInterrupt):
        _run("gail", point_demos, tmp_path / "cut")
    monkeypatch.setattr(ValueBaseline, "fit", fit)
    state = torch.load(tmp_path / "cut" / "rl.pt", weights_only=False)
    assert len(EpisodeStore(tmp_path / "cut" / "practice.h5")) > state["counters"]["episodes"]

    resumed = _run("gail", point_demos, tmp_path / "cut")
    assert _comparable(resumed) == _comparable(full)
    a, b = load_rl_policy(tmp_path / "full"), load_rl_policy(tmp_path / "cut")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    stored = [(e.seed, e.round, e.length) for e in EpisodeStore(tmp_path / "cut" / "practice.h5").episodes()]
    assert stored == [(e.seed, e.round, e.length) for e in EpisodeStore(tmp_path / "full" / "practice.h5").episodes()]
    steps = [json.loads(x)["step"] for x in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [r.iteration for r in full]  # no row logged twice
