"""The replay buffer: n-step targets at episode ends, demo share per batch, seeded draws."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from automimic.data.replay import ReplayBuffer


def _buffer() -> ReplayBuffer:
    """A demo episode of 4 steps that ends for good, then a practice episode of 3 steps cut at the horizon."""
    buf = ReplayBuffer(obs_dim=1, action_dim=1, capacity=10)
    obs = np.arange(5, dtype=np.float32)[:, None]
    buf.add(obs[:-1], np.zeros((4, 1)), np.array([0, 0, 0, 1.0]), obs[1:], terminal=True, demo=True)
    obs2 = 10 + np.arange(4, dtype=np.float32)[:, None]
    buf.add(obs2[:-1], np.zeros((3, 1)), np.array([1.0, 2.0, 3.0]), obs2[1:], terminal=False, demo=False)
    return buf


def test_nstep_returns_stop_at_episode_ends_and_only_terminal_ends_drop_the_bootstrap():
    buf = _buffer()
    gamma = 0.5
    b = buf.nstep(torch.arange(7), n_step=3, gamma=gamma)
    # Demo episode: from row 0 three rewards 0, 0, 0 then bootstrap at obs 3; from row 2 two steps reach the terminal.
    assert b.returns[:4].tolist() == [0.0, gamma ** 2, gamma, 1.0]
    assert b.next_obs[:4, 0].tolist() == [3.0, 4.0, 4.0, 4.0]
    assert b.discount[:4].tolist() == [gamma ** 3, 0.0, 0.0, 0.0]
    # Practice episode, cut: the return stops at its last step but the bootstrap stays (gamma ** k).
    assert b.returns[4:].tolist() == [1 + gamma * 2 + gamma ** 2 * 3, 2 + gamma * 3, 3.0]
    assert b.next_obs[4:, 0].tolist() == [13.0, 13.0, 13.0]
    assert b.discount[4:].tolist() == [gamma ** 3, gamma ** 2, gamma]


def test_batches_hold_the_demo_fraction_and_repeat_with_the_seed():
    buf = _buffer()
    draws = [buf.sample(64, torch.Generator().manual_seed(3), 0.25, 2, 0.9) for _ in range(2)]
    assert int(draws[0].demo.sum()) == 16
    assert torch.equal(draws[0].obs, draws[1].obs)
    other = buf.sample(64, torch.Generator().manual_seed(4), 0.25, 2, 0.9)
    assert not torch.equal(draws[0].obs, other.obs)


def test_without_practice_every_row_is_a_demo_and_relabel_changes_returns():
    buf = ReplayBuffer(1, 1, 8)
    buf.add(np.zeros((3, 1)), np.zeros((3, 1)), np.ones(3), np.zeros((3, 1)), terminal=True, demo=True)
    b = buf.sample(32, torch.Generator().manual_seed(0), 0.5, 1, 0.9)
    assert bool(b.demo.all()) and torch.equal(b.returns, torch.ones(32))
    buf.relabel(torch.full((3,), 2.0))
    assert torch.equal(buf.sample(8, torch.Generator().manual_seed(0), 0.5, 1, 0.9).returns, torch.full((8,), 2.0))


def test_capacity_and_empty_episodes_are_refused():
    buf = ReplayBuffer(1, 1, 2)
    with pytest.raises(ValueError, match="at least one step"):
        buf.add(np.zeros((0, 1)), np.zeros((0, 1)), np.zeros(0), np.zeros((0, 1)), True, True)
    with pytest.raises(ValueError, match="capacity"):
        buf.add(np.zeros((3, 1)), np.zeros((3, 1)), np.zeros(3), np.zeros((3, 1)), True, True)
