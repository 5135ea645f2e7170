"""The policy contract, the policy registry, and checkpoint save/load.

A policy is a ``torch.nn.Module`` that trains through ``loss(batch)`` and acts through
``act(obs)``. A *chunked* policy (``history``/``chunk`` > 0: ACT, Diffusion Policy) instead predicts
an action chunk from an observation history (``predict_chunk``); the rollout engine
(:mod:`automimic.rollout.chunking`) keeps the history, the action queue and temporal ensembling,
so algorithms call every policy the same way. A policy owns its normalisers, so a checkpoint (config + shapes + weights, including the
normaliser statistics) is all that is needed to run it; algorithms never know which class it is.
What a class can do with a given config (:meth:`Policy.capabilities`, e.g. :data:`STOCHASTIC`) is
asked of the class before anything is built, so an algorithm refuses a policy it cannot train without
naming classes (:func:`require_stochastic`).
"""

from __future__ import annotations

import abc
import dataclasses
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from automimic.checkpoint_io import read_checkpoint
from automimic.config import from_dict
from automimic.data.normalize import Normalizer
from automimic.data.transitions import Transitions
from automimic.policies.steps_to_go_head import StepsToGoHead, StepsToGoHeadConfig

CHECKPOINT_FORMAT = 1
_REGISTRY: dict[str, type["Policy"]] = {}

#: Capability: the policy has :meth:`Policy.action_distribution`, so on-policy RL (REINFORCE, PPO)
#: can score its actions.
STOCHASTIC = "stochastic"


def register_policy(name: str) -> Callable[[type["Policy"]], type["Policy"]]:
    """Class decorator: make a policy class buildable by ``name`` (and loadable from checkpoints)."""

    def add(cls: type[Policy]) -> type[Policy]:
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return add


def policy_names() -> list[str]:
    """Registered policy class names."""
    return sorted(_REGISTRY)


