"""ACT: shapes, masking, every decoder layer used, checkpoint round trip, learning point/reach."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from automimic.algos.bc import fit_policy
from automimic.data.store import EpisodeStore
from automimic.data.transitions import Transitions
from automimic.evaluation.evaluate import evaluate
from automimic.policies import ACTConfig, build_policy, load_policy, save_policy
from automimic.training.loop import TrainConfig

SMALL = {"obs_keys": ["state"], "chunk": 5, "history": 2, "d_model": 32, "heads": 2, "ff_dim": 64,
         "enc_layers": 1, "dec_layers": 3, "latent_dim": 4, "dropout": 0.0}


def _setup(point_demos):
    data = Transitions.from_episodes(EpisodeStore(point_demos).episodes()[:5])
    policy = build_policy("act", SMALL, data.obs.shape[1], data.actions.shape[1])
    policy.fit_normalizers(data)
    return policy, data


def test_shapes_loss_terms_and_padding_mask(point_demos):
    torch.manual_seed(0)
    policy, data = _setup(point_demos)
    batch = data.batch(torch.arange(8), policy.history, policy.chunk)
    losses = policy.loss(batch)
    assert set(losses) == {"loss", "l1", "kl"} and losses["loss"].ndim == 0
    assert policy.predict_chunk(batch["obs"].numpy()).shape == (8, 5, 2)
    # Padded chunk slots do not count: changing their targets leaves the loss unchanged.
    end = data.batch(torch.tensor([int(data.last[0])]), policy.history, policy.chunk)
    assert end["action_mask"].sum() == 1
    changed = {**end, "actions": end["actions"].clone()}
    changed["actions"][:, 1:] += 5.0
    policy.eval()  # no dropout; the CVAE draw is seeded below
    torch.manual_seed(1)
    a = policy.loss(end)["l1"]
    torch.manual_seed(1)
    b = policy.loss(changed)["l1"]
    assert a.item() == pytest.approx(b.item(), rel=1e-5)


def test_every_decoder_layer_shapes_the_output(point_demos):
    policy, data = _setup(point_demos)
    policy.eval()
    obs = data.batch(torch.arange(4), policy.history, policy.chunk)["obs"].numpy()
    before = policy.predict_chunk(obs)
    with torch.no_grad():
        # A random change (a constant one would be a per-token shift the final LayerNorm removes).
        layer = policy.decoder.layers[-1].linear2  # the last of three layers
        layer.weight.add_(torch.randn(layer.weight.shape, generator=torch.Generator().manual_seed(0)))
    assert not np.allclose(before, policy.predict_chunk(obs))


def test_sampling_draws_z_from_the_prior_and_checkpoint_round_trips(point_demos, tmp_path):
    policy, data = _setup(point_demos)
    policy.eval()
    obs = data.batch(torch.arange(3), policy.history, policy.chunk)["obs"].numpy()
    np.testing.assert_array_equal(policy.predict_chunk(obs), policy.predict_chunk(obs))
    assert not np.allclose(policy.predict_chunk(obs, deterministic=False), policy.predict_chunk(obs))
    save_policy(policy, tmp_path / "act.pt")
    loaded = load_policy(tmp_path / "act.pt")
    assert loaded.config == policy.config and loaded.execution == ("ensemble", 5, 0.01)
    np.testing.assert_array_equal(loaded.predict_chunk(obs), policy.predict_chunk(obs))


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="act.d_model .* divisible by act.heads"):
        ACTConfig(d_model=30, heads=4)
    with pytest.raises(ValueError, match="act.execution must be"):
        ACTConfig(execution="queue")
    with pytest.raises(ValueError, match="act.execute_steps"):
        ACTConfig(chunk=4, execute_steps=9)
    with pytest.raises(ValueError, match=r"policy_config: unknown field\(s\) \['head'\] for policy 'act'"):
        build_policy("act", {"head": "gaussian"}, 3, 2)


def act_success(point_demos, out, seed: int = 0):
    """Train the small ACT 600 steps from ``seed``; its evaluation over 30 episodes."""
    episodes = EpisodeStore(point_demos).episodes()
    policy = fit_policy(episodes, "point/reach", out, policy="act",
                        policy_config={"chunk": 8, "d_model": 64, "ff_dim": 128, "enc_layers": 1, "dec_layers": 1},
                        train=TrainConfig(steps=600, batch_size=64), seed=seed, progress=False)
    return evaluate(policy, "point/reach", 30, progress=False)


@pytest.mark.slow
def test_act_learns_point_reach_with_temporal_ensembling(point_demos, tmp_path):
    # Seeds 0-4 (600 steps, ~16 s on one core): success 0.87-1.00 over 30 episodes, mean length 23-66
    # steps. The old bound 0.8 was two episodes under the lowest seed. Success alone proves little here:
    # random actions reach the goal 0.48-0.72 of the time, in 121-160 steps on average
    # (benchmarks/test_margins.py); the length shows the policy heads for the goal.
    result = act_success(point_demos, tmp_path / "run")
    assert result.success_rate >= 0.7 and result.mean_length < 100, result.line()
