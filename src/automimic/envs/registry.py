"""One entry point for every environment: ``make_env("metaworld/pick-place-v3")``.

Ids are ``family/name``. Families register a builder (and optionally an expert and a list of
names) with :func:`register_family`; adding a simulator touches one new module and no if-chain.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from automimic.envs.base import AutomimicEnv, Expert, Obs


@dataclass(frozen=True)
class Family:
    """How to build the envs (and experts) of one id prefix."""

    name: str
    make: Callable[..., AutomimicEnv]
    names: Callable[[], list[str]]
    expert: Callable[[str], Expert] | None = None
    open_ended: bool = False  # accepts names it cannot list (e.g. any Gymnasium id)
    #: The start perturbation practice uses unless told otherwise (0: the family places no objects).
    default_perturb: float = 0.0


_FAMILIES: dict[str, Family] = {}


def register_family(family: Family) -> Family:
    """Make ``family.name/...`` ids available to :func:`make_env` and :func:`expert_for`."""
    _FAMILIES[family.name] = family
    return family


def env_ids() -> list[str]:
    """Every listable env id, e.g. ``["metaworld/assembly-v3", ..., "point/reach"]``."""
    return sorted(f"{f.name}/{n}" for f in _FAMILIES.values() for n in f.names())


def _resolve(env_id: str) -> tuple[Family, str]:
    family_name, _, name = env_id.partition("/")
    family = _FAMILIES.get(family_name)
    if family is None or not name or (not family.open_ended and name not in family.names()):
        raise ValueError(f"unknown env id {env_id!r}; valid ids: {', '.join(env_ids())}, gym/<any Gymnasium id>")
    return family, name


def make_env(env_id: str, *, perturb: float = 0.0, horizon: int | None = None,
             render_mode: str | None = None, cameras: Sequence[str] = (), image_size: int | None = None,
             **kwargs) -> AutomimicEnv:
    """Build an env by id.

    Args:
        env_id: ``metaworld/<task>-v3``, ``point/reach`` or ``gym/<Gymnasium id>``.
        perturb: standard deviation of the (x, y) offset added to each object's start position.
        horizon: step budget per episode (the family's default when ``None``).
        render_mode: ``"rgb_array"`` to allow ``env.render()`` (needed for videos and images).
        cameras: add each named camera's frame to the observations as ``<camera>_image``
            (one camera per env for now; Meta-World: ``corner``, ``topview``, ...; point: ``top``).
        image_size: side of rendered frames (videos and camera observations).
    """
    family, name = _resolve(env_id)
    if horizon is not None:
        kwargs["horizon"] = horizon
    if image_size is not None:
        kwargs["image_size"] = image_size
    if not cameras:
        return family.make(name, perturb=perturb, render_mode=render_mode, **kwargs)
    if len(cameras) > 1:
        raise ValueError(f"{env_id}: one camera per env is supported, got cameras {list(cameras)}")
    from automimic.envs.cameras import DEFAULT_IMAGE_SIZE, CameraObservation

    kwargs.setdefault("image_size", DEFAULT_IMAGE_SIZE)
    try:
        env = family.make(name, perturb=perturb, render_mode="rgb_array", camera=cameras[0], **kwargs)
    except TypeError:
        raise ValueError(f"{env_id} cannot render camera observations") from None
    return CameraObservation(env, cameras[0], kwargs["image_size"])


def default_perturb(env_id: str) -> float:
    """The start-position perturbation that suits ``env_id`` (its family's own choice), for practice
    rollouts that add start diversity (SEIL)."""
    return _resolve(env_id)[0].default_perturb


def env_spec(env_id: str, **kwargs) -> tuple[dict[str, tuple[int, ...]], int]:
    """The observation key -> shape and the action width of env ``env_id`` (built once, then closed).

    ``kwargs`` go to :func:`make_env`. An unknown id raises ``ValueError`` before anything is built.
    """
    env = make_env(env_id, **kwargs)
    try:
        obs = {k: tuple(space.shape) for k, space in env.observation_space.spaces.items()}
        return obs, int(np.prod(env.action_space.shape, dtype=np.int64))
    finally:
        env.close()


class CallableExpert:
    """A plain function ``obs -> action`` as an :class:`Expert` (it keeps no per-episode state)."""

    def __init__(self, fn: Callable[[Obs], np.ndarray]) -> None:
        self.fn = fn

    def reset(self, seed: int) -> None:
        """Nothing to reset."""

    def __call__(self, obs: Obs) -> np.ndarray:
        """The function's action."""
        return np.asarray(self.fn(obs), dtype=np.float32)


def load_expert(spec: str, env_id: str) -> Expert:
    """The expert named ``"package.module:name"``: a class (built with ``env_id``) or a function ``obs -> action``.

    Named by import path rather than passed as an object so that every rollout worker (a process
    or a Ray actor) can build its own copy.
    """
    module, sep, attr = spec.partition(":")
    if not sep or not module or not attr:
        raise ValueError(f"expert {spec!r}: expected 'package.module:name'")
    try:
        obj = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"expert {spec!r}: cannot import it ({err})") from err
    if inspect.isclass(obj):
        return obj(env_id)
    if not callable(obj):
        raise ValueError(f"expert {spec!r}: expected a class or a function obs -> action, got {type(obj).__name__}")
    return CallableExpert(obj)


def expert_for(env_id: str, expert: str = "") -> Expert:
    """The scripted expert of ``env_id``, or the one ``expert`` names (see :func:`load_expert`);
    a clear error for envs that ship none."""
    if expert:
        return load_expert(expert, env_id)
    family, name = _resolve(env_id)
    if family.expert is None:
        raise ValueError(f"{env_id} has no scripted expert; pass one as 'package.module:name', record demos another "
                         "way or import an HDF5 file")
    return family.expert(name)
