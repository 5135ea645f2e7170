"""DAgger: beta schedules, expert labels on learner-visited states, resume, CLI."""

from __future__ import annotations

import numpy as np
import pytest

from automimic.algos.dagger import DAggerConfig, beta_for_round, load_dagger_policy, run_dagger
from automimic.data.store import EpisodeStore
from automimic.envs import expert_for, make_env
from automimic.policies import load_policy
from automimic.rollout.actors import PolicyActor
from automimic.rollout.collector import DEFAULT_ENVS_PER_WORKER
from automimic.rollout.episode_runner import run_episode
from automimic.training.loop import TrainConfig
from automimic.training.run_dir import RunDir


def test_beta_schedules():
    assert [beta_for_round("constant", r, 4, 0.5) for r in (1, 2, 4)] == [0.5, 0.5, 0.5]
    assert [beta_for_round("linear", r, 4, 0.8) for r in (1, 2, 3, 4)] == pytest.approx([0.8, 0.6, 0.4, 0.2])
    assert [beta_for_round("exponential", r, 4, 1.0, 0.5) for r in (1, 2, 3)] == pytest.approx([1.0, 0.5, 0.25])
    with pytest.raises(ValueError, match="rounds start at 1"):
        beta_for_round("linear", 0, 4, 0.5)
    with pytest.raises(ValueError, match="beta_schedule must be one of"):
        DAggerConfig(beta_schedule="cosine")


def _cfg(data, **kw) -> DAggerConfig:
    base = dict(data=str(data), demos=5, rounds=1, episodes_per_round=3, beta=0.0, beta_schedule="constant",
                train=TrainConfig(steps=200, log_every=50), eval_episodes=3, workers=1,
                policy_config={"hidden": [32, 32]})
    base.update(kw)
    return DAggerConfig(**base)


def test_aggregate_holds_expert_labels_on_the_states_the_learner_visited(point_demos, tmp_path):
    rows = run_dagger(_cfg(point_demos), tmp_path / "run", progress=False)
    assert [r.round for r in rows] == [0, 1] and rows[1].labelled == 3 and rows[1].train_episodes == 8
    learner = load_policy(RunDir(tmp_path / "run" / "round_0").checkpoint("last"))
    entries = [(i, e) for i, e in EpisodeStore(tmp_path / "run" / "episodes.h5").entries() if i.source == "dagger"]
    assert len(entries) == 3
    for info, ep in entries:
        assert info.round == 1 and ep.attrs["beta"] == 0.0 and ep.attrs["weights_version"] >= 1
        # beta = 0: the learner drove, so replaying it from the seed (same query batch size as the
        # collector's workers) visits the same states...
        replay = run_episode(make_env("point/reach"), PolicyActor(learner, slots=DEFAULT_ENVS_PER_WORKER), ep.seed)
        np.testing.assert_array_equal(replay.obs["state"], ep.obs["state"])
        assert not np.allclose(replay.actions, ep.actions)  # ...but the stored actions are not the learner's:
        expert = expert_for("point/reach")
        expert.reset(ep.seed)
        labels = np.stack([expert({"state": s}) for s in ep.obs["state"]])
        np.testing.assert_allclose(ep.actions, labels, rtol=1e-6)  # they are the expert's on those states


