"""Steps-to-go self-improvement: head, learned reward, calibration, REINFORCE, practice isolation, resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from automimic.algos.calibration import calibrate_scores, choose_threshold, precision_recall
from automimic.algos.learned_reward import LearnedReward
from automimic.algos.steps_to_go import (
    StepsToGoConfig,
    discounted_returns,
    exploration_distribution,
    load_practised_policy,
    pace_baseline,
    reinforce_update,
    run_steps_to_go,
)
from automimic.data.episode import Episode
from automimic.data.store import EpisodeStore
from automimic.data.transitions import Transitions, steps_to_go_labels
from automimic.envs.point import PointReachEnv
from automimic.policies import build_policy, load_policy, save_policy
from automimic.policies.steps_to_go_head import StepsToGoHeadConfig
from automimic.training.loop import TrainConfig


def _policy(head: StepsToGoHeadConfig | None = StepsToGoHeadConfig(bins=10, max_steps=20.0), obs_dim: int = 3):
    return build_policy("mlp", {"head": "gaussian", "hidden": (32, 32), "obs_keys": ("state",)}, obs_dim, 2,
                        steps_to_go=head)


def test_labels_are_steps_left_on_successes_and_unknown_on_failures():
    assert steps_to_go_labels(4, True).tolist() == [4, 3, 2, 1]
    assert steps_to_go_labels(3, False).tolist() == [-1, -1, -1]


def test_head_bins_expectation_and_masked_loss():
    policy = _policy()
    head = policy.steps_to_go
    assert head.bin_of(torch.tensor([0.0, 1.9, 2.0, 19.9, 500.0])).tolist() == [0, 0, 1, 9, 9]
    one_hot = torch.full((2, 10), -1e4)
    one_hot[0, 3] = one_hot[1, 7] = 0.0
    assert head.expected(one_hot).tolist() == pytest.approx([7.0, 15.0])  # bin centres (width 2)
    feats = torch.randn(4, 32)
    assert head.loss(feats, torch.full((4,), -1.0)).item() == 0.0  # failures teach nothing
    labelled = head.loss(feats, torch.tensor([-1.0, 3.0, -1.0, 11.0]))
    assert labelled.item() == pytest.approx(head.loss(feats[[1, 3]], torch.tensor([3.0, 11.0])).item())


def test_an_ensemble_head_reads_mean_plus_pessimism_std_and_trains_every_member(tmp_path):
    policy = _policy(StepsToGoHeadConfig(bins=10, max_steps=20.0, ensemble=3, pessimism=1.0))
    head = policy.steps_to_go
    one_hot = torch.full((3, 2, 10), -1e4)
    for member, bins in enumerate([(3, 0), (3, 0), (5, 9)]):  # centres 7, 7, 11 and 1, 1, 19
        one_hot[member, 0, bins[0]] = one_hot[member, 1, bins[1]] = 0.0
    by_hand = [np.mean(d) + np.std(d) for d in ([7.0, 7.0, 11.0], [1.0, 1.0, 19.0])]
    assert head.expected(one_hot).tolist() == pytest.approx(by_hand)
    feats, labels = torch.randn(5, 32), torch.tensor([-1.0, 3.0, 8.0, -1.0, 15.0])
    logits = head(feats)
    assert logits.shape == (3, 5, 10)
    members = [torch.nn.functional.cross_entropy(x[[1, 2, 4]], head.bin_of(labels[[1, 2, 4]])) for x in logits]
    loss = head.loss(feats, labels)
    assert loss.item() == pytest.approx(torch.stack(members).mean().item())
    loss.backward()
    assert all(m[0].weight.grad is not None and m[0].weight.grad.abs().sum() > 0 for m in head.members)
    obs = torch.randn(4, 3)
    policy.fit_normalizers(Transitions(obs, torch.randn(4, 2), torch.zeros(4), ("state",), torch.arange(4.0)))
    save_policy(policy, tmp_path / "p.pt")
    assert torch.allclose(load_policy(tmp_path / "p.pt").expected_steps_to_go(obs), policy.expected_steps_to_go(obs))
    with pytest.raises(ValueError, match="ensemble must be >= 1"):
        StepsToGoHeadConfig(ensemble=0)
    with pytest.raises(ValueError, match="set steps_to_go.ensemble >= 2"):
        StepsToGoHeadConfig(pessimism=1.0)


def test_training_loss_adds_weighted_steps_to_go_and_checkpoint_keeps_the_head(tmp_path):
    policy = _policy(StepsToGoHeadConfig(bins=10, max_steps=20.0, weight=0.5, bc_weight=2.0))
    obs, actions = torch.randn(16, 3), torch.randn(16, 2)
    labels = torch.arange(16, dtype=torch.float32)
    policy.fit_normalizers(Transitions(obs, actions, torch.zeros(16), ("state",), labels))
    losses = policy.training_loss({"obs": obs, "actions": actions, "steps_to_go": labels})
    assert losses["loss"].item() == pytest.approx(2.0 * losses["bc_loss"].item() + 0.5 * losses["steps_to_go_loss"].item())
    save_policy(policy, tmp_path / "p.pt")
    loaded = load_policy(tmp_path / "p.pt")
    assert loaded.steps_to_go is not None and loaded.steps_to_go.config.weight == 0.5
    assert torch.allclose(loaded.expected_steps_to_go(obs), policy.expected_steps_to_go(obs))
    with pytest.raises(ValueError, match="no steps-to-go head"):
        _policy(head=None).expected_steps_to_go(obs)


def test_detached_head_leaves_the_trunk_to_behaviour_cloning():
    """With ``detach`` the trunk's gradient is behaviour cloning's alone; shared, the head moves it too."""
    obs, actions, labels = torch.randn(16, 3), torch.randn(16, 2), torch.arange(16, dtype=torch.float32)
    batch = {"obs": obs, "actions": actions, "steps_to_go": labels}

    def trunk_grads(detach: bool, total: bool) -> list[torch.Tensor]:
        torch.manual_seed(0)
        policy = _policy(StepsToGoHeadConfig(bins=10, max_steps=20.0, detach=detach))
        policy.fit_normalizers(Transitions(obs, actions, torch.zeros(16), ("state",), labels))
        loss = policy.training_loss(batch)["loss"] if total else policy.loss(batch)["loss"]
        loss.backward()
        head = {id(p) for p in policy.steps_to_go.parameters()}
        return [p.grad.clone() for p in policy.parameters() if id(p) not in head and p.grad is not None]

    bc_only = trunk_grads(detach=False, total=False)
    assert all(torch.equal(a, b) for a, b in zip(trunk_grads(detach=True, total=True), bc_only))
    assert not all(torch.allclose(a, b) for a, b in zip(trunk_grads(detach=False, total=True), bc_only))
    # The detached head still learns: its own parameters get gradients.
    policy = _policy(StepsToGoHeadConfig(bins=10, max_steps=20.0, detach=True))
    policy.fit_normalizers(Transitions(obs, actions, torch.zeros(16), ("state",), labels))
    policy.training_loss(batch)["loss"].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in policy.steps_to_go.parameters())


class _KnownD(type(_policy())):
    """A policy whose steps-to-go is the first observation feature: d(o) = o[0]."""

    def expected_steps_to_go(self, obs: torch.Tensor) -> torch.Tensor:
        return obs[:, 0]


def _episode(d: list[float], success: bool) -> Episode:
    obs = np.stack([[v, 0.0, 0.0] for v in d]).astype(np.float32)
    return Episode(obs={"state": obs[:-1]}, actions=np.zeros((len(d) - 1, 2), np.float32),
                   rewards=np.zeros(len(d) - 1, np.float32), success=success, final_obs={"state": obs[-1]})


def test_known_steps_to_go_gives_known_rewards_and_detections():
    model = _KnownD(_policy().config, 3, 2)
    model.attach_steps_to_go(StepsToGoHeadConfig())
    reward = LearnedReward(model, threshold=1.5)
    d = reward.episode_steps_to_go(_episode([10, 8, 5, 5, 1], True))
    assert d.tolist() == [10, 8, 5, 5, 1]
    assert reward.rewards(d).tolist() == [2, 3, 0, 4]  # d_t - d_{t+1}
    assert reward.success(d).tolist() == [False, False, False, False, True]


def test_reward_model_is_a_frozen_copy():
    policy = _policy()
    policy.fit_normalizers(Transitions(torch.randn(8, 3), torch.randn(8, 2), torch.zeros(8), ("state",),
                                       torch.zeros(8)))
    reward = LearnedReward(policy, 3.0)
    obs = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    before = reward.steps_to_go(obs)
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(1.0)
    assert np.allclose(reward.steps_to_go(obs), before)
    assert not any(p.requires_grad for p in reward.model.parameters())


def test_calibration_separates_constructed_success_and_failure():
    rng = np.random.default_rng(0)
    # Successes count down to ~1 at their final (success) state; failures hover at 8-20.
    succ = [np.concatenate([np.linspace(30, 4, 20) + rng.normal(0, 0.3, 20), [rng.uniform(0.5, 1.5)]])
            for _ in range(30)]
    fail = [rng.uniform(8, 20, size=40) for _ in range(10)]
    calib = calibrate_scores(succ + fail, [True] * 30 + [False] * 10)
    assert 1.5 < calib.threshold < 3.7  # between the success states and everything else
    assert (calib.precision, calib.recall) == (1.0, 1.0) and (calib.successes, calib.failures) == (30, 10)
    # A threshold that fires inside failures and before the goal costs precision, not recall.
    p, r = precision_recall(succ + fail, [True] * 30 + [False] * 10, 10.0)
    assert r == 0.0 and p == 0.0  # 10 fires early in every success and inside every failure
    # One step early counts as right with tolerance 1, wrong without.
    early = [np.array([5.0, 1.0, 1.0])]
    assert precision_recall(early, [True], 1.2) == (0.0, 0.0)
    assert precision_recall(early, [True], 1.2, tolerance=1) == (1.0, 1.0)
    with pytest.raises(ValueError, match="at least one successful"):
        choose_threshold(fail, [False] * 10)


def test_discounted_returns_and_pace_baseline_by_hand():
    g = discounted_returns(np.array([1.0, 0.0, 2.0]), 0.9)
    assert g.tolist() == pytest.approx([1 + 0.9 * 0 + 0.81 * 2, 0 + 0.9 * 2, 2.0])
    # Two steps of d above s at one step of d per step: 1 + 0.9; at or below s: nothing left to gain.
    assert pace_baseline(np.array([5.0, 3.0, 2.5]), 3.0, 0.9).tolist() == pytest.approx([1.9, 0.0, 0.0])


def reinforce_toy(seed: int = 0) -> tuple[float, float]:
    """Contextual bandit, reward -||a - o||^2: mean squared miss (negated) before and after 16 REINFORCE updates."""
    torch.manual_seed(seed)
    policy = build_policy("mlp", {"head": "gaussian", "hidden": (64, 64), "obs_keys": ("state",)}, 2, 2)
    policy.fit_normalizers(Transitions(torch.rand(1000, 2) * 2 - 1, torch.randn(1000, 2), torch.zeros(1000),
                                       ("state",), torch.zeros(1000)))
    opt = torch.optim.Adam(policy.parameters(), lr=1e-4)
    gen = torch.Generator().manual_seed(seed)
    test_obs = torch.rand(1000, 2, generator=gen) * 2 - 1

    def score() -> float:
        with torch.no_grad():
            mean = policy.unnormalize_actions(policy.action_distribution(test_obs).mean)
        return -((mean - test_obs) ** 2).sum(-1).mean().item()

    before = score()
    for _ in range(16):
        obs = torch.rand(2048, 2, generator=gen) * 2 - 1
        with torch.no_grad():
            dist = exploration_distribution(policy, obs, 0.1)
            actions = dist.mean + dist.stddev * torch.randn(dist.mean.shape, generator=gen)
        r = -((policy.unnormalize_actions(actions) - obs) ** 2).sum(-1)
        reinforce_update(policy, opt, obs, actions, (r - r.mean()) / r.std(), 64, gen, 1.0, 0.1)
    return before, score()


def test_reinforce_improves_a_toy_task():
    """REINFORCE must move the mean action onto the context."""
    before, after = reinforce_toy(0)
    # Seeds 0-4: before -0.79 to -0.56, after -0.007 to -0.002.
    assert before < -0.3 and after > -0.15  # mean squared miss at least halved


class _GuardedInfo(dict):
    """An info dict whose simulator success must not be read while the guard is up."""

    guard = False

    def __getitem__(self, key):
        if key == "success" and _GuardedInfo.guard:
            raise AssertionError("practice read the simulator's success")
        return super().__getitem__(key)

    def get(self, key, default=None):
        if key == "success" and _GuardedInfo.guard:
            raise AssertionError("practice read the simulator's success")
        return super().get(key, default)


def _small_cfg(data, **kw) -> StepsToGoConfig:
    base = dict(data=str(data), demos=20, head=StepsToGoHeadConfig(bins=20, max_steps=60.0),
                policy_config={"head": "gaussian", "hidden": (64, 64)}, sft=TrainConfig(steps=300, log_every=50),
                calibrate_episodes=8, robots=4, iterations=2, steps_per_iteration=200, eval_episodes=4, workers=1,
                lr=1e-5)
    base.update(kw)
    return StepsToGoConfig(**base)


def test_config_refuses_a_policy_without_log_probabilities():
    with pytest.raises(ValueError, match="head must be 'gaussian'"):
        StepsToGoConfig(policy_config={"head": "deterministic"})
    with pytest.raises(ValueError, match="baseline must be one of"):
        StepsToGoConfig(baseline="critic")


def test_practice_never_reads_simulator_success(point_demos, tmp_path, monkeypatch):
    from automimic.algos import steps_to_go

    step = PointReachEnv.step

    def guarded_step(self, action):
        obs, r, term, trunc, info = step(self, action)
        return obs, r, term, trunc, _GuardedInfo(info)

    original = steps_to_go.practice_rollouts

    def guarded_rollouts(*args, **kwargs):
        _GuardedInfo.guard = True
        try:
            return original(*args, **kwargs)
        finally:
            _GuardedInfo.guard = False

    monkeypatch.setattr(PointReachEnv, "step", guarded_step)
    monkeypatch.setattr(steps_to_go, "practice_rollouts", guarded_rollouts)
    # The guard itself works: reading success while it is up raises.
    _GuardedInfo.guard = True
    with pytest.raises(AssertionError):
        _GuardedInfo({"success": True})["success"]
    _GuardedInfo.guard = False
    results = run_steps_to_go(_small_cfg(point_demos), tmp_path / "run", progress=False)
    assert [r.iteration for r in results] == [0, 1, 2]
    assert all(r.env_steps >= 200 * r.iteration for r in results) and results[-1].success is not None
    assert "practice reads no simulator success" in (tmp_path / "run" / "log.txt").read_text()


def test_resume_continues_where_it_stopped(point_demos, tmp_path, monkeypatch):
    from automimic.algos import steps_to_go

    full = run_steps_to_go(_small_cfg(point_demos, iterations=3, eval_every=3), tmp_path / "full", progress=False)
    calls = {"n": 0}
    update = steps_to_go.reinforce_update

    def dies_on_second(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # stands in for a kill mid-iteration
        return update(*args, **kwargs)

    monkeypatch.setattr(steps_to_go, "reinforce_update", dies_on_second)
    with pytest.raises(KeyboardInterrupt):
        run_steps_to_go(_small_cfg(point_demos, iterations=3, eval_every=3), tmp_path / "cut", progress=False)
    lines = (tmp_path / "cut" / "iterations.jsonl").read_text().splitlines()
    assert [json.loads(x)["iteration"] for x in lines] == [0, 1]
    monkeypatch.setattr(steps_to_go, "reinforce_update", update)
    resumed = run_steps_to_go(_small_cfg(point_demos, iterations=3, eval_every=3), tmp_path / "cut", progress=False)

    def strip(rows):
        return [{k: v for k, v in r.__dict__.items() if k != "seconds"} for r in rows]

    assert strip(resumed) == strip(full)


def test_sft_head_ranks_starts_above_goals_on_unseen_demos(point_demos, tmp_path):
    run_steps_to_go(_small_cfg(point_demos, demos=0, iterations=0, policy_config={"head": "gaussian"},
                               sft=TrainConfig(steps=800, log_every=100)), tmp_path / "run", progress=False)
    policy = load_policy(tmp_path / "run" / "sft" / "checkpoints" / "last.pt")
    from automimic.rollout.collect import collect_demos

    collect_demos("point/reach", 10, tmp_path / "held_out.h5", seed=1, progress=False)  # other run seed: unseen
    reward = LearnedReward(policy, 0.0)
    # The waypoints are hidden, so d mid-detour is a guess; start versus goal is not.
    drops = [d[0] - d[-1] for d in map(reward.episode_steps_to_go, EpisodeStore(tmp_path / "held_out.h5").episodes())]
    assert sum(drop > 5 for drop in drops) >= 8, drops


def test_cli_train_with_head_calibrate_and_improve(point_demos, tmp_path):
    from typer.testing import CliRunner

    from automimic.cli import app

    runner = CliRunner()
    bc = tmp_path / "bc"
    r = runner.invoke(app, ["train", "bc", "--data", str(point_demos), "--out", str(bc), "--set", "train.steps=300",
                            "--set", "steps_to_go=true", "--set", "steps_to_go_head.max_steps=60"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["calibrate", str(bc), "--episodes", "6"])
    assert r.exit_code == 0, r.output
    assert "precision" in r.output and json.loads((bc / "calibration.json").read_text())["successes"] >= 0
    plain = tmp_path / "plain"
    runner.invoke(app, ["train", "bc", "--data", str(point_demos), "--out", str(plain), "--set", "train.steps=10"])
    r = runner.invoke(app, ["calibrate", str(plain), "--episodes", "2"])
    assert r.exit_code == 2 and "steps-to-go head" in r.output
    out = tmp_path / "stg"
    r = runner.invoke(app, ["improve", "steps-to-go", "--data", str(point_demos), "--out", str(out), "--iterations", "1",
                            "--robots", "2", "--set", "sft.steps=200", "--set", "steps_per_iteration=100",
                            "--set", "eval_episodes=3", "--set", "calibrate_episodes=4", "--set", "workers=1"])
    assert r.exit_code == 0, r.output
    assert "practice reads no simulator success" in r.output and "iter 1:" in r.output
    report = (out / "report.md").read_text()
    assert "| 1 |" in report and (out / "success.png").stat().st_size > 0 and (out / "length.png").exists()
    r = runner.invoke(app, ["calibrate", str(out)])
    assert r.exit_code == 2 and "practice has started" in r.output
    r = runner.invoke(app, ["eval", str(out), "--episodes", "3", "--sample"])
    assert r.exit_code == 0 and "(practised)" in r.output, r.output


def value_fit_error(seed: int = 0) -> float:
    """Mean squared error of a fitted value baseline, as a fraction of the returns' variance."""
    from automimic.algos.value_baseline import ValueBaseline

    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    obs = torch.rand(2048, 3, generator=gen) * 4 - 2
    returns = 3.0 * obs[:, 0] - obs[:, 1] ** 2
    value = ValueBaseline(3, epochs=30)
    assert torch.equal(value(obs), torch.zeros(2048))  # unfitted: plain REINFORCE on the first iteration
    value.fit(obs, returns, gen)
    return float(((value(obs) - returns) ** 2).mean() / returns.var())


