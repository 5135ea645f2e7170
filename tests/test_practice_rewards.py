"""Off-policy practice with learned rewards (issue 18): steps-to-go and OT never read the simulator in practice."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from conftest import run_killed_at_update

from automimic.algos import practice as practice_mod
from automimic.algos import practice_rewards
from automimic.algos.offpolicy import UpdateConfig
from automimic.algos.ot_reward import OTReward, ot_rewards
from automimic.algos.practice import PracticeConfig, load_practice_policy, run_practice, write_report
from automimic.algos.practice_rewards import LearnedRewardConfig, reward_diagnostics
from automimic.data.episode import Episode
from automimic.data.replay import ReplayBuffer
from automimic.data.store import EpisodeStore
from automimic.envs.point import PointReachEnv
from automimic.policies.steps_to_go_head import StepsToGoHeadConfig
from automimic.training.loop import TrainConfig

HEAD = StepsToGoHeadConfig(bins=20, max_steps=60.0)


def _cfg(data, reward: str, **over) -> PracticeConfig:
    """A tiny learned-reward practice run on point/reach (20 demos so the head ranks states sensibly)."""
    base = dict(data=str(data), env_id="point/reach", demos=20, budget=1600, reward=reward,
                learned_reward=LearnedRewardConfig(head=HEAD, calibrate_episodes=4),
                bc=TrainConfig(steps=300, checkpoint_every=10**6), eval_every=800, eval_episodes=4, utd=0.25,
                warmup_updates=20, actor_start=400, actor_hidden=(32, 32), critic_hidden=(32, 32), robots=4,
                update=UpdateConfig(batch=32))
    base.update(over)
    return PracticeConfig(**base)


def _episode(states: np.ndarray, success: bool = True) -> Episode:
    return Episode(obs={"state": states[:-1].astype(np.float32)}, actions=np.zeros((len(states) - 1, 2), np.float32),
                   rewards=np.zeros(len(states) - 1, np.float32), success=success,
                   final_obs={"state": states[-1].astype(np.float32)})


def test_exact_ot_scores_each_demo_highest_against_itself(point_demos):
    # ot.emd (exact OT, no epsilon): a demo matched to itself costs 0, the most any trajectory can
    # score; every other demo and every perturbed copy scores at most that.
    demos = EpisodeStore(point_demos).episodes()[:6]
    rng = np.random.default_rng(0)
    source = OTReward(demos, ("state",), solver="emd")
    others = [_episode(np.concatenate([d.obs["state"], d.final_obs["state"][None]])
                       + rng.normal(0, 0.05, (d.length + 1, d.obs["state"].shape[1]))) for d in demos]
    for i, demo in enumerate(demos):
        own = OTReward([demo], ("state",), solver="emd")
        own.mean, own.std = source.mean, source.std  # one normalisation for all (the demo set's)
        own.demos = [source.demos[i]]
        self_score = own.episode_rewards(demo).sum()
        assert self_score == pytest.approx(0.0, abs=1e-9)
        assert all(own.episode_rewards(e).sum() <= self_score + 1e-9 for j, e in enumerate(demos + others)
                   if e is not demo)
    # Against the whole demo set, a demo's closest demo is itself.
    for i, demo in enumerate(demos):
        states = source.normalise(np.concatenate([demo.obs["state"][1:], demo.final_obs["state"][None]]))
        assert ot_rewards(states, source.demos, "emd")[1] == i


def test_ot_rewards_follow_rot_shape_and_sinkhorn_agrees_with_exact_ot():
    rng = np.random.default_rng(1)
    demos = [rng.normal(size=(30, 4)) for _ in range(3)]
    x = demos[1][::2] + rng.normal(0, 0.1, (15, 4))
    exact, i_exact, _ = ot_rewards(x, demos, "emd")
    soft, i_soft, _ = ot_rewards(x, demos, "sinkhorn", eps=0.01)
    assert exact.shape == (15,) and (exact <= 0).all() and (exact >= -2).all()
    assert i_exact == i_soft == 1 and abs(exact.sum() - soft.sum()) < 0.1 * abs(exact.sum()) + 1e-3


def test_held_demos_score_reaching_the_goal_at_pace_above_retracing_the_demo_slowly():
    # A demo records the expert up to success (20 steps here); a practice episode runs to the horizon
    # (60). As recorded, the uniform marginals make retracing the demo 3x slower a perfect match and
    # penalise arriving at the demo's pace and resting at the goal. Held at its last state, the demo
    # ranks them the other way round (exact OT, so the perfect matches are exactly 0).
    rng = np.random.default_rng(2)
    demo = np.cumsum(rng.normal(size=(20, 4)), axis=0) + 3.0
    at_pace = np.concatenate([demo, np.repeat(demo[-1:], 40, axis=0)])
    slow = np.repeat(demo, 3, axis=0)
    total = {(name, hold): ot_rewards(x, [demo], "emd", hold=hold)[0].sum()
             for name, x in (("at pace", at_pace), ("slow", slow)) for hold in (True, False)}
    assert total[("at pace", True)] == pytest.approx(0.0, abs=1e-9) and total[("slow", True)] < -1.0
    assert total[("slow", False)] == pytest.approx(0.0, abs=1e-9) and total[("at pace", False)] < -1.0
    # A demo as long as the episode is used as it is.
    assert (ot_rewards(at_pace, [slow], "emd", hold=True)[0] == ot_rewards(at_pace, [slow], "emd", hold=False)[0]).all()


def test_ot_reward_compares_the_embedding_and_policy_features_are_the_priors_trunk(point_demos):
    # An embedding that keeps one coordinate scores exactly as episodes that hold only that coordinate.
    demos = EpisodeStore(point_demos).episodes()[:4]
    first = OTReward(demos, ("state",), solver="emd", embed=lambda x: x[:, :1])
    only = [_episode(np.concatenate([d.obs["state"], d.final_obs["state"][None]])[:, :1]) for d in demos]
    assert np.array_equal(first.episode_rewards(demos[3]), OTReward(only, ("state",), solver="emd").episode_rewards(only[3]))
    assert not np.array_equal(first.episode_rewards(demos[3]), OTReward(demos, ("state",), solver="emd").episode_rewards(demos[3]))
    # ``policy`` embeds with the frozen prior's trunk, in eval mode.
    from automimic.policies.mlp import MLPConfig, MLPPolicy
    prior = MLPPolicy(MLPConfig(hidden=(8,), obs_noise=0.5), 2, 2)
    x = np.random.default_rng(0).normal(size=(5, 2))
    prior.obs_norm.fit(torch.as_tensor(x, dtype=torch.float32))
    embed = practice_rewards.policy_features(prior)
    assert not prior.training and embed(x).shape == (5, 8)
    with torch.no_grad():
        assert np.allclose(embed(x), prior.features(torch.as_tensor(x, dtype=torch.float32)).numpy())
    with pytest.raises(ValueError, match="ot_embedding must be one of"):
        LearnedRewardConfig(ot_embedding="pixels")


def test_replay_reward_fn_labels_every_step_and_a_new_version_relabels_demos_too():
    scale = {"k": 1.0, "version": 0}
    buffer = ReplayBuffer(1, 1, 10, reward_fn=lambda o, n: scale["k"] * (o - n)[:, 0],
                          reward_version=lambda: scale["version"])
    buffer.add(np.array([[3.0], [2.0]]), np.zeros((2, 1)), np.zeros(2), np.array([[2.0], [1.0]]), False, demo=True)
    buffer.add(np.array([[5.0]]), np.zeros((1, 1)), np.zeros(1), np.array([[1.0]]), False, demo=False)
    gen = torch.Generator().manual_seed(0)
    buffer.sample(4, gen, 0.5, 2, 0.5)
    assert buffer.nstep(torch.tensor([0, 2]), 2, 0.5).returns.tolist() == [1.0 + 0.5 * 1.0, 4.0]
    scale.update(k=2.0, version=1)  # a refreshed model: the next draw relabels every row, demos included
    buffer.sample(4, gen, 0.5, 2, 0.5)
    assert buffer.rewards[:3].tolist() == [2.0, 2.0, 8.0]


def test_reward_diagnostics_by_hand():
    rewards = [np.ones(3), np.ones(10) * 0.1, np.ones(4)]
    out = reward_diagnostics(rewards, [True, False, True])  # returns 3, 1, 4; steps 3, 10, 4
    assert out["corr_success"] == pytest.approx(np.corrcoef([3, 1, 4], [1, 0, 1])[0, 1])
    assert out["corr_steps"] == pytest.approx(np.corrcoef([3, 1, 4], [3, 10, 4])[0, 1]) and out["corr_steps"] < 0
    assert np.isnan(reward_diagnostics([np.ones(2)], [True])["corr_success"])
    # Per step (OT's rewards are <= 0): the means 1, 0.1, 1, not the returns.
    per_step = reward_diagnostics(rewards, [True, False, True], per_step=True)
    assert per_step["corr_success"] == pytest.approx(1.0)
    assert per_step["corr_steps"] == pytest.approx(np.corrcoef([1, 0.1, 1], [3, 10, 4])[0, 1])


class _Guarded(dict):
    """A step info whose success must not be read while practice collects."""

    on = False

    def __getitem__(self, key):
        assert not (key == "success" and _Guarded.on), "practice read the simulator's success"
        return super().__getitem__(key)

    def get(self, key, default=None):
        assert not (key == "success" and _Guarded.on), "practice read the simulator's success"
        return super().get(key, default)


def _allowed(fn):
    """``fn`` with the guard down (evaluation and calibration may read the simulator)."""
    def wrapped(*args, **kwargs):
        before, _Guarded.on = _Guarded.on, False
        try:
            return fn(*args, **kwargs)
        finally:
            _Guarded.on = before
    return wrapped


@pytest.mark.parametrize("reward", ["steps-to-go", "ot"])
def test_learned_reward_practice_never_reads_simulator_success_or_reward(point_demos, tmp_path, monkeypatch, reward):
    step = PointReachEnv.step

    def guarded_step(self, action):
        obs, r, term, trunc, info = step(self, action)
        # While practice collects, the env's reward is NaN: a reward source that used it would
        # put NaN into the replay, the critic's loss and Q.
        return obs, (float("nan") if _Guarded.on else r), term, trunc, _Guarded(info)

    monkeypatch.setattr(PointReachEnv, "step", guarded_step)
    monkeypatch.setattr(practice_mod, "evaluate_episodes", _allowed(practice_mod.evaluate_episodes))
    monkeypatch.setattr(practice_rewards, "calibrate", _allowed(practice_rewards.calibrate))
    _Guarded.on = True
    with pytest.raises(AssertionError):  # the guard itself works
        _Guarded({"success": True})["success"]
    try:
        rows = run_practice(_cfg(point_demos, reward), tmp_path / "run", progress=False)
    finally:
        _Guarded.on = False
    assert rows[-1].env_steps > 0 and rows[-1].updates > 0
    assert all(np.isfinite([r.critic_loss, r.q_mean]).all() for r in rows)
    episodes = EpisodeStore(tmp_path / "run" / "practice.h5").episodes()
    assert episodes and not any(e.success for e in episodes)
    assert {"corr_success", "corr_steps"} <= set(rows[0].reward_info)
    if reward == "steps-to-go":
        assert {"precision", "recall"} <= set(rows[0].reward_info)
        calib = json.loads((tmp_path / "run" / "calibration.json").read_text())
        assert calib["env_steps"] > 0 and rows[-1].env_steps <= 1600 - calib["env_steps"]
    report = write_report(tmp_path / "run").read_text()
    assert "r vs success" in report and "read neither the simulator's success nor its reward" in report


@pytest.mark.parametrize("reward, refresh, ensemble", [("steps-to-go", 0, 1), ("steps-to-go", 1, 1),
                                                       ("steps-to-go", 1, 3), ("ot", 0, 1)])
def test_killed_learned_reward_practice_resumes_to_the_uninterrupted_run(point_demos, tmp_path, monkeypatch, reward,
                                                                         refresh, ensemble):
    head = dataclasses.replace(HEAD, ensemble=ensemble, pessimism=1.0 if ensemble > 1 else 0.0)
    cfg = _cfg(point_demos, reward, learned_reward=LearnedRewardConfig(head=head, threshold=6.0, ot_solver="emd",
                                                                       refresh_every=refresh, refresh_steps=5),
               budget=1600, actor_start=0)
    full = run_practice(cfg, tmp_path / "full", progress=False)
    # Killed inside the first cycle after the last evaluation but one.
    run_killed_at_update(monkeypatch, lambda: run_practice(cfg, tmp_path / "cut", progress=False), full[-2].updates + 1)
    resumed = run_practice(cfg, tmp_path / "cut", progress=False)

    def strip(rows):  # NaN-safe: compare as JSON text
        return [json.dumps({k: v for k, v in r.__dict__.items() if not k.endswith("_s") and k != "seconds"})
                for r in rows]

    assert strip(resumed) == strip(full)
    a, b = load_practice_policy(tmp_path / "full"), load_practice_policy(tmp_path / "cut")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    states = [torch.load(tmp_path / run / "offpolicy.pt", weights_only=False)["reward"] for run in ("full", "cut")]
    if refresh:  # the head was refreshed on detector successes, and the resumed run's head is the same
        assert states[0]["cycles"] > 0 and states[0]["pool"]
        assert all(torch.equal(states[0]["head"][k], states[1]["head"][k]) for k in states[0]["head"])


def test_learned_reward_config_refuses_what_cannot_work():
    with pytest.raises(ValueError, match="detector_stop must be one of"):
        LearnedRewardConfig(detector_stop="maybe")
    with pytest.raises(ValueError, match="ot_eps must be > 0"):
        LearnedRewardConfig(ot_eps=0.0)
    with pytest.raises(ValueError, match="ot_solver must be one of"):
        LearnedRewardConfig(ot_solver="greenkhorn")
    # The prior's features embed single states; a chunked prior reads histories.
    with pytest.raises(ValueError, match="ot_embedding=policy: a chunked policy"):
        practice_rewards.check_learned_reward("ot", LearnedRewardConfig(), "act", True, {}, 10_000, 100)
    practice_rewards.check_learned_reward("ot", LearnedRewardConfig(ot_embedding="obs"), "act", True, {}, 10_000, 100)


class _LikesAnyActionButZero(torch.nn.Module):
    """A critic ``(E=1, B)`` valuing an action by ``1 + |a|^2``: the demo's zero action is the worst."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(()))

    def forward(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return (action ** 2).sum(-1)[None] + 1.0 + 0.0 * self.unused


def test_soft_q_filter_drops_the_bc_term_where_the_actor_beats_the_demo(point_demos):
    from automimic.algos.offpolicy import OffPolicyLearner
    from automimic.data.replay import ReplayBatch

    demos = EpisodeStore(point_demos).episodes()[:2]
    base = practice_mod.initial_policy(demos, "point/reach", None, policy="mlp", policy_config={},
                                       train=TrainConfig(steps=1), seed=0, warm_start=False)
    policy = practice_mod.PriorActorPolicy.from_base(base, practice_mod.Transitions.from_episodes(demos),
                                                     -np.ones(2), np.ones(2), mode="actor")
    obs = torch.as_tensor(demos[0].obs["state"][:4])
    batch = ReplayBatch(obs, torch.zeros(4, 2), torch.zeros(4), obs, torch.zeros(4), torch.ones(4, dtype=torch.bool),
                        torch.zeros(4, 2), torch.zeros(4, 2))
    losses = {}
    for bc_filter in (False, True):
        torch.manual_seed(0)
        learner = OffPolicyLearner(policy, UpdateConfig(bc_weight=1.0, bc_filter=bc_filter))
        # Q is larger for any action than for the demo's (zero) action: the actor beats the demo everywhere.
        learner.policy.critic = _LikesAnyActionButZero()
        learner.actor_opt = torch.optim.SGD(policy.actor.parameters(), lr=0.0)
        losses[bc_filter] = learner.actor_step(policy.state(batch.obs), batch.prior, batch)
    assert losses[True] == pytest.approx(-1.0) and losses[False] > losses[True]


def test_cli_refuses_steps_to_go_with_a_chunked_policy_in_one_line(point_demos, tmp_path):
    from typer.testing import CliRunner

    from automimic.cli import app

    r = CliRunner().invoke(app, ["improve", "practice", "--data", str(point_demos), "--out", str(tmp_path / "x"),
                                 "--reward", "steps-to-go", "--prior", "residual", "--set", "policy=act"])
    assert r.exit_code == 2 and "a chunked policy (act) reads observation histories" in r.output
    assert len(r.output.strip().splitlines()) == 1 and not (tmp_path / "x").exists()
