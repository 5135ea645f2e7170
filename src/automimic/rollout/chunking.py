"""Executing any policy step by step: observation history, action queue and temporal ensembling.

Chunked policies (ACT, Diffusion Policy) predict several future actions from several past
observations; single-step policies (MLP) map one observation to one action. :class:`ChunkRunner`
hides the difference from everything that rolls policies out (evaluation, collection, SEIL
practice, the steps-to-go fleet): it keeps, per *slot* (one env), the observation history, the
queue of actions still to execute and the past predictions to ensemble, and batches the policy
call over all slots that need a new chunk at this step.
"""

from __future__ import annotations

from collections import deque
from typing import Sequence

import numpy as np
import torch

from automimic.policies import Policy


def ensemble_weights(n: int, k: float) -> np.ndarray:
    """ACT's temporal-ensembling weights for ``n`` predictions of one step, oldest first.

    ``w_i = exp(-k i) / sum_j exp(-k j)``: with ``k > 0`` the oldest prediction weighs most, which
    is the original paper's choice (it makes the executed action change smoothly).
    """
    w = np.exp(-k * np.arange(n))
    return w / w.sum()


def history_window(obs: np.ndarray, history: int) -> np.ndarray:
    """The last ``history`` rows of ``obs`` ``(T, D)``, front-padded with the first row when ``T < history``."""
    if len(obs) >= history:
        return obs[len(obs) - history:]
    return np.concatenate([np.repeat(obs[:1], history - len(obs), axis=0), obs])


def history_windows(obs: np.ndarray, history: int) -> np.ndarray:
    """Every step's window ``(T, history, D)`` of an episode's observations ``(T, D)`` (rollout padding)."""
    rows = np.maximum(np.arange(len(obs))[:, None] + np.arange(1 - history, 1)[None], 0)
    return obs[rows]


class _Slot:
    def __init__(self, history: int) -> None:
        self.obs: deque[np.ndarray] = deque(maxlen=max(1, history))
        self.images: dict[str, deque[np.ndarray]] = {}
        self.queue: deque[np.ndarray] = deque()
        self.predictions: deque[tuple[int, np.ndarray]] = deque()
        self.t = 0


class ChunkRunner:
    """Turns a policy into one action per env per step, for ``slots`` envs stepping together.

    Every policy call has exactly ``slots`` rows (rows of slots that need no query are filled with
    a copy), and every slot draws its randomness from its own generator, seeded by :meth:`reset`.
    Measured here, a row's output of torch's CPU kernels differs in the last bits between batch
    sizes (1 vs 2+) but not between positions or neighbours at one batch size; fixed-size calls
    therefore make an episode a function of its seed alone, whichever slot or worker runs it and
    whatever runs beside it.

    Args:
        policy: any policy.
        slots: how many envs share this runner (one per env).
        deterministic: passed to the policy (mean action vs sampling).
    """

    def __init__(self, policy: Policy, slots: int = 1, deterministic: bool = True) -> None:
        self.policy = policy
        self.deterministic = deterministic
        self.mode, self.steps, self.k = policy.execution
        self._slots = [_Slot(policy.history) for _ in range(slots)]
        self._generators = [torch.Generator() for _ in range(slots)]
        self._scratch = torch.Generator()  # padding rows draw from it; their outputs are dropped

    def reset(self, slot: int = 0, seed: int = 0) -> None:
        """Start a new episode in ``slot``: forget its history, queue and predictions, seed its sampling."""
        self._slots[slot] = _Slot(self.policy.history)
        self._generators[slot].manual_seed(seed)

    def act(self, obs: np.ndarray, images: dict[str, np.ndarray] | None = None,
            slots: Sequence[int] | None = None) -> np.ndarray:
        """Actions ``(B, D_act)`` for the current observations ``(B, D_obs)`` of ``slots`` (default: all).

        ``images`` maps camera keys to the current frames ``(B, H, W, C)``.
        """
        slots = list(range(len(obs))) if slots is None else list(slots)
        if self.policy.chunk <= 0:
            rows = self._padded(list(range(len(slots))))
            src = [j if j >= 0 else 0 for j in rows]
            gens = self._row_generators([slots[j] if j >= 0 else -1 for j in rows])
            return self.policy.act(obs[src], deterministic=self.deterministic, generators=gens)[: len(slots)]
        images = images or {}
        for j, s in enumerate(slots):
            slot = self._slots[s]
            _push(slot.obs, obs[j])
            for key, frames in images.items():
                _push(slot.images.setdefault(key, deque(maxlen=max(1, self.policy.history))), frames[j])
        need = [j for j, s in enumerate(slots) if self.mode == "ensemble" or not self._slots[s].queue]
        if need:
            rows = self._padded(need)
            src = [self._slots[slots[j if j >= 0 else need[0]]] for j in rows]
            hist = np.stack([np.stack(slot.obs) for slot in src])
            hist_images = {key: np.stack([np.stack(slot.images[key]) for slot in src]) for key in images}
            gens = self._row_generators([slots[j] if j >= 0 else -1 for j in rows])
            chunks = self.policy.predict_chunk(hist, hist_images or None, deterministic=self.deterministic,
                                               generators=gens)
            for j, chunk in zip(need, chunks):
                slot = self._slots[slots[j]]
                if self.mode == "ensemble":
                    slot.predictions.append((slot.t, chunk))
                else:
                    slot.queue.extend(chunk[: self.steps])
        actions = []
        for s in slots:
            slot = self._slots[s]
            if self.mode == "ensemble":
                while slot.predictions and slot.t - slot.predictions[0][0] >= len(slot.predictions[0][1]):
                    slot.predictions.popleft()  # that chunk no longer covers this step
                candidates = np.stack([chunk[slot.t - t0] for t0, chunk in slot.predictions])
                actions.append(ensemble_weights(len(candidates), self.k) @ candidates)
            else:
                actions.append(slot.queue.popleft())
            slot.t += 1
        return np.stack(actions).astype(np.float32)

    def _padded(self, rows: list[int]) -> list[int]:
        # -1 marks a padding row: it repeats the first real row and its output is dropped.
        return rows + [-1] * (len(self._slots) - len(rows))

    def _row_generators(self, slots: list[int]) -> list[torch.Generator]:
        return [self._generators[s] if s >= 0 else self._scratch for s in slots]


def _push(history: deque, value: np.ndarray) -> None:
    # At an episode's first step the history is the first observation repeated (training pads alike).
    if not history:
        history.extend([value] * history.maxlen)
    else:
        history.append(value)


def replay_actions(policy: Policy, obs: np.ndarray, images: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """The action ``(T, D_act)`` the policy would choose at each step of a recorded episode ``obs (T, D_obs)``.

    Teacher-forced: each step sees the recorded history (padded at the start as in rollouts) and
    contributes the first action of its chunk, so scores such as primary/EMA disagreement compare
    the two models' immediate intentions whatever the policy class.
    """
    if policy.chunk <= 0:
        return policy.act(obs)
    windows = {k: history_windows(v, policy.history) for k, v in (images or {}).items()}
    return policy.predict_chunk(history_windows(obs, policy.history), windows or None)[:, 0]
