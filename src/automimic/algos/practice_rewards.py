"""The reward sources of off-policy practice: the simulator's (success, env reward) and two that never read it.

:class:`PracticeReward` labels from the simulator's success flag or the env's reward (``reward`` =
``success`` or ``env``, see :func:`label`). The two learned sources (issue 18) follow.

The learned sources never read the simulator's success or reward during practice: practice episodes run with
``RolloutJob(read_success=False, stop_on_success=False)``, so ``episode.success`` is always false,
and neither source reads ``episode.rewards``. Evaluation episodes (eval seeds) still read the
simulator: that is where :func:`reward_diagnostics` measures how well the learned reward tracks
true progress.

* ``steps-to-go`` (:class:`StepsToGoReward`): the BC prior is trained with a steps-to-go head and
  frozen; ``r_t = d(o_t) - d(o_t+1)`` is the replay's ``reward_fn``: every step, demos included,
  carries the label of the head version current when a batch is drawn (a refreshed head relabels
  the whole buffer before the next draw). Practice episodes end when the detector ``d(o) <= s``
  fires. By default that stop is *bootstrapped*, not a terminal: a false terminal (the detector firing short
  of the goal) sets the Q target of the state before it to the bare reward, telling the critic that
  hovering near the goal is worth as much as reaching it, and nothing later corrects it; a
  bootstrapped stop costs only the value the critic already assigns to the state it stopped in.
  ``detector_stop="terminal"`` treats it as the end (what the on-policy steps-to-go path does).
  Measured on four Meta-World tasks from 5 demos, the two end within 0.03 of each other on the
  mean (both far below the start; docs/practice.md), so the argument above, not a measurement,
  keeps ``bootstrap`` the default.
  ``s`` is calibrated as :mod:`automimic.algos.calibration` does, on held-out ``calibrate`` seeds of
  the BC prior, which *do* read the simulator's success; those env steps come out of the practice
  budget (``Calibration.env_steps``, in ``out/calibration.json`` and the report).
* ``ot`` (:class:`~automimic.algos.ot_reward.OTReward`): ROT's transport match to the closest demo,
  per episode; episodes run to the horizon (nothing says they succeeded).

Head refresh (``refresh_every`` > 0, off by default): every ``refresh_every`` cycles the head (not
the trunk) takes ``refresh_steps`` Adam steps on the demos plus the practice episodes the detector
called successful, labelled ``T - t`` as the demos are; no simulator success is read. The replay
relabels every stored step with the refreshed head, demos included, before its next draw; the next
cycle's episodes stop on the refreshed detector; ``s`` is not recalibrated (that would read the
simulator). Off by default: the head then trains on its own detections, so a detector that fires
early teaches itself that early states are goals (confirmation bias). Measured on four Meta-World
tasks it did not help, and on reach it drifted to 0 success (docs/practice.md).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from automimic.algos.calibration import Calibration, calibrate, default_tolerance, precision_recall
from automimic.algos.engine import env_terminals
from automimic.algos.learned_reward import LearnedReward
from automimic.algos.ot_reward import SOLVERS, OTReward
from automimic.algos.practice_report import Column
from automimic.data.episode import Episode
from automimic.data.transitions import flatten_obs, steps_to_go_labels
from automimic.policies import Policy
from automimic.policies.steps_to_go_head import StepsToGoHeadConfig
from automimic.rollout.actors import ActorSpec
from automimic.rollout.collector import Collector
from automimic.rollout.workers import RolloutJob

LEARNED_REWARDS = ("steps-to-go", "ot")
OT_EMBEDDINGS = ("policy", "obs")
DETECTOR_STOPS = ("bootstrap", "terminal")
PRETRAINED_HEADS = ("shared", "detached")


@dataclass
class LearnedRewardConfig:
    """Settings of the learned reward sources of off-policy practice (``reward`` = ``steps-to-go`` or ``ot``).

    Args:
        head: the BC prior's steps-to-go head (``steps-to-go``); detached from the trunk by default,
            so that the prior trained from scratch is plain BC plus a head reading its features (a
            pretrained ``init`` fine-tunes its own head as ``pretrained_head`` says).
        pretrained_head: how the SFT stage fine-tunes a pretrained ``init``'s own steps-to-go head:
            ``shared`` (default; on the trunk, as it was pretrained: the better detector) or
            ``detached`` (on features it cannot move: the better BC prior, as ``train bc --init``).
        threshold: detector threshold ``s``; ``None`` calibrates it on held-out rollouts of the prior.
        calibrate_episodes: those rollouts (their env steps come out of the budget).
        calibrate_noise: action noise on them, so that some fail.
        detector_stop: ``bootstrap`` (default: a detector stop keeps the bootstrap; see the module
            docstring) or ``terminal``.
        ot_solver: ``sinkhorn`` (ROT) or ``emd`` (exact).
        ot_eps: Sinkhorn's entropic regularisation in cost units (costs are cosine distances in [0, 2]).
        ot_scale: factor on the OT rewards (each in ``[-2 * ot_scale, 0]``).
        ot_hold: demos shorter than a practice episode hold their last state (the goal) up to its
            length (default); false matches the demos as recorded, which rewards retracing them
            slowly (see :mod:`automimic.algos.ot_reward`).
        ot_embedding: what the OT cost compares: ``policy`` (default; the frozen BC prior's trunk
            features, ROT's choice of the BC encoder) or ``obs`` (the observation vector). Both are
            standardised by the demos' statistics.
        refresh_every: cycles between refreshes of the steps-to-go head on detector-successful
            practice episodes (0: never, the default; see the module docstring).
        refresh_steps: Adam steps of one refresh (minibatch 256, learning rate ``refresh_lr``).
        refresh_lr: learning rate of the refresh.
    """

    # Detached by default: on one trunk the head's loss cost BC on reach and push (3 seeds each:
    # 0.41 and 0.48 against 0.59 and 0.62; docs/practice.md), and an SFT prior below BC starts behind.
    head: StepsToGoHeadConfig = field(default_factory=lambda: StepsToGoHeadConfig(detach=True))
    pretrained_head: str = "shared"
    threshold: float | None = None
    calibrate_episodes: int = 50
    calibrate_noise: float = 0.3
    detector_stop: str = "bootstrap"
    ot_solver: str = "sinkhorn"
    ot_eps: float = 0.01
    ot_scale: float = 1.0
    ot_hold: bool = True
    ot_embedding: str = "policy"
    refresh_every: int = 0
    refresh_steps: int = 100
    refresh_lr: float = 1e-4

    def __post_init__(self) -> None:
        if self.detector_stop not in DETECTOR_STOPS:
            raise ValueError(f"learned_reward.detector_stop must be one of {DETECTOR_STOPS}, "
                             f"got {self.detector_stop!r}")
        if self.pretrained_head not in PRETRAINED_HEADS:
            raise ValueError(f"learned_reward.pretrained_head must be one of {PRETRAINED_HEADS}, "
                             f"got {self.pretrained_head!r}")
        if self.ot_solver not in SOLVERS:
            raise ValueError(f"learned_reward.ot_solver must be one of {SOLVERS}, got {self.ot_solver!r}")
        if self.ot_embedding not in OT_EMBEDDINGS:
            raise ValueError(f"learned_reward.ot_embedding must be one of {OT_EMBEDDINGS}, got {self.ot_embedding!r}")
        if self.ot_solver == "sinkhorn" and self.ot_eps <= 0:
            raise ValueError(f"learned_reward.ot_eps must be > 0 for Sinkhorn, got {self.ot_eps}")
        if self.ot_scale <= 0 or self.calibrate_episodes < 1 or self.calibrate_noise < 0:
            raise ValueError("learned_reward: ot_scale must be > 0, calibrate_episodes >= 1, calibrate_noise >= 0")
        if self.refresh_every < 0 or self.refresh_steps < 1 or self.refresh_lr <= 0:
            raise ValueError("learned_reward: refresh_every must be >= 0, refresh_steps >= 1, refresh_lr > 0")


def check_learned_reward(reward: str, cfg: LearnedRewardConfig, policy: str, chunked: bool,
                         policy_config: dict[str, Any], budget: int, horizon: int) -> None:
    """Refuse a learned reward that cannot work (before anything is written); no-op for other rewards."""
    if reward not in LEARNED_REWARDS:
        return
    if policy_config.get("image_keys"):
        raise ValueError(f"reward {reward!r} compares state vectors; image policies are not supported")
    if reward == "ot" and cfg.ot_embedding == "policy" and chunked:
        raise ValueError(f"learned_reward.ot_embedding=policy: a chunked policy ({policy}) reads observation histories, "
                         "not the single states the OT reward embeds; use ot_embedding=obs or an unchunked policy (mlp)")
    if reward == "steps-to-go" and chunked:
        raise ValueError(f"reward 'steps-to-go': a chunked policy ({policy}) reads observation histories, but the "
                         "replay holds single observations to score with the head; use an unchunked policy (mlp)")
    if reward == "steps-to-go" and cfg.threshold is None and budget < horizon * (cfg.calibrate_episodes + 1):
        raise ValueError(f"budget {budget}: calibrating the detector may take {cfg.calibrate_episodes} x {horizon} env "
                         "steps of it, leaving less than one episode of practice; raise the budget, lower "
                         "learned_reward.calibrate_episodes or set learned_reward.threshold")


def correlation(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson's r of two equal-length samples (NaN where either is constant or there are < 2)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if len(x) < 2 or x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def reward_diagnostics(rewards: list[np.ndarray], success: list[bool], per_step: bool = False) -> dict[str, float]:
    """How well learned rewards track true progress on evaluation episodes (which may read the simulator).

    Pearson's r, over episodes, between an episode's learned score and ``corr_success``: the
    simulator's success; ``corr_steps``: the episode's steps (to success, or the horizon for a
    failure). The score is the learned return (sum of the episode's rewards), or with ``per_step``
    its mean reward per step. A reward that tracks progress has ``corr_success > 0`` and
    ``corr_steps < 0``. ``per_step`` is for rewards that are all <= 0, such as OT's: evaluation
    episodes stop at success, and their returns would sum fewer non-positive terms for a shorter
    episode whatever it did (measured: OT returns on push-v3 correlated with success at r 0.97 on
    evaluation episodes, while among episodes all run to the horizon success still outscored
    failure only 67% of the time; ``benchmarks/ot_ranking.py``, observations as recorded).
    """
    scores = np.asarray([float(np.mean(r) if per_step else np.sum(r)) for r in rewards])
    return {"corr_success": correlation(scores, np.asarray(success, np.float64)),
            "corr_steps": correlation(scores, np.asarray([len(r) for r in rewards], np.float64))}


def unread_job(job: RolloutJob, actor: ActorSpec | None = None) -> RolloutJob:
    """``job`` without any read of the simulator's success (and with ``actor``, if given)."""
    return dataclasses.replace(job, actor=actor or job.actor, stop_on_success=False, read_success=False)


def label(episode: Episode, cfg: Any) -> tuple[np.ndarray, bool]:
    """The practice reward ``(T,)`` of an episode and whether it ended for good (``cfg``: a ``PracticeConfig``)."""
    t = episode.length
    if cfg.reward == "env":
        return (np.asarray(episode.rewards, dtype=np.float32) * cfg.env_reward_scale,
                bool(episode.attrs.get("terminated", False)))
    success = bool(episode.success)
    if cfg.success_reward == "binary":
        rewards = np.zeros(t, dtype=np.float32)
        rewards[-1] = float(success)
    else:
        rewards = -np.ones(t, dtype=np.float32)
        rewards[-1] = 0.0 if success else -1.0
    return rewards, success


class PracticeReward:
    """The reward source of ``cfg.reward`` (see :func:`label`); nothing to learn."""

    def __init__(self, cfg: Any) -> None:
        self.cfg, self.name = cfg, cfg.reward

    def update(self, episodes: list[Episode], policy: Policy, generator: torch.Generator) -> dict[str, float]:
        """Nothing to learn."""
        return {}

    def rewards(self, episodes: list[Episode], policy: Policy) -> list[np.ndarray]:
        """The rewards of :func:`label`."""
        return [label(e, self.cfg)[0] for e in episodes]

    def terminals(self, episodes: list[Episode]) -> list[bool]:
        """The terminal flags of :func:`label`."""
        return [label(e, self.cfg)[1] for e in episodes]

    def state(self) -> dict[str, Any]:
        """No state."""
        return {}

    def load(self, state: dict[str, Any]) -> None:
        """No state."""


class StepsToGoReward:
    """The frozen head's progress ``d(o_t) - d(o_t+1)`` as an off-policy reward; its detector ends episodes.

    Args:
        reward: the frozen head and threshold.
        calibration: how ``s`` was chosen (its tolerance scores the detector at evaluation).
        terminal: whether a detector stop is a true end (``detector_stop="terminal"``).
        demos: with ``refresh``, the demos the head keeps training on.
        refresh: the config whose ``refresh_*`` fields say whether and how the head is refreshed.
    """

    name = "steps-to-go"

    def __init__(self, reward: LearnedReward, calibration: Calibration, terminal: bool = False,
                 demos: list[Episode] | None = None, refresh: LearnedRewardConfig | None = None) -> None:
        self.reward, self.calibration, self.terminal = reward, calibration, terminal
        self.setup_env_steps = calibration.env_steps
        self.refresh = refresh if refresh is not None and refresh.refresh_every > 0 else None
        self.cycles = 0
        self.version = 0  # refreshes so far: the replay relabels everything when it changes
        self.pool: list[np.ndarray] = []  # per episode: flattened observations (T, D), labels follow from T
        self.demos = [_states(e, reward.obs_keys) for e in demos or []]
        self.optimizer: torch.optim.Optimizer | None = None
        if self.refresh is not None:
            head = self.reward.model.steps_to_go
            head.requires_grad_(True)
            self.optimizer = torch.optim.Adam(head.parameters(), lr=self.refresh.refresh_lr)

    @torch.no_grad()
    def replay_reward(self, obs: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        """``d(obs) - d(next_obs)`` ``(N,)``: the replay's ``reward_fn`` (its version is :attr:`version`)."""
        d = self.reward.model.expected_steps_to_go(torch.cat([obs, next_obs]))
        return d[: len(obs)] - d[len(obs):]

    def episode_rewards(self, episode: Episode) -> np.ndarray:
        """The progress rewards ``(T,)`` of one episode."""
        return LearnedReward.rewards(self.reward.episode_steps_to_go(episode))

    def update(self, episodes: list[Episode], policy: Policy, generator: torch.Generator) -> dict[str, float]:
        """With ``refresh``: pool the detector's successes and, every ``refresh_every`` cycles, refresh the head."""
        if self.refresh is None:
            return {}
        self.pool += [_states(e, self.reward.obs_keys) for e in episodes if e.attrs.get("learned_success")]
        self.cycles += 1
        if self.cycles % self.refresh.refresh_every or not self.pool:
            return {}
        return {"head_loss": self._refresh(generator)}

    def _refresh(self, generator: torch.Generator) -> float:
        """``refresh_steps`` Adam steps of the head on demos + pooled detector successes; the mean loss."""
        episodes = self.demos + self.pool
        obs = torch.as_tensor(np.concatenate(episodes), dtype=torch.float32)
        labels = torch.as_tensor(np.concatenate([steps_to_go_labels(len(x), True) for x in episodes]))
        model, losses = self.reward.model, []
        for _ in range(self.refresh.refresh_steps):
            idx = torch.randint(len(obs), (min(256, len(obs)),), generator=generator)
            with torch.no_grad():
                features = model.features(obs[idx])
            loss = model.steps_to_go.loss(features, labels[idx])
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            losses.append(loss.item())
        self.version += 1
        return float(np.mean(losses))

    def rewards(self, episodes: list[Episode], policy: Policy) -> list[np.ndarray]:
        """The progress of every step (what the replay's ``reward_fn`` recomputes when it samples)."""
        return [self.episode_rewards(e) for e in episodes]

    def terminals(self, episodes: list[Episode]) -> list[bool]:
        """With ``terminal``: a detector stop (a demo: its recorded success) ends for good; else only the env's end."""
        if not self.terminal:
            return env_terminals(episodes)
        return [bool(e.attrs.get("learned_success", e.success)) or t for e, t in zip(episodes, env_terminals(episodes))]

    def practice_job(self, job: RolloutJob, policy: Policy) -> RolloutJob:
        """The practice job with the detector ending episodes and no simulator success read."""
        return unread_job(job, ActorSpec.stopping(policy, self.reward.model, self.reward.threshold, job.actor.name,
                                                  job.actor.deterministic))

    def diagnose(self, episodes: list[Episode]) -> dict[str, float]:
        """On evaluation episodes: :func:`reward_diagnostics` and the detector's precision and recall."""
        success = [bool(e.success) for e in episodes]
        d = [self.reward.episode_steps_to_go(e) for e in episodes]
        p, r = precision_recall(d, success, self.reward.threshold, self.calibration.tolerance)
        return {**reward_diagnostics([LearnedReward.rewards(x) for x in d], success), "precision": p, "recall": r}

    def state(self) -> dict[str, Any]:
        """With ``refresh``: the head, its optimiser, the pool and the counts (else nothing: the prior's head)."""
        if self.refresh is None:
            return {}
        return {"head": self.reward.model.steps_to_go.state_dict(), "optimizer": self.optimizer.state_dict(),
                "pool": list(self.pool), "cycles": self.cycles, "version": self.version}

    def load(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`state`."""
        if self.refresh is None or not state:
            return
        self.reward.model.steps_to_go.load_state_dict(state["head"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.pool, self.cycles, self.version = list(state["pool"]), state["cycles"], state["version"]


def _states(episode: Episode, keys: tuple[str, ...]) -> np.ndarray:
    """The ``T`` observations an episode acted on, flattened ``(T, D)``."""
    return flatten_obs(episode.obs, keys)


class PracticeOTReward(OTReward):
    """:class:`~automimic.algos.ot_reward.OTReward` for off-policy practice: no success read, diagnostics."""

    setup_env_steps = 0

    def practice_job(self, job: RolloutJob, policy: Policy) -> RolloutJob:
        """The practice job without any simulator success read (episodes run to the horizon)."""
        return unread_job(job)

    def diagnose(self, episodes: list[Episode]) -> dict[str, float]:
        """:func:`reward_diagnostics` on evaluation episodes, per step (see there)."""
        return reward_diagnostics(self.rewards(episodes, None), [bool(e.success) for e in episodes], per_step=True)


def detector_calibration(cfg: LearnedRewardConfig, base: Policy, env_id: str, out: Path, seed: int, horizon: int,
                         collector: Collector) -> Calibration:
    """``out/calibration.json`` if a run wrote it, else the given threshold or a fresh calibration (saved)."""
    path = out / "calibration.json"
    if path.exists():
        return Calibration.load(path)
    if cfg.threshold is not None:
        nan = float("nan")
        calib = Calibration(float(cfg.threshold), nan, nan, nan, 0, 0, default_tolerance(base))
    else:
        calib = calibrate(base, env_id, cfg.calibrate_episodes, seed=seed, workers=collector,
                          action_noise=cfg.calibrate_noise, horizon=horizon or None)
    calib.save(path)
    return calib


def policy_features(policy: Policy) -> Callable[[np.ndarray], np.ndarray]:
    """The frozen ``policy``'s trunk features of flattened observations ``(T, D)`` -> ``(T, F)``, as float64."""
    policy.eval()  # the prior is frozen: no observation noise or dropout in what the reward compares

    def embed(states: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return policy.features(torch.as_tensor(states, dtype=torch.float32)).double().numpy()
    return embed


def learned_reward_source(reward: str, cfg: LearnedRewardConfig, base: Policy, demos: list[Episode], env_id: str,
                          out: Path, seed: int, horizon: int,
                          collector: Collector) -> StepsToGoReward | PracticeOTReward:
    """The reward source of ``reward`` (``steps-to-go`` or ``ot``) for a BC prior ``base`` (headed for steps-to-go)."""
    if reward == "ot":
        embed = policy_features(base) if cfg.ot_embedding == "policy" else None
        return PracticeOTReward(demos, base.obs_keys, cfg.ot_solver, cfg.ot_eps, cfg.ot_scale, cfg.ot_hold, embed)
    calib = detector_calibration(cfg, base, env_id, out, seed, horizon, collector)
    return StepsToGoReward(LearnedReward(base, calib.threshold), calib, cfg.detector_stop == "terminal", demos, cfg)


def _cell(row: Any, key: str) -> str:
    value = row.reward_info.get(key, float("nan"))
    return "n/a" if np.isnan(value) else f"{value:.2f}"


def learned_reward_report(out: Path, reward: str) -> tuple[list[Column], str]:
    """The practice report's extra columns and sentence for a learned reward (none for the others)."""
    if reward not in LEARNED_REWARDS:
        return [], ""
    columns: list[Column] = [("r vs success", lambda r: _cell(r, "corr_success")),
                             ("r vs steps", lambda r: _cell(r, "corr_steps"))]
    score = "mean reward per step" if reward == "ot" else "return"
    note = (f" Practice read neither the simulator's success nor its reward (reward `{reward}`); the learned "
            "reward's diagnostics are measured on the evaluation episodes only: Pearson's r between an episode's "
            f"learned {score} and the simulator's success (*r vs success*, > 0 if it tracks progress) and its "
            "steps (*r vs steps*, < 0 if it does).")
    if reward == "steps-to-go":
        columns.append(("detector P / R", lambda r: f"{_cell(r, 'precision')} / {_cell(r, 'recall')}"))
        calib = Calibration.load(out / "calibration.json")
        note += (f" Practice success is the detector's verdict. {calib.line()}; the calibration took "
                 f"{calib.env_steps} env steps (simulator success read there), taken out of the practice budget.")
    else:
        note += " Practice success is not observed (0)."
    return columns, note