class Policy(nn.Module, abc.ABC):
    """Base class. Subclasses set ``Config`` (a dataclass) and implement ``loss`` and ``act``.

    Args:
        config: the policy's config dataclass.
        obs_dim: size of the flattened observation.
        action_dim: size of the action.
    """

    name: ClassVar[str]
    Config: ClassVar[type]
    #: Training settings that fit a 2-core CPU for this class where they differ from
    #: :class:`~automimic.training.loop.TrainConfig`'s (``train bc`` starts from them).
    cpu_train: ClassVar[dict[str, Any]] = {}

    @classmethod
    def capabilities(cls, config: Mapping[str, Any] | Any) -> frozenset[str]:
        """What a policy of this class built from ``config`` (a plain dict, possibly partial, or its
        config dataclass) can do, known before anything is built: e.g. :data:`STOCHASTIC`.

        By default a class is stochastic when it implements :meth:`action_distribution`; a class
        whose ability depends on its config (a head, a wrapped policy) overrides this.
        """
        return frozenset({STOCHASTIC}) if cls.action_distribution is not Policy.action_distribution else frozenset()

    @classmethod
    def enabling_settings(cls, capability: str, config: Mapping[str, Any] | Any) -> dict[str, Any] | None:
        """Config fields (nested dicts for a wrapped policy's config) that would give this class
        ``capability``: ``{}`` when ``config`` already does, ``None`` when no config of this class does.

        Error messages name these settings; a class whose capabilities depend on its config overrides this.
        """
        return {} if capability in cls.capabilities(config) else None

    def __init__(self, config: Any, obs_dim: int, action_dim: int) -> None:
        super().__init__()
        self.config = config
        self.obs_dim = obs_dim
        self.action_dim = action_dim
        self.steps_to_go: StepsToGoHead | None = None
        #: The action normaliser, when the policy trains in normalised action units (set by subclasses).
        self.action_norm: Normalizer | None = None

    @abc.abstractmethod
    def fit_normalizers(self, data: Transitions) -> None:
        """Fit observation/action statistics on the training data (before training)."""

    @abc.abstractmethod
    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Training losses for ``batch`` (``obs`` (B, D_obs), ``actions`` (B, D_act)); key ``loss`` is optimised."""

    def act(self, obs: np.ndarray, deterministic: bool = True,
            generators: Sequence[torch.Generator] | None = None) -> np.ndarray:
        """Actions ``(B, D_act)`` in env units for flattened observations ``(B, D_obs)`` (single-step policies).

        ``generators`` (one per row) draw each row's randomness, so a row's action does not depend
        on which other rows share the batch; without them the global torch RNG is used.
        """
        raise ValueError(f"policy {self.name!r} acts through predict_chunk; roll it out with ChunkRunner")

    #: Observation steps a chunked policy reads (0: a single-step policy that acts through ``act``).
    history: int = 0
    #: Actions a chunked policy predicts per query (0: single-step).
    chunk: int = 0

    def predict_chunk(self, obs: np.ndarray, images: dict[str, np.ndarray] | None = None,
                      deterministic: bool = True, generators: Sequence[torch.Generator] | None = None) -> np.ndarray:
        """Action chunks ``(B, chunk, D_act)`` in env units from histories ``(B, history, D_obs)``.

        ``images`` maps camera keys to ``(B, history, H, W, C)`` uint8 (image policies only);
        ``generators`` as in :meth:`act`.
        """
        raise ValueError(f"policy {self.name!r} is single-step; it acts through act()")

    @property
    def execution(self) -> tuple[str, int, float]:
        """How to execute chunks: ``(mode, steps, k)``; mode ``ensemble`` (query every step, blend
        overlapping predictions with weights ``exp(-k i)``) or ``chunk`` (run ``steps`` actions of
        each chunk, then query again)."""
        return ("chunk", 1, 0.0)

    @property
    def image_keys(self) -> tuple[str, ...]:
        """Camera observation keys the policy reads (none for state policies)."""
        return tuple(getattr(self.config, "image_keys", ()))

    def features(self, obs: torch.Tensor) -> torch.Tensor:
        """The representation ``(B, F)`` a steps-to-go head reads (the policy's last hidden layer)."""
        raise ValueError(f"policy {self.name!r} exposes no features for a steps-to-go head")

    @property
    def feature_dim(self) -> int:
        """Width ``F`` of :meth:`features`."""
        raise ValueError(f"policy {self.name!r} exposes no features for a steps-to-go head")

    def attach_steps_to_go(self, config: StepsToGoHeadConfig) -> None:
        """Give the policy a (fresh) steps-to-go head on its features; training then optimises both."""
        self.steps_to_go = StepsToGoHead(config, self.feature_dim)

    def training_loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """What the training loop optimises: :meth:`loss`, plus the weighted steps-to-go loss with a head.

        ``batch["steps_to_go"]`` holds the labels (``-1`` where unknown).
        """
        losses = self.loss(batch)
        if self.steps_to_go is None:
            return losses
        cfg = self.steps_to_go.config
        obs = batch["obs"] if batch["obs"].dim() == 2 else batch["obs"][:, -1]  # d reads the current step
        features = self.features(obs)
        stg = self.steps_to_go.loss(features.detach() if cfg.detach else features, batch["steps_to_go"])
        return {**losses, "bc_loss": losses["loss"], "steps_to_go_loss": stg,
                "loss": cfg.bc_weight * losses["loss"] + cfg.weight * stg}

    def expected_steps_to_go(self, obs: torch.Tensor) -> torch.Tensor:
        """``d(o) = E[steps-to-go]`` ``(B,)`` for flattened observations; needs a steps-to-go head."""
        if self.steps_to_go is None:
            raise ValueError(f"policy {self.name!r} has no steps-to-go head (train it with one)")
        return self.steps_to_go.expected(self.steps_to_go(self.features(obs)))

    def action_distribution(self, obs: torch.Tensor,
                            latent: torch.Tensor | None = None) -> torch.distributions.Distribution:
        """Distribution over *normalised* actions ``(B, D_act)`` (for on-policy RL).

        ``obs`` is ``(B, D_obs)``, or ``(B, history, D_obs)`` for a chunked policy. ``latent`` is the
        per-sample randomness the policy drew when acting (:meth:`practice_latent`), so the same
        action can be scored again after the weights change.
        """
        raise ValueError(f"policy {self.name!r} has no action distribution (on-policy practice needs one)")

    def practice_latent(self, generators: Sequence[torch.Generator]) -> torch.Tensor:
        """Randomness ``(n, L)``, one row per generator, that :meth:`action_distribution` conditions on
        (none, ``L = 0``, by default)."""
        return torch.zeros(len(generators), 0)

    def practice_execution(self) -> None:
        """Switch to the execution on-policy practice scores: one action per query (chunked policies).

        REINFORCE needs the log-probability of each executed action under the current weights; an
        ensembled or queued action mixes earlier queries, so practice re-plans every step and the
        practised policy keeps executing that way. Single-step policies need no change.
        """

    def unnormalize_actions(self, actions: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`normalize_actions`: env units from the units the policy trains in."""
        return actions if self.action_norm is None else self.action_norm.unnormalize(actions)

    def normalize_actions(self, actions: torch.Tensor) -> torch.Tensor:
        """Actions ``(..., D_act)`` in the units the policy trains in (through ``action_norm`` when it has one)."""
        return actions if self.action_norm is None else self.action_norm(actions)

    def after_optimizer_step(self) -> None:
        """Called by the training loop after every optimiser step (e.g. to update an internal EMA)."""

    def reset(self) -> None:
        """Forget per-episode state (history, action queues); stateless policies need nothing."""

    #: Task ids (env ids) a task-conditioned policy knows, in embedding order (empty: single-task).
    tasks: tuple[str, ...] = ()

    def set_task(self, env_id: str) -> None:
        """Act on task ``env_id`` from now on. A task-conditioned policy switches its task embedding
        (and refuses a task it has no embedding for); a single-task policy has nothing to switch."""

    @property
    def obs_keys(self) -> tuple[str, ...]:
        """Observation keys, in the order they are concatenated."""
        return tuple(self.config.obs_keys)


def randn_rows(n: int, shape: tuple[int, ...], generators: Sequence[torch.Generator] | None = None) -> torch.Tensor:
    """Standard normal draws ``(n, *shape)``: row ``i`` from ``generators[i]`` (global RNG without them).

    Per-row generators make a batched rollout's randomness a function of each episode alone.
    """
    if generators is None:
        return torch.randn(n, *shape)
    if len(generators) != n:
        raise ValueError(f"generators: expected one per row ({n}), got {len(generators)}")
    return torch.stack([torch.randn(*shape, generator=g) for g in generators])


def policy_config_class(name: str) -> type:
    """The config dataclass of registered policy class ``name`` (a clear error for an unknown name)."""
    return policy_class(name).Config


def check_policy_config(name: str, config: dict[str, Any]) -> None:
    """Refuse (``ValueError``, one line) an unknown policy class, or ``config`` fields that class does
    not have or that its config rejects; nothing is built. Fields filled in later from the data
    (``obs_keys``) may be absent."""
    cls = policy_config_class(name)
    valid = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(config) - valid)
    if unknown:
        raise ValueError(f"policy_config: unknown field(s) {unknown} for policy {name!r}; valid: {sorted(valid)}")
    try:
        # Typed field by field first, so a wrong type is named ("policy_config.hidden: expected ...")
        # rather than surfacing as whatever comparison the config's own checks trip over.
        from_dict(cls, dict(config), "policy_config")
    except TypeError as err:
        raise ValueError(f"policy_config for policy {name!r}: {err}") from None


def cpu_train_defaults(name: str) -> dict[str, Any]:
    """Registered policy class ``name``'s CPU-sized training settings (``{}``: TrainConfig's own)."""
    return dict(_REGISTRY[name].cpu_train) if name in _REGISTRY else {}


def policy_class(name: str) -> type[Policy]:
    """Registered policy class ``name`` (a clear error for an unknown name)."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown policy {name!r}; registered: {policy_names()}")
    return _REGISTRY[name]