def test_value_baseline_starts_at_zero_and_fits_returns():
    assert value_fit_error(0) < 0.05  # seeds 0-4: 0.0012-0.0016


def bound_penalty_shrink(seed: int = 0) -> tuple[float, float]:
    """Largest mean action before and after 20 penalty-only updates (weights and data from ``seed``)."""
    torch.manual_seed(seed)  # the test's own stream: the global one depends on which tests ran before
    policy = _policy(head=None, obs_dim=2)
    policy.fit_normalizers(Transitions(torch.randn(64, 2), torch.randn(64, 2), torch.zeros(64), ("state",),
                                       torch.zeros(64)))
    with torch.no_grad():
        policy.head.bias[:2] += 20.0  # mean actions far past the [-1, 1] box
    obs = torch.randn(256, 2)
    opt = torch.optim.Adam(policy.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(seed)

    def worst() -> float:
        with torch.no_grad():
            return policy.unnormalize_actions(policy.action_distribution(obs).mean).abs().max().item()

    before = worst()
    bounds = (np.full(2, -1.0, np.float32), np.ones(2, np.float32))
    for _ in range(20):  # zero returns: only the penalty acts
        reinforce_update(policy, opt, obs, torch.zeros(256, 2), torch.zeros(256), 64, gen, bounds=bounds,
                         bound_weight=1.0)
    return before, worst()


def test_bound_penalty_pulls_a_runaway_mean_back_inside_the_action_box():
    before, after = bound_penalty_shrink(0)
    assert before > 10 and after < 0.5 * before  # seeds 0-4: before 19.6-23.0, after/before 0.11-0.18


def test_episode_budget_caps_practice_and_ends_with_an_evaluation(point_demos, tmp_path):
    results = run_steps_to_go(_small_cfg(point_demos, iterations=10, eval_every=10, episode_budget=6),
                              tmp_path / "run", progress=False)
    assert sum(r.episodes for r in results) == 6
    assert results[-1].iteration < 10 and results[-1].success is not None


def test_config_needs_an_exploration_floor_for_policies_without_a_learned_std():
    with pytest.raises(ValueError, match="min_std must be > 0 for policy 'act'"):
        StepsToGoConfig(policy="act", policy_config={}, min_std=0.0)
    with pytest.raises(ValueError, match="image policies are not supported"):
        StepsToGoConfig(policy="act", policy_config={"image_keys": ["top_image"]})


@pytest.mark.slow
def test_chunked_policies_practise_on_histories_and_keep_replanning(point_demos, tmp_path, monkeypatch, chunked):
    from automimic.algos import steps_to_go

    name, config = chunked
    seen = {}
    update = steps_to_go.reinforce_update

    def spy(policy, opt, obs, actions, *args, **kwargs):
        seen["obs"], seen["actions"] = obs.shape, actions.shape
        before = {k: v.clone() for k, v in policy.state_dict().items()}
        loss = update(policy, opt, obs, actions, *args, **kwargs)
        seen["moved"] = any(not torch.equal(before[k], v) for k, v in policy.state_dict().items())
        return loss

    monkeypatch.setattr(steps_to_go, "reinforce_update", spy)
    results = run_steps_to_go(_small_cfg(point_demos, policy=name, policy_config=config, iterations=1),
                              tmp_path / "run", progress=False)
    assert [r.iteration for r in results] == [0, 1] and results[-1].success is not None
    # Histories (N, 2, 6) in; actions (2) plus, for diffusion, the DDIM starting noise (chunk 4 x 2) kept.
    latent = 8 if name == "diffusion" else 0
    assert len(seen["obs"]) == 3 and seen["obs"][1:] == (2, 6) and seen["actions"][1:] == (2 + latent,)
    assert seen["moved"]
    practised = load_practised_policy(tmp_path / "run")
    assert practised.name == name and practised.execution[:2] == ("chunk", 1)


def test_diffusion_action_distribution_is_differentiable_and_matches_its_sample():
    from conftest import CHUNKED_CONFIGS

    policy = build_policy("diffusion", {"obs_keys": ["state"], **CHUNKED_CONFIGS["diffusion"]}, 3, 2)
    data = Transitions.from_episodes([_episode([5.0, 4.0, 3.0, 2.0, 1.0], True)])
    policy.fit_normalizers(data)
    policy.practice_execution()
    obs = torch.randn(5, 2, 3)
    latent = policy.practice_latent([torch.Generator().manual_seed(i) for i in range(5)])
    dist = policy.action_distribution(obs, latent)
    assert dist.mean.shape == (5, 2)
    # The same starting noise gives the same action again (what lets the update re-score a sample);
    # other noise gives another action.
    torch.testing.assert_close(policy.action_distribution(obs, latent).mean, dist.mean)
    other = policy.practice_latent([torch.Generator().manual_seed(10 + i) for i in range(5)])
    assert not torch.allclose(policy.action_distribution(obs, other).mean, dist.mean)
    dist.log_prob(torch.zeros(5, 2)).sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in policy.model.denoiser.parameters())


