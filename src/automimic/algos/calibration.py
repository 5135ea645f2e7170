"""Pick the success detector's threshold ``s`` on held-out rollouts and measure how well it detects.

In practice an episode ends the first time ``d(o) <= s``, so that is what is scored: on held-out
rollouts of the supervised policy, judged by the simulator and stopped at its first success, the
detector is *right* on an episode when it first fires at the state the simulator called a success
(the episode's final state) or at most ``tolerance`` steps before it, *wrong* when it fires earlier
or in a failed episode. The tolerance is there because ``d`` resolves steps only to about a bin
width (140 / 50 = 2.8 steps by default): a state one step short of the goal and the goal itself look
alike to it. Precision = right / fired, recall = right / successful episodes; ``s`` is the cut with
the best F1 (ties: the widest gap between neighbouring ``d`` values).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from automimic.algos.learned_reward import LearnedReward
from automimic.policies import Policy
from automimic.rollout.actors import ActorSpec
from automimic.rollout.collector import Collector, run_episodes
from automimic.rollout.workers import RolloutJob
from automimic.seeding import episode_seeds


@dataclass(frozen=True)
class Calibration:
    """A chosen threshold and how the detector does with it on the calibration episodes."""

    threshold: float
    precision: float
    recall: float
    f1: float
    successes: int
    failures: int
    tolerance: int = 0
    env_steps: int = 0  # env steps the calibration rollouts took (they read the simulator's success)

    def line(self) -> str:
        """One-line summary."""
        return (f"detector d(o) <= {self.threshold:.2f}: precision {self.precision:.2f}, recall {self.recall:.2f} "
                f"on {self.successes} successful and {self.failures} failed held-out episodes "
                f"(right = fires at most {self.tolerance} steps before the simulator's success)")

    def save(self, path: str | Path) -> None:
        """Write as JSON."""
        Path(path).write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> "Calibration":
        """Read a calibration written by :meth:`save`."""
        return cls(**json.loads(Path(path).read_text()))


def precision_recall(d_per_episode: Sequence[np.ndarray], success: Sequence[bool], threshold: float,
                     tolerance: int = 0) -> tuple[float, float]:
    """Precision and recall of the first-firing detector ``d <= threshold`` (1.0 where undefined).

    ``d_per_episode[i]`` holds ``d`` at every state of episode ``i``, the final state last; a
    successful episode's final state is its (first) success. Firing up to ``tolerance`` states
    before it still counts as right.
    """
    fired = right = 0
    for d, ok in zip(d_per_episode, success):
        hits = np.flatnonzero(np.asarray(d) <= threshold)
        if len(hits):
            fired += 1
            right += int(bool(ok) and hits[0] >= len(d) - 1 - tolerance)
    positives = int(np.sum(success))
    return (right / fired if fired else 1.0), (right / positives if positives else 1.0)


def choose_threshold(d_per_episode: Sequence[np.ndarray], success: Sequence[bool], tolerance: int = 0) -> float:
    """The cut between sorted ``d`` values with the best detector F1; ties go to the widest gap."""
    if not any(success):
        raise ValueError("calibration needs at least one successful episode")
    values = np.unique(np.concatenate([np.asarray(d, dtype=np.float64) for d in d_per_episode]))
    cuts = [((lo + hi) / 2, hi - lo) for lo, hi in zip(values[:-1], values[1:])]
    cuts.append((values[0] - 1.0, 1.0))  # never fires: the F1 floor
    best, best_key = cuts[-1][0], (-1.0, -1.0)
    for cut, gap in cuts:
        p, r = precision_recall(d_per_episode, success, cut, tolerance)
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        if (f1, gap) > best_key:
            best, best_key = cut, (f1, gap)
    return float(best)


def calibrate_scores(d_per_episode: Sequence[np.ndarray], success: Sequence[bool],
                     tolerance: int = 0) -> Calibration:
    """:class:`Calibration` from per-state ``d`` of each episode and the simulator's verdicts."""
    s = choose_threshold(d_per_episode, success, tolerance)
    p, r = precision_recall(d_per_episode, success, s, tolerance)
    n_success = int(np.sum(success))
    return Calibration(s, p, r, 2 * p * r / (p + r) if p + r else 0.0, n_success, len(success) - n_success,
                       tolerance)


def default_tolerance(model: Policy) -> int:
    """One bin width of the model's steps-to-go head, rounded up: the finest ``d`` can tell states apart."""
    if model.steps_to_go is None:
        raise ValueError("the model has no steps-to-go head")
    cfg = model.steps_to_go.config
    return int(np.ceil(cfg.max_steps / cfg.bins))


def calibrate(model: Policy, env_id: str, episodes: int = 50, *, seed: int = 0, workers: "int | Collector" = 1,
              action_noise: float = 0.0, horizon: int | None = None, tolerance: int | None = None) -> Calibration:
    """Roll the supervised ``model`` out on held-out ``calibrate`` seeds and pick ``s`` on them.

    ``action_noise`` makes some rollouts fail when the policy almost never does, so that the
    threshold has failures to separate from. ``tolerance`` defaults to :func:`default_tolerance`.
    """
    seeds = episode_seeds("calibrate", seed, episodes)
    job = RolloutJob(env_id, ActorSpec.policy(model, name="sft", action_noise=action_noise),
                     {"horizon": horizon} if horizon else {}, source="self")
    rollouts = run_episodes(job, seeds, workers)
    reward = LearnedReward(model, threshold=0.0)
    calib = calibrate_scores([reward.episode_steps_to_go(e) for e in rollouts], [e.success for e in rollouts],
                             default_tolerance(model) if tolerance is None else tolerance)
    return dataclasses.replace(calib, env_steps=int(sum(e.length for e in rollouts)))
