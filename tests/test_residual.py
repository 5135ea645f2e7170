"""Residual policy: zero residual = the frozen policy, bounded correction, ships to workers, trains by RL."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from automimic.data.store import EpisodeStore
from automimic.data.transitions import Transitions
from automimic.envs import make_env
from automimic.policies import ResidualPolicy, build_policy, policy_from_payload, policy_payload
from automimic.rollout.actors import PolicyActor
from automimic.rollout.episode_runner import run_episode


def _base(point_demos, name: str):
    data = Transitions.from_episodes(EpisodeStore(point_demos).episodes()[:10], ["state"])
    torch.manual_seed(0)
    config = {"obs_keys": ["state"]} if name == "mlp" else {"obs_keys": ["state"], "chunk": 4, "d_model": 32,
                                                             "heads": 2, "ff_dim": 64, "enc_layers": 1,
                                                             "dec_layers": 1, "execution": "chunk",
                                                             "execute_steps": 1}
    base = build_policy(name, config, 6, 2)
    base.fit_normalizers(data)
    return base.eval(), data


@pytest.mark.parametrize("name", ["mlp", "act"])
def test_zero_residual_reproduces_the_frozen_policy_exactly(point_demos, name):
    base, data = _base(point_demos, name)
    residual = ResidualPolicy.from_base(base, data, scale=0.2)
    env = make_env("point/reach", horizon=40)
    a = run_episode(env, PolicyActor(base), 3)
    b = run_episode(env, PolicyActor(residual), 3)
    np.testing.assert_array_equal(a.actions, b.actions)
    np.testing.assert_array_equal(a.obs["state"], b.obs["state"])


def test_correction_is_bounded_frozen_base_and_checkpoint_roundtrip(point_demos):
    base, data = _base(point_demos, "mlp")
    residual = ResidualPolicy.from_base(base, data, scale=0.1)
    obs = data.obs[:32]
    with torch.no_grad():
        residual.residual[-1].bias.fill_(100.0)  # a runaway residual still moves actions by at most scale
    delta = residual.act(obs.numpy()) - base.act(obs.numpy())
    assert np.all(delta <= 0.1 + 1e-6) and np.all(delta > 0.09)
    # RL moves only the residual: the log-probability's gradient never reaches the frozen base.
    actions = residual.action_distribution(obs).sample()
    residual.action_distribution(obs).log_prob(actions).sum().backward()
    assert all(p.grad is None for p in residual.base.parameters())
    assert residual.residual[0].weight.grad is not None and residual.log_std.grad is not None
    # The payload rebuilds base and residual anywhere (what workers receive).
    again = policy_from_payload(policy_payload(residual))
    np.testing.assert_array_equal(again.act(obs.numpy()), residual.act(obs.numpy()))
    with pytest.raises(ValueError, match="scale must be > 0"):
        build_policy("residual", {"base_config": {"obs_keys": ["state"]}, "scale": 0.0}, 6, 2)


def test_residual_rl_refuses_a_bad_base_config_before_any_work(point_demos, tmp_path):
    from typer.testing import CliRunner

    from automimic.cli import app

    out = tmp_path / "r"
    r = CliRunner().invoke(app, ["train", "residual", "--data", str(point_demos), "--out", str(out),
                                 "--set", "base_config.hiden=[8]"])
    assert r.exit_code == 2 and "unknown field(s) ['hiden'] for policy 'mlp'" in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1 and not out.exists()
