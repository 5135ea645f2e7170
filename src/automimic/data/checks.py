"""Checks on demonstrations before any training starts: data that cannot work gets one line naming
the file, the episode and the field, instead of a traceback at evaluation time.

What is checked without an env: every episode has steps; the observation keys a policy reads are
present, with the same width in every episode; actions have one width; every value read is
finite. With an env's spec (:func:`automimic.envs.env_spec`), also that the env produces those keys
at those widths and takes actions of that width.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from automimic.data.episode import Episode


def _width(array: np.ndarray) -> int:
    return int(np.prod(array.shape[1:], dtype=np.int64))


def check_episodes(path: str, named: Sequence[tuple[str, Episode]], keys: Sequence[str],
                   env_obs: dict[str, tuple[int, ...]] | None = None, env_actions: int | None = None,
                   env_id: str = "") -> None:
    """Raise ``ValueError`` (one line) at the first problem that would make training on ``named`` fail.

    Args:
        path: the store the episodes come from (named in every message).
        named: ``(episode name, episode)`` pairs, e.g. ``("demo_3", ep)``.
        keys: the low-dimensional observation keys the policy will read.
        env_obs: the env's observation key -> shape (skip the env checks when ``None``).
        env_actions: the env's action width.
        env_id: the env's id, for the messages.
    """
    if not named:
        raise ValueError(f"{path}: no episodes to train on")
    first_name, first = named[0]
    widths = {}
    for key in keys:
        if key not in first.obs:
            raise ValueError(f"{path}: episode {first_name} has no obs/{key}; it holds {sorted(first.obs)}")
        widths[key] = _width(first.obs[key])
    action_width = first.actions.shape[1]
    for name, ep in named:
        if ep.length == 0:
            raise ValueError(f"{path}: episode {name} has no steps (length 0); remove it or record it again")
        if ep.actions.shape[1] != action_width:
            raise ValueError(f"{path}: episode {name}: actions are {ep.actions.shape[1]} wide, episode {first_name}'s "
                             f"are {action_width}")
        _finite(path, name, "actions", ep.actions)
        for key in keys:
            if key not in ep.obs:
                raise ValueError(f"{path}: episode {name} has no obs/{key}; it holds {sorted(ep.obs)}")
            if _width(ep.obs[key]) != widths[key]:
                raise ValueError(f"{path}: episode {name}: obs/{key} is {_width(ep.obs[key])} wide, episode "
                                 f"{first_name}'s is {widths[key]}")
            _finite(path, name, f"obs/{key}", ep.obs[key])
    if env_obs is not None:
        for key in keys:
            if key not in env_obs:
                raise ValueError(f"{path}: obs/{key} is not an observation of env {env_id} (it gives "
                                 f"{sorted(env_obs)}); pass the env the demos were recorded in, or choose keys with "
                                 f"--set policy_config.obs_keys=[...]")
            want = int(np.prod(env_obs[key], dtype=np.int64))
            if want != widths[key]:
                raise ValueError(f"{path}: obs/{key} is {widths[key]} wide, env {env_id} gives {want}")
    if env_actions is not None and env_actions != action_width:
        raise ValueError(f"{path}: actions are {action_width} wide, env {env_id} takes {env_actions}")


def _finite(path: str, name: str, field: str, values: np.ndarray) -> None:
    values = np.asarray(values)
    if np.issubdtype(values.dtype, np.floating) and not np.isfinite(values).all():
        step = int(np.argwhere(~np.isfinite(values.reshape(len(values), -1)))[0, 0])
        raise ValueError(f"{path}: episode {name}: {field} holds NaN or inf (first at step {step})")