def test_a_cut_short_run_resumes_to_the_same_rounds(point_demos, tmp_path, monkeypatch):
    from automimic.algos import dagger

    full = run_dagger(_cfg(point_demos, beta=0.5), tmp_path / "full", progress=False)
    evaluate = dagger.evaluate
    calls = {"n": 0}

    def dies_in_round_one(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(dagger, "evaluate", dies_in_round_one)
    with pytest.raises(KeyboardInterrupt):
        run_dagger(_cfg(point_demos, beta=0.5), tmp_path / "cut", progress=False)
    monkeypatch.setattr(dagger, "evaluate", evaluate)
    resumed = run_dagger(_cfg(point_demos, beta=0.5), tmp_path / "cut", progress=False)
    strip = lambda rows: [{**r.__dict__, "seconds": 0} for r in rows]  # noqa: E731
    assert strip(resumed) == strip(full)
    assert len(EpisodeStore(tmp_path / "cut" / "episodes.h5").index()) == 8  # nothing labelled twice
    a, b = load_dagger_policy(tmp_path / "full").state_dict(), load_dagger_policy(tmp_path / "cut").state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_cli_train_dagger(point_demos, tmp_path):
    from typer.testing import CliRunner

    from automimic.cli import app

    r = CliRunner().invoke(app, ["train", "dagger", "--data", str(point_demos), "--out", str(tmp_path / "d"),
                                 "--rounds", "1", "--set", "demos=5", "--set", "episodes_per_round=2",
                                 "--set", "train.steps=100", "--set", "eval_episodes=2", "--set", "workers=1"])
    assert r.exit_code == 0, r.output
    assert "round 1: beta 0.50, labelled 2" in r.output
    assert f"trained: {tmp_path / 'd'}/round_1/checkpoints/last.pt" in r.output
    r = CliRunner().invoke(app, ["train", "dagger", "--data", str(point_demos), "--out", str(tmp_path / "e"),
                                 "--set", "beta_schedule=cosine"])
    assert r.exit_code == 2 and "beta_schedule must be one of" in r.output


def constant_expert(obs):
    """A callable expert for the tests below (imported by name, as workers do)."""
    return np.array([0.5, -0.25])


def pendulum_expert(obs):
    """Damp the pendulum's angular velocity: a function obs -> action for an env with no scripted expert."""
    return np.clip(-2.0 * obs["state"][2:3], -2.0, 2.0)


def test_a_callable_expert_labels_dagger_rounds(point_demos, tmp_path):
    run_dagger(_cfg(point_demos, expert="test_dagger:constant_expert"), tmp_path / "run", progress=False)
    labelled = [e for i, e in EpisodeStore(tmp_path / "run" / "episodes.h5").entries() if i.source == "dagger"]
    assert len(labelled) == 3
    for ep in labelled:
        np.testing.assert_array_equal(ep.actions, np.tile([0.5, -0.25], (ep.length, 1)).astype(np.float32))
    with pytest.raises(ValueError, match="cannot import it"):
        run_dagger(_cfg(point_demos, expert="test_dagger:nobody"), tmp_path / "bad", progress=False)


def test_a_callable_expert_records_demos_on_any_gymnasium_env(tmp_path):
    from automimic.rollout.collect import collect_demos

    with pytest.raises(ValueError, match="has no scripted expert"):
        collect_demos("gym/Pendulum-v1", 2, tmp_path / "x.h5", progress=False)
    assert not (tmp_path / "x.h5").exists()
    store = collect_demos("gym/Pendulum-v1", 2, tmp_path / "p.h5", horizon=20, keep_failures=True,
                          expert="test_dagger:pendulum_expert", progress=False)
    for ep in store.episodes():
        assert ep.length == 20 and ep.policy == "expert:test_dagger:pendulum_expert"
        np.testing.assert_allclose(ep.actions, np.clip(-2.0 * ep.obs["state"][:, 2:3], -2, 2), rtol=1e-6)


def test_warm_start_continues_from_the_previous_round(point_demos, tmp_path):
    def state(run: str, r: int) -> dict:
        return load_policy(RunDir(tmp_path / run / f"round_{r}").checkpoint("last")).state_dict()

    # One warm-started step in round 1 (at the warm-up's 1/100 of the learning rate) barely moves
    # round 0's weights and keeps its normalisers; retraining from scratch refits both.
    for run, warm in (("warm", True), ("scratch", False)):
        run_dagger(_cfg(point_demos, warm_start=warm, warm_steps=1), tmp_path / run, progress=False)
    before, warm, scratch = state("warm", 0), state("warm", 1), state("scratch", 1)
    weights = [k for k in before if k.endswith("weight")]
    norms = [k for k in before if "norm" in k]
    assert weights and norms
    moved = max(float((warm[k] - before[k]).abs().max()) for k in weights)
    assert 0 < moved < 1e-3
    assert all(np.array_equal(warm[k], before[k]) for k in norms)
    assert max(float((scratch[k] - before[k]).abs().max()) for k in weights) > 1e-2
    assert not all(np.array_equal(scratch[k], before[k]) for k in norms)
    with pytest.raises(ValueError, match="warm_steps must be >= 0"):
        _cfg(point_demos, warm_steps=-1)
