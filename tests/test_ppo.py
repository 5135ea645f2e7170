"""PPO core: GAE against a hand computation, the clipped update on a small control task."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from automimic.algos.ppo import PPOConfig, gae, log_probs, ppo_update
from automimic.algos.value_baseline import ValueBaseline
from automimic.data.episode import Episode
from automimic.data.transitions import Transitions
from automimic.policies import build_policy


def test_gae_matches_a_hand_computed_case():
    r, v = np.array([1.0, 0.0, 2.0]), np.array([0.5, 1.0, 1.5])
    gamma, lam = 0.9, 0.8
    # Cut episode: bootstrap from V(s_3) = 2.
    d = [1 + 0.9 * 1.0 - 0.5, 0 + 0.9 * 1.5 - 1.0, 2 + 0.9 * 2.0 - 1.5]  # 1.4, 0.35, 2.3
    a2 = d[2]
    a1 = d[1] + gamma * lam * a2
    a0 = d[0] + gamma * lam * a1
    adv, ret = gae(r, v, 2.0, gamma, lam, terminal=False)
    np.testing.assert_allclose(adv, [a0, a1, a2], rtol=1e-6)
    np.testing.assert_allclose(ret, np.array([a0, a1, a2]) + v, rtol=1e-6)
    # A true end earns nothing after the last step: the bootstrap value is ignored.
    adv_end, _ = gae(r, v, 2.0, gamma, lam, terminal=True)
    assert adv_end[2] == pytest.approx(2.0 - 1.5)
    # lambda = 1 gives the discounted return minus V; lambda = 0 the one-step TD error.
    adv1, _ = gae(r, v, 0.0, gamma, 1.0, terminal=True)
    np.testing.assert_allclose(adv1, [1 + 0.81 * 2 - 0.5, 0.9 * 2 - 1.0, 2 - 1.5], rtol=1e-6)
    adv0, _ = gae(r, v, 2.0, gamma, 0.0, terminal=False)
    np.testing.assert_allclose(adv0, d, rtol=1e-6)


def _toy_policy(seed: int = 0) -> torch.nn.Module:
    rng = np.random.default_rng(0)
    episode = Episode(obs={"state": rng.uniform(-1, 1, (256, 1)).astype(np.float32)},
                      actions=rng.uniform(-1, 1, (256, 1)).astype(np.float32), rewards=np.zeros(256, np.float32),
                      success=True)
    torch.manual_seed(seed)
    policy = build_policy("mlp", {"obs_keys": ["state"], "head": "gaussian", "hidden": [32, 32]}, 1, 1)
    policy.fit_normalizers(Transitions.from_episodes([episode]))
    return policy.eval()


def _rollout(policy, value, rng, gen, robots=64, horizon=10, sample=True):
    """A 1-D reach: x' = x + 0.2 a (a clipped to [-1, 1]), reward -|x'|, episodes cut at the horizon."""
    x = rng.uniform(-1, 1, robots).astype(np.float32)
    obs, acts, rews, vals = [], [], [], []
    for _ in range(horizon):
        o = torch.as_tensor(x[:, None])
        with torch.no_grad():
            from automimic.algos.steps_to_go import exploration_distribution

            dist = exploration_distribution(policy, o, 0.05)
            a = dist.mean + (dist.stddev * torch.randn(dist.mean.shape, generator=gen) if sample else 0)
        env_a = np.clip(policy.unnormalize_actions(a).numpy()[:, 0], -1, 1)
        x = x + 0.2 * env_a
        obs.append(o), acts.append(a), rews.append(-np.abs(x)), vals.append(value(o).numpy())
    last = value(torch.as_tensor(x[:, None])).numpy()
    return obs, acts, np.stack(rews), np.stack(vals), last, np.abs(x)


def train_on_the_toy_task(seed: int) -> tuple[float, float, list[float]]:
    """30 PPO iterations on the 1-D reach from seed ``seed``: (distance before, after, KL per iteration)."""
    policy, value = _toy_policy(seed), ValueBaseline(1)
    opt = torch.optim.Adam(policy.parameters(), lr=3e-3)
    rng, gen = np.random.default_rng(1 + seed), torch.Generator().manual_seed(1 + seed)
    cfg, gamma = PPOConfig(epochs=5), 0.9
    before = _rollout(policy, value, np.random.default_rng(99), gen, sample=False)[-1].mean()
    kls = []
    for _ in range(30):
        obs, acts, rews, vals, last, _ = _rollout(policy, value, rng, gen)
        advs, rets = zip(*(gae(rews[:, i], vals[:, i], last[i], gamma, cfg.gae_lambda, terminal=False)
                           for i in range(rews.shape[1])))
        o = torch.cat(obs)  # (T * robots, 1), step-major
        adv = torch.as_tensor(np.stack(advs, axis=1).reshape(-1))
        ret = torch.as_tensor(np.stack(rets, axis=1).reshape(-1))
        stats = ppo_update(policy, opt, o, torch.cat(acts), adv, cfg, gen, min_std=0.05)
        value.fit(o, ret, gen)
        kls.append(stats.approx_kl)
    after = _rollout(policy, value, np.random.default_rng(99), gen, sample=False)[-1].mean()
    return float(before), float(after), kls


#: Measured over seeds 0-9 (``train_on_the_toy_task``): distance before 0.36-0.50, after 0.0001-0.042;
#: the median KL per run 0.049-0.089, the largest KL per run 0.16-2.5 (heavy-tailed: seed 0 0.21,
#: seed 2 2.5; the issue's CPU gave 0.576 at seed 0). The bounds sit at least 2x outside that spread.
MEDIAN_KL_BOUND = 0.2
MAX_KL_BOUND = 10.0


def test_ppo_solves_a_small_control_task():
    before, after, kls = train_on_the_toy_task(0)
    # From starts in [-1, 1], five full steps reach 0; an untrained policy ends ~0.4 away. Learning
    # the task is what this test is about.
    assert before > 0.2 and after < 0.1, (before, after)
    # The KL is a symptom, not the goal. A typical update stops near target_kl (0.03), but one epoch
    # at this learning rate can overshoot before the per-epoch check fires, and by how much is a matter
    # of float bits (one CPU's largest was 0.576, another's 0.21, same seed). So the median bounds the
    # typical update, and the largest is bounded only against a runaway.
    assert all(np.isfinite(kls)), kls
    assert np.median(kls) < MEDIAN_KL_BOUND and max(kls) < MAX_KL_BOUND, kls


def test_ratio_starts_at_one_and_clipping_limits_the_step():
    policy = _toy_policy()
    obs = torch.rand(128, 1) * 2 - 1
    with torch.no_grad():
        acts = policy.action_distribution(obs).sample()
    old, _ = log_probs(policy, obs, acts)
    # Huge advantages with a huge learning rate: the clipped objective stops pushing once the
    # ratio leaves [1 - eps, 1 + eps], so the clip fraction is reported and the KL stop fires.
    opt = torch.optim.SGD(policy.parameters(), lr=1.0)
    stats = ppo_update(policy, opt, obs, acts, torch.ones(128) * 100, PPOConfig(epochs=10, target_kl=0.01,
                                                                               normalize_advantages=False),
                       torch.Generator().manual_seed(0))
    assert stats.epochs < 10 and stats.approx_kl > 0.01 and stats.clip_fraction > 0
    new, _ = log_probs(policy, obs, acts)
    assert not torch.allclose(new, old)


def test_the_minibatch_kl_check_stops_inside_the_first_epoch():
    torch.manual_seed(0)
    obs = torch.rand(512, 1) * 2 - 1
    stats = {}
    for check in ("epoch", "minibatch"):
        policy = _toy_policy()
        with torch.no_grad():
            acts = policy.action_distribution(obs).sample()
        opt = torch.optim.SGD(policy.parameters(), lr=0.2)
        cfg = PPOConfig(epochs=10, minibatch=32, target_kl=0.01, kl_check=check, normalize_advantages=False)
        stats[check] = ppo_update(policy, opt, obs, acts, torch.ones(512) * 10, cfg, torch.Generator().manual_seed(0))
    # Checked per epoch, all 16 steps of the first epoch run before the check; checked per
    # minibatch, the update stops at the first minibatch past 1.5 x target_kl, inside that epoch.
    assert stats["epoch"].updates >= 16 and stats["minibatch"].updates < 16, stats
    assert stats["minibatch"].epochs == 1 and stats["minibatch"].updates > 0
    with pytest.raises(ValueError, match="kl_check must be one of"):
        PPOConfig(kl_check="never")
