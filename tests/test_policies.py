"""MLP policy, normalisation inside checkpoints, registry."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from automimic.data.transitions import Transitions
from automimic.policies import MLPConfig, build_policy, load_policy, policy_names, save_policy


def toy_data(n: int = 256) -> Transitions:
    g = torch.Generator().manual_seed(0)
    obs = torch.randn(n, 5, generator=g) * 10 + 3
    actions = torch.tanh(obs[:, :2] / 10)
    return Transitions(obs, actions, torch.zeros(n, dtype=torch.long), ("state",), torch.full((n,), -1.0))


@pytest.mark.parametrize("head", ["deterministic", "gaussian"])
def test_mlp_shapes_and_losses(head):
    data = toy_data()
    policy = build_policy("mlp", {"head": head, "obs_keys": ["state"], "hidden": [32, 32]}, 5, 2)
    policy.fit_normalizers(data)
    losses = policy.loss({"obs": data.obs[:8], "actions": data.actions[:8]})
    assert losses["loss"].ndim == 0 and torch.isfinite(losses["loss"])
    assert policy.act(data.obs[:8].numpy()).shape == (8, 2)
    if head == "gaussian":
        assert set(losses) == {"loss", "mse", "nll"}
        assert policy.log_prob(data.obs[:4], data.actions[:4]).shape == (4,)
        # Sampling differs from the mean; the mean is deterministic.
        obs = data.obs[:4].numpy()
        assert not np.allclose(policy.act(obs, deterministic=False), policy.act(obs))
        np.testing.assert_array_equal(policy.act(obs), policy.act(obs))


def test_config_validation_explains_itself():
    with pytest.raises(ValueError, match="head must be 'deterministic' or 'gaussian', got 'beta'"):
        MLPConfig(head="beta")
    with pytest.raises(ValueError, match="unknown policy 'transformer'"):
        build_policy("transformer", {}, 3, 2)
    assert "mlp" in policy_names()


def test_unfitted_normaliser_fails_loudly():
    policy = build_policy("mlp", {"obs_keys": ["state"]}, 5, 2)
    with pytest.raises(RuntimeError, match="normaliser has no statistics"):
        policy.act(np.zeros((1, 5), np.float32))


def test_checkpoint_holds_config_and_normalisation(tmp_path):
    data = toy_data()
    policy = build_policy("mlp", {"obs_keys": ["state"], "hidden": [16], "head": "gaussian"}, 5, 2)
    policy.fit_normalizers(data)
    save_policy(policy, tmp_path / "p.pt")
    loaded = load_policy(tmp_path / "p.pt")
    assert loaded.config == policy.config and loaded.obs_keys == ("state",)
    torch.testing.assert_close(loaded.obs_norm.mean, data.obs.mean(0))
    obs = data.obs[:5].numpy()
    np.testing.assert_array_equal(loaded.act(obs), policy.act(obs))
    # A checkpoint whose normaliser statistics were stripped does not load.
    payload = torch.load(tmp_path / "p.pt", weights_only=False)
    del payload["state_dict"]["obs_norm.mean"]
    torch.save(payload, tmp_path / "broken.pt")
    with pytest.raises(RuntimeError, match="obs_norm.mean"):
        load_policy(tmp_path / "broken.pt")


def test_observation_noise_only_while_training():
    data = toy_data()
    policy = build_policy("mlp", {"obs_keys": ["state"], "hidden": [16], "obs_noise": 0.5}, 5, 2)
    policy.fit_normalizers(data)
    batch = {"obs": data.obs[:32], "actions": data.actions[:32]}
    policy.train()
    assert policy.loss(batch)["loss"] != policy.loss(batch)["loss"]
    policy.eval()
    assert policy.loss(batch)["loss"] == policy.loss(batch)["loss"]
    with pytest.raises(ValueError, match="obs_noise must be >= 0"):
        MLPConfig(obs_noise=-1)