def config_value(cls: type[Policy], config: Mapping[str, Any] | Any, field: str) -> Any:
    """Field ``field`` of a ``cls`` policy config given as a (possibly partial) dict or as the
    dataclass; a field the dict leaves out has the config class's default."""
    if not isinstance(config, Mapping):
        return getattr(config, field)
    if field in config:
        return config[field]
    spec = {f.name: f for f in dataclasses.fields(cls.Config)}[field]
    return spec.default_factory() if spec.default is dataclasses.MISSING else spec.default


def policy_capabilities(name: str, config: Mapping[str, Any] | Any) -> frozenset[str]:
    """:meth:`Policy.capabilities` of registered class ``name`` with ``config`` (nothing is built)."""
    return policy_class(name).capabilities(config)


def stochastic_problem(name: str, config: Mapping[str, Any] | Any) -> str | None:
    """Why policy ``name`` with ``config`` has no action distribution, as one phrase naming what to
    set (``policy_config.head must be 'gaussian'``); ``None`` when it has one. Nothing is built."""
    settings = policy_class(name).enabling_settings(STOCHASTIC, config)
    if settings == {}:
        return None
    if settings is not None:
        return " and ".join(f"policy_config.{k} must be {v!r}" for k, v in _flat(settings))
    able = [_how_able(n) for n in policy_names() if _REGISTRY[n].enabling_settings(STOCHASTIC, {}) is not None]
    return f"policy {name!r} has no action distribution (use {', '.join(able)})"


