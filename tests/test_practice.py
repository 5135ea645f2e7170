"""Off-policy practice: it improves a weak policy, resumes exactly, refuses what cannot work."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from conftest import run_killed_at_update

from automimic.algos import practice as practice_mod
from automimic.algos.offpolicy import UpdateConfig
from automimic.algos.practice import PracticeConfig, load_practice_policy, run_practice, write_report
from automimic.data.store import EpisodeStore
from automimic.training.loop import TrainConfig


def _cfg(data, **over) -> PracticeConfig:
    """A small, fast practice run on point/reach (tiny networks, short budget)."""
    base = dict(data=str(data), env_id="point/reach", demos=2, budget=2400, prior="select",
                bc=TrainConfig(steps=200, checkpoint_every=10**6), eval_every=800, eval_episodes=10, utd=0.5,
                warmup_updates=50, actor_start=600, actor_hidden=(32, 32), critic_hidden=(32, 32), robots=4,
                update=UpdateConfig(batch=64))
    base.update(over)
    return PracticeConfig(**base)


def test_killed_and_resumed_practice_ends_with_the_uninterrupted_rows_and_weights(point_demos, tmp_path, monkeypatch):
    full = run_practice(_cfg(point_demos), tmp_path / "full", progress=False)
    assert [r.env_steps for r in full][0] == 0 and len(full) >= 3

    # Kill inside a later cycle's updates: its episodes are already in the store, the checkpoint is older.
    run_killed_at_update(monkeypatch, lambda: run_practice(_cfg(point_demos), tmp_path / "cut", progress=False), 201)
    stored = len(EpisodeStore(tmp_path / "cut" / "practice.h5"))
    state = torch.load(tmp_path / "cut" / "offpolicy.pt", weights_only=False)
    assert stored > state["counters"]["episodes"]  # the kill left episodes beyond the checkpoint

    resumed = run_practice(_cfg(point_demos), tmp_path / "cut", progress=False)
    strip = lambda rows: [{k: v for k, v in r.__dict__.items() if not k.endswith("_s") and k != "seconds"}
                          for r in rows]
    assert strip(resumed) == strip(full)
    a, b = load_practice_policy(tmp_path / "full"), load_practice_policy(tmp_path / "cut")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert len(EpisodeStore(tmp_path / "cut" / "practice.h5")) == len(EpisodeStore(tmp_path / "full" / "practice.h5"))
    lines = (tmp_path / "cut" / "evals.jsonl").read_text().splitlines()
    assert [json.loads(x)["env_steps"] for x in lines] == [r.env_steps for r in full]
    steps = [json.loads(x)["step"] for x in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [r.env_steps for r in full]  # no row logged twice
    report = write_report(tmp_path / "cut")
    assert "success.png" in report.read_text() and (tmp_path / "cut" / "success.png").exists()


def test_a_finished_run_given_a_larger_budget_practises_on_to_the_longer_runs_weights(point_demos, tmp_path):
    long = run_practice(_cfg(point_demos, budget=1600), tmp_path / "long", progress=False)
    short = run_practice(_cfg(point_demos, budget=800), tmp_path / "grow", progress=False)
    grown = run_practice(_cfg(point_demos, budget=1600), tmp_path / "grow", progress=False)
    assert grown[: len(short)] == short and grown[-1].env_steps == long[-1].env_steps > short[-1].env_steps
    # Evaluation touches no training randomness, so the extra evaluation at the old budget's end
    # leaves the weights exactly where the uninterrupted longer run ends.
    a, b = load_practice_policy(tmp_path / "long"), load_practice_policy(tmp_path / "grow")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert "budget: 1600" in (tmp_path / "grow" / "config.yaml").read_text()
    with pytest.raises(ValueError, match="only budget may grow"):
        run_practice(_cfg(point_demos, budget=800), tmp_path / "grow", progress=False)
    with pytest.raises(ValueError, match="different config"):
        run_practice(_cfg(point_demos, budget=2400, utd=1.0), tmp_path / "grow", progress=False)


def test_asynchronous_practice_bounds_the_weights_lag_repeats_resumes_and_runs_on_ray(point_demos, tmp_path,
                                                                                      monkeypatch):
    from conftest import ray_backend

    cfg = _cfg(point_demos, budget=1600, async_lag=1)
    full = run_practice(cfg, tmp_path / "full", progress=False)
    episodes = EpisodeStore(tmp_path / "full" / "practice.h5").episodes()
    lags = [e.attrs["weights_lag"] for e in episodes]
    # Cycles 0 and 1 both act with the starting weights (cycle 1 so a cycle's learning behind); every
    # later cycle is submitted one cycle ahead of the learner, so it is one cycle behind too.
    assert lags[:4] == [0] * 4 and set(lags[4:]) == {1} and sum(e.length for e in episodes) <= 1600
    assert [e.round for e in episodes] == sorted(e.round for e in episodes)

    # Killed inside a later cycle's updates, with the next cycle in flight.
    run_killed_at_update(monkeypatch, lambda: run_practice(cfg, tmp_path / "cut", progress=False), 300)
    assert torch.load(tmp_path / "cut" / "offpolicy.pt", weights_only=False)["schedule"]["pending"]
    resumed = run_practice(cfg, tmp_path / "cut", progress=False)
    strip = lambda rows: [{k: v for k, v in r.__dict__.items() if not k.endswith("_s") and k != "seconds"}
                          for r in rows]
    assert strip(resumed) == strip(full)
    with ray_backend():
        on_ray = run_practice(cfg, tmp_path / "ray", progress=False)
    assert strip(on_ray) == strip(full)
    for other in ("cut", "ray"):
        a, b = load_practice_policy(tmp_path / "full"), load_practice_policy(tmp_path / other)
        assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_practice_episodes_are_stored_with_provenance(point_demos, tmp_path):
    run_practice(_cfg(point_demos, budget=800, eval_every=800), tmp_path / "run", progress=False)
    episodes = EpisodeStore(tmp_path / "run" / "practice.h5").episodes()
    assert episodes and all(e.source == "self" and e.policy == "practice:select" for e in episodes)
    assert all(e.attrs["weights_version"] >= 1 and "terminated" in e.attrs for e in episodes)
    assert sum(e.length for e in episodes) <= 800
    assert [e.round for e in episodes][:4] == [0, 0, 0, 0]
    # The run folder is a policy like any other for `automimic eval`.
    from automimic.cli import app

    r = CliRunner().invoke(app, ["eval", str(tmp_path / "run"), "--episodes", "3"])
    assert r.exit_code == 0 and "point/reach (after practice): success" in r.output


@pytest.mark.parametrize("over, message", [
    (dict(budget=100), "smaller than one episode"),
    (dict(policy="act", prior="select"), "use --prior residual"),
    (dict(prior="bc", update=UpdateConfig(bc_weight=0.0)), "update.bc_weight"),
    (dict(prior="nope"), "prior must be one of"),
    (dict(reward="nope"), "reward must be one of"),
    (dict(utd=0.0), "utd must be > 0"),
    (dict(select_pessimism=-1.0), "select_pessimism and async_lag must be >= 0"),
    (dict(async_lag=-1), "select_pessimism and async_lag must be >= 0"),
    (dict(env_id="gym/Pendulum-v1", reward="success"), "reports no success flag; use --reward env"),
    (dict(reward="steps-to-go", policy="act", prior="residual"), "reward 'steps-to-go': a chunked policy"),
    (dict(reward="ot", policy="act", prior="residual", policy_config={"image_keys": ["corner"]}),
     "compares state vectors"),
    (dict(reward="steps-to-go", budget=1000), "calibrating the detector may take"),
])
def test_what_cannot_work_is_refused_before_anything_is_written(point_demos, tmp_path, over, message):
    with pytest.raises(ValueError, match=message):
        run_practice(_cfg(point_demos, **over), tmp_path / "bad", progress=False)
    assert not (tmp_path / "bad").exists()


def test_cli_refuses_a_budget_below_one_episode_in_one_line(point_demos, tmp_path):
    from automimic.cli import app

    r = CliRunner().invoke(app, ["improve", "practice", "--data", str(point_demos), "--out", str(tmp_path / "x"),
                                 "--budget", "50"])
    assert r.exit_code == 2 and "budget 50 is smaller than one episode" in r.output
    assert len(r.output.strip().splitlines()) == 1 and not (tmp_path / "x").exists()


def test_a_chunked_prior_practises_through_a_residual_that_starts_as_the_prior(point_demos, tmp_path):
    from conftest import CHUNKED_CONFIGS

    from automimic.algos.bc import load_run_policy

    cfg = _cfg(point_demos, policy="act", policy_config=dict(CHUNKED_CONFIGS["act"]), prior="residual", budget=800,
               eval_every=800, actor_start=0)
    rows = run_practice(cfg, tmp_path / "act", progress=False)
    assert [r.env_steps for r in rows][0] == 0 and rows[-1].updates > 0
    policy = load_practice_policy(tmp_path / "act")
    assert policy.base.chunk > 0 and policy.config.mode == "residual"
    # A fresh residual (zero last layer) acts exactly as its frozen chunked prior's first action.
    fresh = practice_mod.PriorActorPolicy.from_base(
        load_run_policy(tmp_path / "act" / "bc", "last"), practice_mod.Transitions.from_episodes(
            EpisodeStore(point_demos).episodes()[:2]), policy._low.numpy(), policy._high.numpy(), mode="residual")
    obs = EpisodeStore(point_demos).episodes()[0].obs["state"][:5]
    base = fresh.base.predict_chunk(obs[:, None].repeat(fresh.base.history, 1))[:, 0]
    assert abs(fresh.act(obs) - base.clip(-1, 1)).max() < 1e-5


def test_pessimistic_selection_keeps_the_prior_where_the_critics_disagree_about_the_actor(point_demos):
    from automimic.algos.on_policy import initial_policy

    demos = EpisodeStore(point_demos).episodes()[:2]
    base = initial_policy(demos, "point/reach", None, policy="mlp", policy_config={}, train=TrainConfig(steps=1),
                          seed=0, warm_start=False)
    data = practice_mod.Transitions.from_episodes(demos)
    state, prior, proposal = torch.zeros(3, 2), torch.zeros(3, 2), torch.ones(3, 2)

    def critic(s, a):  # (E=2, B): both critics value the prior at 1; on the actor's action they disagree
        q = torch.tensor([[3.0, 1.2, 1.5], [0.5, 1.0, 1.5]])
        return q if bool((a == 1).all()) else torch.ones(2, 3)

    picks = []
    for beta in (0.0, 1.0):
        policy = practice_mod.PriorActorPolicy.from_base(base, data, -np.ones(2), np.ones(2), select_pessimism=beta)
        _, pick = policy.choose(state, prior, proposal, critic=critic)
        picks.append(pick.tolist())
    # Means 1.75, 1.1, 1.5 all beat the prior's 1; less one std (1.25, 0.1, 0) only the agreed one does.
    assert picks == [[True, True, True], [False, False, True]]


def test_practice_raises_a_weak_point_reach_policy(tmp_path):
    # A BC prior from 5 demos and 300 steps starts at 0.46-0.70 (random actions reach 0.48-0.72 on
    # point/reach, in 121-160 steps: the starting policy is weak). Measured on one 2-core AMD EPYC,
    # training seeds 0-3, the mean of the evaluations after practice minus the start was +0.45,
    # +0.10, +0.21 and +0.20 (5 demos, 8k steps; 50 evaluation episodes each), so any two seeds
    # average +0.15 or more. Another CPU gives other float bits and so other runs: the bound is set
    # well under that, and on the mean of two seeds rather than one.
    from automimic.rollout.collect import collect_demos

    data = collect_demos("point/reach", 20, tmp_path / "demos.h5", progress=False).path
    gains = []
    for seed in (1, 3):
        cfg = _cfg(data, demos=5, budget=8000, eval_every=2000, eval_episodes=50, warmup_updates=100,
                   actor_start=1000, utd=1.0, actor_hidden=(64, 64), critic_hidden=(64, 64), robots=8,
                   bc=TrainConfig(steps=300, checkpoint_every=10**6), update=UpdateConfig(batch=128), seed=seed)
        rows = run_practice(cfg, tmp_path / f"s{seed}", progress=False)
        gains.append(sum(r.success for r in rows[1:]) / len(rows[1:]) - rows[0].success)
    assert sum(gains) / len(gains) >= 0.1, gains


def test_a_checkpoint_from_before_the_engine_is_refused_in_one_line(point_demos, tmp_path):
    cfg = _cfg(point_demos, budget=800, eval_every=800)
    run_practice(cfg, tmp_path / "run", progress=False)
    state = torch.load(tmp_path / "run" / "offpolicy.pt", weights_only=False)
    torch.save({k: v for k, v in state.items() if k not in ("rule", "reward")}, tmp_path / "run" / "offpolicy.pt")
    with pytest.raises(ValueError, match="written by an automimic before the practice engine"):
        run_practice(cfg, tmp_path / "run", progress=False)
