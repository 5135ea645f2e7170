"""The learned reward and success detector of steps-to-go self-improvement (arXiv 2509.15155, stage 2).

A frozen copy of the supervised policy's steps-to-go head gives ``d(o) = E[steps-to-go]``:

* reward ``r_t = d(o_t) - d(o_{t+1})``: progress, a potential-based shaping of "minus steps";
* success ``d(o) <= s``: the detector that ends practice episodes instead of the simulator.
"""

from __future__ import annotations

import copy
import numpy as np
import torch

from automimic.data.episode import Episode
from automimic.data.transitions import flatten_obs
from automimic.policies import Policy


class LearnedReward:
    """Reward and success detector from a frozen steps-to-go model.

    Args:
        model: a policy with a steps-to-go head; it is copied and frozen, so later training of the
            practising policy never moves the reward.
        threshold: ``s`` of the detector ``d(o) <= s`` (pick it with :func:`automimic.algos.calibration.calibrate`).
    """

    def __init__(self, model: Policy, threshold: float) -> None:
        if model.steps_to_go is None:
            raise ValueError("the reward model needs a steps-to-go head (train the SFT policy with one)")
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.threshold = float(threshold)

    @property
    def obs_keys(self) -> tuple[str, ...]:
        """Observation keys the model reads, in order."""
        return self.model.obs_keys

    @torch.no_grad()
    def steps_to_go(self, obs: np.ndarray) -> np.ndarray:
        """``d(o)`` ``(B,)`` for flattened observations ``(B, D_obs)``."""
        return self.model.expected_steps_to_go(torch.as_tensor(obs, dtype=torch.float32)).numpy()

    @staticmethod
    def rewards(d: np.ndarray) -> np.ndarray:
        """Progress rewards ``(T,)`` from ``d`` at the ``T + 1`` states of an episode: ``d_t - d_{t+1}``."""
        d = np.asarray(d, dtype=np.float64)
        return (d[:-1] - d[1:]).astype(np.float32)

    def success(self, d: np.ndarray) -> np.ndarray:
        """The detector: ``d <= s``, elementwise."""
        return np.asarray(d) <= self.threshold

    def episode_steps_to_go(self, episode: Episode) -> np.ndarray:
        """``d`` at every state of ``episode``: its ``T`` observations and the final one, ``(T + 1,)``."""
        states = flatten_obs(episode.obs, self.obs_keys)
        final = flatten_obs({k: v[None] for k, v in episode.final_obs.items()}, self.obs_keys)
        return self.steps_to_go(np.concatenate([states, final]))