def require_stochastic(name: str, config: Mapping[str, Any] | Any, where: str) -> None:
    """Refuse (``ValueError``, one line naming what to set) policy ``name`` with ``config`` when it has
    no action distribution, before anything is built; ``where`` names what needs one (``on-policy RL``)."""
    problem = stochastic_problem(name, config)
    if problem is not None:
        raise ValueError(f"{where} needs the policy's action log-probabilities: {problem}")


def _how_able(name: str) -> str:
    # "mlp with head=gaussian": how registered class ``name`` gets an action distribution.
    settings = _flat(_REGISTRY[name].enabling_settings(STOCHASTIC, {}) or {})
    return name + (" with " + ", ".join(f"{k}={v}" for k, v in settings) if settings else "")


def _flat(settings: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in settings.items():
        out += _flat(value, f"{prefix}{key}.") if isinstance(value, dict) else [(f"{prefix}{key}", value)]
    return out


def build_policy(name: str, config: dict[str, Any] | Any, obs_dim: int, action_dim: int,
                 steps_to_go: StepsToGoHeadConfig | dict[str, Any] | None = None) -> Policy:
    """Instantiate a registered policy from its name and config (a dataclass or a plain dict).

    ``steps_to_go`` attaches a steps-to-go head with that config.
    """
    cls = policy_class(name)
    if isinstance(config, dict):
        valid = {f.name for f in dataclasses.fields(cls.Config)}
        unknown = sorted(set(config) - valid)
        if unknown:
            raise ValueError(f"policy_config: unknown field(s) {unknown} for policy {name!r}; valid: {sorted(valid)}")
        config = cls.Config(**_tuples(config))
    policy = cls(config, obs_dim, action_dim)
    if steps_to_go is not None:
        policy.attach_steps_to_go(steps_to_go if isinstance(steps_to_go, StepsToGoHeadConfig)
                                  else StepsToGoHeadConfig(**_tuples(steps_to_go)))
    return policy


def _tuples(d: dict[str, Any]) -> dict[str, Any]:
    # YAML and torch.load give lists where the configs declare tuples.
    return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}


def save_policy(policy: Policy, path: str | Path, extra: dict[str, Any] | None = None) -> None:
    """Write a self-contained checkpoint: class name, config, shapes, weights (with normalisers)."""
    payload = policy_payload(policy)
    payload["extra"] = extra or {}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)  # atomic: a kill never leaves a half-written checkpoint


def load_policy(path: str | Path) -> Policy:
    """Load a checkpoint written by :func:`save_policy` (or a training checkpoint holding one)."""
    path = Path(path)
    payload = read_checkpoint(path, "policy checkpoint")
    if isinstance(payload, dict) and "policy_checkpoint" in payload:
        payload = payload["policy_checkpoint"]
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not an automimic policy checkpoint (format {CHECKPOINT_FORMAT})")
    return policy_from_payload(payload)


def policy_payload(policy: Policy) -> dict[str, Any]:
    """The in-memory checkpoint dict (what :func:`save_policy` writes), for sending to workers.

    The weights are CPU copies wherever the policy lives, so a checkpoint of a policy trained on a
    GPU loads on a machine without one and rollout workers never touch the GPU.
    """
    return {
        "format": CHECKPOINT_FORMAT, "policy": policy.name, "config": dataclasses.asdict(policy.config),
        "obs_dim": policy.obs_dim, "action_dim": policy.action_dim,
        "steps_to_go": dataclasses.asdict(policy.steps_to_go.config) if policy.steps_to_go is not None else None,
        "state_dict": {k: v.detach().cpu().clone() for k, v in policy.state_dict().items()}, "extra": {},
    }


def policy_from_payload(payload: dict[str, Any]) -> Policy:
    """Inverse of :func:`policy_payload`. Leaves torch's global RNG where it was.

    Building the modules draws initial weights that the payload then overwrites; without the fork
    those draws would shift every later global draw (e.g. training noise) by whether a worker
    happened to run in this process, and in-process runs would differ from worker-process runs.
    """
    with torch.random.fork_rng(devices=[]):
        policy = build_policy(payload["policy"], payload["config"], payload["obs_dim"], payload["action_dim"],
                              steps_to_go=payload.get("steps_to_go"))
    policy.load_state_dict(payload["state_dict"], strict=True)
    policy.eval()
    return policy
