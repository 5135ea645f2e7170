"""SEIL selectors: which successful practice episodes become new demonstrations.

A selector sees the pool of successes of one round as :class:`Candidate` s and returns the indices
to keep. SEIL's paper asks for "complementary and informative, often low-confidence" trajectories;
the registered strategies cover the axes separately so the ablation can tell them apart:

* ``all``: keep every success (the naive loop).
* ``random-k``: a uniform sample of ``keep``.
* ``low-confidence``: the ``keep`` episodes on which the primary and EMA models disagree most
  (mean distance between their normalised actions over the episode's states): states the
  policy is unsure about, i.e. where a demonstration teaches most.
* ``diverse``: farthest-point sampling on standardised start-state features, counting the
  episodes already trained on as chosen: it keeps the successes that are *complementary* to the
  current data (new regions of start states) instead of piling up the easy, common ones.
* ``uncertain-diverse``: farthest-point sampling among the ``2 * keep`` least confident — both
  properties at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from automimic.data.episode import Episode
from automimic.data.transitions import flatten_obs
from automimic.policies import Policy
from automimic.rollout.chunking import replay_actions

SelectorFn = Callable[[Sequence["Candidate"], int, np.random.Generator, np.ndarray], list[int]]
_SELECTORS: dict[str, SelectorFn] = {}


@dataclass(frozen=True)
class Candidate:
    """A successful practice episode and what selectors judge it by.

    Attributes:
        episode: the episode.
        disagreement: mean L2 distance between primary and EMA actions (normalised units) over its states.
        features: ``(F,)`` start-state descriptor (the first observation, flattened).
    """

    episode: Episode
    disagreement: float
    features: np.ndarray


def register_selector(name: str) -> Callable[[SelectorFn], SelectorFn]:
    """Decorator: make a selector available by ``name``."""

    def add(fn: SelectorFn) -> SelectorFn:
        _SELECTORS[name] = fn
        return fn

    return add


def selector_names() -> list[str]:
    """Registered selector names."""
    return sorted(_SELECTORS)


def select(name: str, candidates: Sequence[Candidate], keep: int, rng: np.random.Generator,
           existing: np.ndarray | None = None) -> list[int]:
    """Indices (ascending) of the candidates selector ``name`` keeps; at most ``keep`` unless ``all``.

    ``existing`` holds the start-state features ``(M, F)`` of the episodes already in the training
    set; diversity is judged against them too.
    """
    if name not in _SELECTORS:
        raise ValueError(f"unknown selector {name!r}; registered: {selector_names()}")
    if keep < 0:
        raise ValueError(f"keep must be >= 0, got {keep}")
    if not candidates:
        return []
    dim = len(candidates[0].features)
    existing = np.zeros((0, dim)) if existing is None else np.asarray(existing, dtype=np.float64).reshape(-1, dim)
    return sorted(_SELECTORS[name](candidates, keep, rng, existing))


@register_selector("all")
def _all(candidates: Sequence[Candidate], keep: int, rng: np.random.Generator,
         existing: np.ndarray) -> list[int]:
    return list(range(len(candidates)))


@register_selector("random-k")
def _random(candidates: Sequence[Candidate], keep: int, rng: np.random.Generator,
            existing: np.ndarray) -> list[int]:
    return [int(i) for i in rng.choice(len(candidates), size=min(keep, len(candidates)), replace=False)]


@register_selector("low-confidence")
def _low_confidence(candidates: Sequence[Candidate], keep: int, rng: np.random.Generator,
                    existing: np.ndarray) -> list[int]:
    order = np.argsort([-c.disagreement for c in candidates], kind="stable")
    return [int(i) for i in order[:keep]]


def farthest_points(features: np.ndarray, keep: int, existing: np.ndarray | None = None) -> list[int]:
    """Greedy farthest-point sampling of ``keep`` rows of ``features`` (N, F).

    Columns are standardised over candidates and ``existing`` together. With ``existing`` (M, F)
    rows, each pick is the candidate farthest from everything chosen *or already present*;
    without, the first pick is the candidate farthest from the mean. Deterministic.
    """
    n = len(features)
    if keep >= n:
        return list(range(n))
    existing = np.zeros((0, features.shape[1])) if existing is None else existing
    both = np.concatenate([features, existing])
    scale = both.std(0) + 1e-8
    z = (features - both.mean(0)) / scale
    if len(existing):
        e = (existing - both.mean(0)) / scale
        dist = np.linalg.norm(z[:, None, :] - e[None, :, :], axis=2).min(1)
        chosen: list[int] = []
    else:
        chosen = [int(np.argmax(np.linalg.norm(z, axis=1)))]
        dist = np.linalg.norm(z - z[chosen[0]], axis=1)
    while len(chosen) < keep:
        nxt = int(np.argmax(dist))
        chosen.append(nxt)
        dist = np.minimum(dist, np.linalg.norm(z - z[nxt], axis=1))
    return chosen


@register_selector("diverse")
def _diverse(candidates: Sequence[Candidate], keep: int, rng: np.random.Generator,
             existing: np.ndarray) -> list[int]:
    return farthest_points(np.stack([c.features for c in candidates]), keep, existing)


@register_selector("uncertain-diverse")
def _uncertain_diverse(candidates: Sequence[Candidate], keep: int, rng: np.random.Generator,
                       existing: np.ndarray) -> list[int]:
    shortlist = _low_confidence(candidates, 2 * keep, rng, existing)
    picked = farthest_points(np.stack([candidates[i].features for i in shortlist]), keep, existing)
    return [shortlist[i] for i in picked]


@torch.no_grad()
def make_candidates(episodes: Sequence[Episode], primary: Policy, ema: Policy | None) -> list[Candidate]:
    """Score episodes for the selectors (disagreement is 0 for all when there is no EMA model)."""
    out = []
    for ep in episodes:
        obs = flatten_obs(ep.obs, primary.obs_keys)
        if ema is not None:
            images = {k: ep.obs[k] for k in primary.image_keys}
            a = primary.normalize_actions(torch.as_tensor(replay_actions(primary, obs, images)))
            b = primary.normalize_actions(torch.as_tensor(replay_actions(ema, obs, images)))
            disagreement = float((a - b).norm(dim=-1).mean())
        else:
            disagreement = 0.0
        out.append(Candidate(ep, disagreement, start_features(ep, primary.obs_keys)))
    return out


def start_features(episode: Episode, obs_keys: Sequence[str]) -> np.ndarray:
    """The descriptor selectors compare episodes by: the first observation, flattened."""
    return flatten_obs({k: v[:1] for k, v in episode.obs.items()}, obs_keys)[0].astype(np.float64)
