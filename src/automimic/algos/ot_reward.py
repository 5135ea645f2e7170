"""Optimal-transport rewards as in ROT (Haldar et al., CoRL 2022): how closely a practice episode retraces a demo.

For a practice episode with states ``x_1..x_T`` (the state each action led to) and a demo with
states ``y_1..y_N``, each mapped by an embedding (``embed``: none, the raw observation vector, or a
function such as the BC prior's trunk features) and then standardised by the demos' per-dimension
mean and std:

* cost ``C_tj = 1 - cos(x_t, y_j)`` (ROT's cosine cost, in ``[0, 2]``);
* transport plan ``P`` between uniform weights ``1/T`` and ``1/N``, from POT: ``ot.sinkhorn``
  (entropic, ``eps`` = 0.01 by default, ROT's value; at most 1,000 iterations) or ``ot.emd`` (exact);
* ``reward_t = -scale * T * sum_j P_tj C_tj``. The factor ``T`` makes a step's reward the mean cost of
  what it is matched to, in ``[-2 * scale, 0]`` whatever the episode's length (ROT instead rescales
  by the first episode's total); ``scale`` defaults to 1.

Demos that end earlier than the practice episode are padded by holding their last state (``hold``,
the default): a demo records the expert up to success, while a practice episode with no success
signal runs to the horizon. Unpadded, the uniform marginals spread the ``T`` practice states over
the ``N < T`` demo states, so the best-scoring episode retraces the demo ``T / N`` times slower and
never rests at the goal. Measured on Meta-World (demos ~65 steps, horizon 200): practice under the
unpadded reward made episodes longer (eval length 123 -> 181 on push-v3) and success fell
(0.56 -> 0.14). Held, a demo scores an episode that reaches the goal at the demo's pace and stays
there as a perfect match, as ROT's fixed-length demos do.

The episode's rewards are those against its *closest* demo, the one with the lowest total cost
``sum P * C`` (ROT: the highest summed reward). The whole trajectory is needed, so rewards are
computed per episode when it is labelled (before it enters the replay), never per step.

Why POT rather than a hand-written Sinkhorn: a tested solver with a stopping rule, and the exact
solver (``emd``) the tests check the reward against. The plain (not log-domain) Sinkhorn is used:
with costs in ``[0, 2]`` its kernel ``exp(-C / 0.01) >= exp(-200)`` stays a normal float64, and it
is 25 times faster than POT's ``sinkhorn_log`` (measured: 0.03 s against 0.7 s for 200 x 60 steps;
``emd`` took 1.5 ms). Below ``eps`` ~ 0.003 the kernel underflows: use ``emd`` there.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

import numpy as np
import torch

from automimic.algos.engine import env_terminals
from automimic.algos.rules import episode_states
from automimic.data.episode import Episode
from automimic.policies import Policy

SOLVERS = ("sinkhorn", "emd")


def cosine_cost(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``1 - cos`` between every row of ``x`` ``(T, D)`` and of ``y`` ``(N, D)``: ``(T, N)``."""
    xn = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-8)
    yn = y / np.maximum(np.linalg.norm(y, axis=1, keepdims=True), 1e-8)
    return np.clip(1.0 - xn @ yn.T, 0.0, 2.0)


def transport_plan(cost: np.ndarray, solver: str = "sinkhorn", eps: float = 0.01) -> np.ndarray:
    """The plan ``(T, N)`` between uniform weights under ``cost`` (POT's ``sinkhorn`` or ``emd``)."""
    import ot

    a = np.full(cost.shape[0], 1.0 / cost.shape[0])
    b = np.full(cost.shape[1], 1.0 / cost.shape[1])
    if solver == "emd":
        return ot.emd(a, b, cost)
    if solver == "sinkhorn":
        with warnings.catch_warnings():
            # At eps = 0.01 the 1,000 iterations can stop short of POT's 1e-9 marginal tolerance; the
            # plan is then still within 0.2% of its marginals and its cost within 1% of the exact one
            # (measured on 15 x 30 steps), far below the reward's noise: not worth a warning per episode.
            warnings.filterwarnings("ignore", "Sinkhorn did not converge")
            return ot.sinkhorn(a, b, cost, reg=eps, numItermax=1000, stopThr=1e-9)
    raise ValueError(f"OT solver must be one of {SOLVERS}, got {solver!r}")