@pytest.mark.slow
def test_same_practice_in_process_in_local_workers_and_on_ray(point_demos, tmp_path):
    from conftest import ray_backend

    def run(name: str, workers: int):
        cfg = _small_cfg(point_demos, workers=workers, iterations=2, eval_every=2)
        rows = run_steps_to_go(cfg, tmp_path / name, progress=False)
        weights = load_practised_policy(tmp_path / name).state_dict()
        return [(r.episodes, r.env_steps, r.learned_success, r.mean_return, r.success) for r in rows], weights

    here, local = run("here", 1), run("local", 2)
    with ray_backend():
        on_ray = run("ray", 2)
    for rows, weights in (local, on_ray):
        assert rows == here[0]
        assert all(torch.equal(weights[k], v) for k, v in here[1].items())
    assert here[0][-1][0] > 0  # practice really ran


def test_ppo_update_option_practises_with_the_shared_ppo_core(point_demos, tmp_path, monkeypatch):
    from automimic.algos import ppo, steps_to_go
    from automimic.algos.ppo import PPOConfig

    calls = []
    update = steps_to_go.ppo_update

    def spy(*args, **kwargs):
        stats = update(*args, **kwargs)
        calls.append(stats)
        return stats

    monkeypatch.setattr(steps_to_go, "ppo_update", spy)
    cfg = _small_cfg(point_demos, update="ppo", ppo=PPOConfig(epochs=2), iterations=1)
    results = run_steps_to_go(cfg, tmp_path / "run", progress=False)
    assert [r.iteration for r in results] == [0, 1] and results[-1].success is not None
    assert len(calls) == 1 and calls[0].epochs >= 1 and np.isfinite(calls[0].approx_kl)
    assert steps_to_go.ppo_update is spy and ppo.ppo_update is update  # one implementation, not a copy
    with pytest.raises(ValueError, match="update=ppo needs baseline=value"):
        _small_cfg(point_demos, update="ppo", baseline="none")


@pytest.mark.parametrize("update", ["reinforce", "ppo"])
def test_demo_anchor_keeps_practice_near_the_demos(update, point_demos, tmp_path):
    # A learning rate high enough that practice drifts from the demos within two iterations
    # (demo NLL 3.4 with REINFORCE, 36 with PPO, measured); the same run with the imitation loss on
    # demo minibatches stays near the SFT policy's (2.5-2.6).
    demo_loss = {}
    for weight in (0.0, 10.0):
        cfg = _small_cfg(point_demos, lr=1e-2, anchor_weight=weight, update=update, eval_every=10)
        run_steps_to_go(cfg, tmp_path / f"{update}{weight}", progress=False)
        policy = load_practised_policy(tmp_path / f"{update}{weight}")
        demos = [e for e in EpisodeStore(point_demos).episodes() if e.success][:20]
        data = Transitions.from_episodes(demos, policy.obs_keys)
        with torch.no_grad():
            demo_loss[weight] = float(policy.loss(data.batch(torch.arange(len(data)), 0, 0))["loss"])
    assert demo_loss[10.0] < demo_loss[0.0], demo_loss
    with pytest.raises(ValueError, match="anchor_weight must be >= 0"):
        _small_cfg(point_demos, anchor_weight=-1)
