"""Training windows (history padding, chunk masks) and the rollout engine for chunked policies."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from automimic.data.episode import Episode
from automimic.data.transitions import Transitions
from automimic.rollout.chunking import ChunkRunner, ensemble_weights


def _episode(length: int, offset: float, image: bool = False) -> Episode:
    t = np.arange(length, dtype=np.float32)
    obs = {"state": np.stack([t + offset, -t], axis=1)}
    if image:
        obs["cam"] = np.broadcast_to((t + offset).astype(np.uint8)[:, None, None, None], (length, 4, 4, 3)).copy()
    return Episode(obs=obs, actions=np.stack([t + offset + 0.5] * 2, axis=1), rewards=np.zeros(length, np.float32),
                   success=True)


def test_windows_pad_history_at_the_start_and_mask_chunks_past_the_end():
    data = Transitions.from_episodes([_episode(3, 0.0, image=True), _episode(4, 100.0, image=True)],
                                     image_keys=["cam"])
    # Rows 0-2 are episode 0 (t = 0, 1, 2); rows 3-6 are episode 1 (t = 100..103).
    batch = data.batch(torch.tensor([0, 2, 3, 6]), history=3, chunk=3)
    np.testing.assert_array_equal(batch["obs"][..., 0].numpy(),
                                  [[0, 0, 0], [0, 1, 2], [100, 100, 100], [101, 102, 103]])
    np.testing.assert_array_equal(batch["obs_pad"].numpy(),
                                  [[1, 1, 0], [0, 0, 0], [1, 1, 0], [0, 0, 0]])
    np.testing.assert_array_equal(batch["actions"][..., 0].numpy(),
                                  [[0.5, 1.5, 2.5], [2.5, 2.5, 2.5], [100.5, 101.5, 102.5], [103.5] * 3])
    np.testing.assert_array_equal(batch["action_mask"].numpy(),
                                  [[1, 1, 1], [1, 0, 0], [1, 1, 1], [1, 0, 0]])
    assert batch["images"]["cam"].shape == (4, 3, 4, 4, 3)
    np.testing.assert_array_equal(batch["images"]["cam"][:, :, 0, 0, 0].numpy(), batch["obs"][..., 0].numpy())
    flat = data.batch(torch.tensor([1, 5]))
    assert flat["obs"].shape == (2, 2) and flat["actions"].shape == (2, 2) and flat["images"]["cam"].shape == (2, 4, 4, 3)


def test_missing_image_key_is_named():
    with pytest.raises(KeyError, match="image key 'wrist'"):
        Transitions.from_episodes([_episode(3, 0.0)], image_keys=["wrist"])


def test_ensemble_weights_match_the_act_formula():
    k = 0.3
    w = ensemble_weights(4, k)
    expected = np.exp(-k * np.arange(4)) / np.exp(-k * np.arange(4)).sum()
    np.testing.assert_allclose(w, expected)
    assert w[0] > w[-1]  # the oldest prediction weighs most
    np.testing.assert_allclose(ensemble_weights(3, 0.0), [1 / 3] * 3)


class _Recorder:
    """A chunked 'policy' whose chunk from query time t0 holds 100 * t0 + (step it is meant for)."""

    def __init__(self, history: int, chunk: int, mode: str, steps: int, k: float = 0.0) -> None:
        self.history, self.chunk = history, chunk
        self.execution = (mode, steps, k)
        self.seen: list[np.ndarray] = []
        self.image_keys = ()

    def predict_chunk(self, obs, images=None, deterministic=True, generators=None):
        self.seen.append(obs.copy())
        t0 = obs[:, -1, 0]  # the observation is the step index
        return np.stack([100 * t0 + t0 + j for j in range(self.chunk)], axis=1)[..., None].astype(np.float32)


def test_temporal_ensembling_blends_every_chunk_covering_the_step():
    k = 0.5
    policy = _Recorder(history=2, chunk=3, mode="ensemble", steps=1, k=k)
    runner = ChunkRunner(policy)
    got = [runner.act(np.array([[t]], np.float32))[0, 0] for t in range(5)]
    for t in range(5):
        sources = list(range(max(0, t - 2), t + 1))  # query times whose chunk covers step t, oldest first
        values = np.array([100 * t0 + t for t0 in sources])
        assert got[t] == pytest.approx(ensemble_weights(len(values), k) @ values, rel=1e-6)
    # The history is padded with the first observation, then slides.
    np.testing.assert_array_equal(policy.seen[0][0, :, 0], [0, 0])
    np.testing.assert_array_equal(policy.seen[3][0, :, 0], [2, 3])


def test_chunk_execution_runs_steps_actions_then_replans_per_slot():
    policy = _Recorder(history=1, chunk=4, mode="chunk", steps=3)
    runner = ChunkRunner(policy, slots=2)
    out = [runner.act(np.array([[t], [t]], np.float32))[:, 0] for t in range(7)]
    # Queries at t = 0, 3, 6; each executes its first 3 actions.
    np.testing.assert_array_equal([o[0] for o in out], [0, 1, 2, 303, 304, 305, 606])
    assert len(policy.seen) == 3 and policy.seen[0].shape == (2, 1, 1)  # one batched call for both slots
    runner.reset(1)
    runner.act(np.array([[50.0]], np.float32), slots=[1])  # slot 1 starts a new episode alone
    # The call is padded to the runner's two slots, so a row never sees a different batch size.
    assert policy.seen[-1].shape == (2, 1, 1) and (policy.seen[-1][:, 0, 0] == 50).all()


def test_single_step_policies_pass_straight_through():
    policy = SimpleNamespace(chunk=0, history=0, execution=("chunk", 1, 0.0),
                             act=lambda obs, deterministic=True, generators=None: obs * 2)
    runner = ChunkRunner(policy, slots=3)
    np.testing.assert_array_equal(runner.act(np.ones((3, 2), np.float32)), np.full((3, 2), 2.0))