def held(demo: np.ndarray, length: int) -> np.ndarray:
    """``demo`` ``(N, D)`` padded to ``length`` rows by repeating its last state (unchanged if ``N >= length``)."""
    if len(demo) >= length:
        return demo
    return np.concatenate([demo, np.repeat(demo[-1:], length - len(demo), axis=0)])


def ot_rewards(states: np.ndarray, demos: list[np.ndarray], solver: str = "sinkhorn", eps: float = 0.01,
               scale: float = 1.0, hold: bool = True) -> tuple[np.ndarray, int, float]:
    """Per-step rewards ``(T,)`` of normalised ``states`` ``(T, D)`` against the closest of ``demos``
    (each ``(N_i, D)``, normalised alike; with ``hold``, shorter demos hold their last state up to
    ``T``), that demo's index, and its total cost ``sum P * C``."""
    best: tuple[float, int, np.ndarray] | None = None
    for i, demo in enumerate(demos):
        demo = held(demo, len(states)) if hold else demo
        cost = cosine_cost(np.asarray(states, np.float64), np.asarray(demo, np.float64))
        matched = (transport_plan(cost, solver, eps) * cost).sum(1)  # (T,): sum_j P_tj C_tj
        if best is None or matched.sum() < best[0]:
            best = (float(matched.sum()), i, matched)
    assert best is not None, "ot_rewards needs at least one demo"
    total, index, matched = best
    return (-scale * len(states) * matched).astype(np.float32), index, total


class OTReward:
    """ROT's reward source: each practice episode's OT match to its closest demo (see the module docstring).

    Args:
        demos: the expert demos (their states are the reference trajectories and their statistics
            normalise every state).
        obs_keys: the observation keys compared, in the policy's order.
        solver: ``sinkhorn`` or ``emd``.
        eps: Sinkhorn's entropic regularisation (cost units; ignored by ``emd``).
        scale: factor on the rewards.
        hold: pad demos shorter than the episode by holding their last state (see the module docstring).
        embed: maps flattened observations ``(T, D)`` to the vectors compared ``(T, E)`` (``None``: the
            observations themselves).
    """

    name = "ot"

    def __init__(self, demos: list[Episode], obs_keys: tuple[str, ...], solver: str = "sinkhorn", eps: float = 0.01,
                 scale: float = 1.0, hold: bool = True,
                 embed: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        if not demos:
            raise ValueError("the OT reward needs at least one demo")
        self.obs_keys, self.solver, self.eps, self.scale, self.hold = tuple(obs_keys), solver, eps, scale, hold
        self.embed = embed
        states = [self.embedded(d) for d in demos]
        stacked = np.concatenate(states).astype(np.float64)
        self.mean, self.std = stacked.mean(0), np.maximum(stacked.std(0), 1e-6)
        self.demos = [self.normalise(s[1:]) for s in states]

    def embedded(self, episode: Episode) -> np.ndarray:
        """The ``T + 1`` states of ``episode``, embedded ``(T + 1, E)`` (not yet standardised)."""
        states = episode_states(episode, self.obs_keys)
        return states if self.embed is None else np.asarray(self.embed(states), np.float64)

    def normalise(self, states: np.ndarray) -> np.ndarray:
        """States ``(T, D)`` in units of the demos' statistics."""
        return (np.asarray(states, np.float64) - self.mean) / self.std

    def episode_rewards(self, episode: Episode) -> np.ndarray:
        """The OT rewards ``(T,)`` of one episode against its closest demo."""
        states = self.embedded(episode)[1:]
        return ot_rewards(self.normalise(states), self.demos, self.solver, self.eps, self.scale, self.hold)[0]

    def update(self, episodes: list[Episode], policy: Policy, generator: torch.Generator) -> dict[str, float]:
        """Nothing to learn: the demos are the reward."""
        return {}

    def rewards(self, episodes: list[Episode], policy: Policy) -> list[np.ndarray]:
        """Per-step OT rewards of each episode."""
        return [self.episode_rewards(e) for e in episodes]

    def terminals(self, episodes: list[Episode]) -> list[bool]:
        """Only the env's own end is an end (practice episodes run to the horizon)."""
        return env_terminals(episodes)

    def state(self) -> dict[str, Any]:
        """No state: rebuilt from the demos."""
        return {}

    def load(self, state: dict[str, Any]) -> None:
        """No state."""
