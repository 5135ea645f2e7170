"""A task-conditioned policy: any state policy class, fed the observation plus a task vector.

``MultiTaskPolicy`` wraps a registered policy (MLP, ACT, Diffusion Policy) built for observations
one task vector wider, and a :mod:`task encoder <automimic.policies.task_encoder>` that gives the
vector. Training rows carry their task (``batch["task"]``, from each episode's env id), so one
batch mixes tasks; acting uses the task set by :meth:`set_task` (saved in the config, so workers
and checkpoints act on it too).

The wrapped policy's observation normaliser sees the task vector as identity columns (mean 0,
std 1): the vector is learned at the scale the network reads, and statistics fitted on one task's
demos cannot distort it.

A pretrained policy meets a new task through :meth:`MultiTaskPolicy.with_task`: the vocabulary
grows by that task, whose vector starts at the encoder's choice (the known tasks' mean for the
learned embedding), and every other weight is kept. Few-shot fine-tuning then trains all weights
(``full``) or only the task vectors (``embedding``); see :func:`freeze_for_finetune`.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import torch

from automimic.data.normalize import Normalizer
from automimic.data.transitions import Transitions
from automimic.policies.base import STOCHASTIC, Policy, build_policy, config_value, policy_class, register_policy
from automimic.policies.task_encoder import ENCODERS

#: How a pretrained multi-task policy is fine-tuned on a few demos of a task (``--finetune``).
FINETUNE_MODES = ("full", "embedding")


@dataclass
class MultiTaskConfig:
    """Configuration of :class:`MultiTaskPolicy`.

    Args:
        base: registered class of the wrapped policy (a state policy: MLP, ACT or Diffusion Policy).
        base_config: its config fields.
        tasks: the task vocabulary (env ids), in embedding order.
        task: the task it acts on (one of ``tasks``; default the first).
        encoder: task encoder name (see :data:`automimic.policies.task_encoder.ENCODERS`).
        task_dim: width of a task vector.
        obs_keys: state keys to concatenate (filled from the data when empty).
    """

    base: str = "mlp"
    base_config: dict[str, Any] = field(default_factory=dict)
    tasks: tuple[str, ...] = ()
    task: str = ""
    encoder: str = "learned"
    task_dim: int = 16
    obs_keys: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.tasks:
            raise ValueError("policy_config.tasks: a multi-task policy needs at least one task")
        if len(set(self.tasks)) != len(self.tasks):
            raise ValueError(f"policy_config.tasks: repeated task ids in {list(self.tasks)}")
        if self.task and self.task not in self.tasks:
            raise ValueError(f"policy_config.task {self.task!r} is not one of its tasks {list(self.tasks)}")
        if self.encoder not in ENCODERS:
            raise ValueError(f"policy_config.encoder {self.encoder!r}: expected one of {sorted(ENCODERS)}")
        if self.task_dim <= 0:
            raise ValueError(f"policy_config.task_dim must be positive, got {self.task_dim}")
        if self.base == "multitask":
            raise ValueError("policy_config.base: a multi-task policy cannot wrap another multi-task policy")
        if self.base_config.get("image_keys"):
            raise ValueError("policy_config.base_config.image_keys: multi-task policies read state only for now")


@register_policy("multitask")
class MultiTaskPolicy(Policy):
    """``base([obs, task_vector(task)])``; see the module docstring."""

    Config = MultiTaskConfig

    @classmethod
    def capabilities(cls, config: Mapping[str, Any] | MultiTaskConfig) -> frozenset[str]:
        """Its base's, as far as the wrapper forwards them: stochastic iff ``base`` with ``base_config`` is."""
        base = policy_class(config_value(cls, config, "base"))
        return base.capabilities(config_value(cls, config, "base_config")) & {STOCHASTIC}

    @classmethod
    def enabling_settings(cls, capability: str, config: Mapping[str, Any] | MultiTaskConfig) -> dict[str, Any] | None:
        """Its base's settings for ``capability``, under ``base_config``."""
        if capability != STOCHASTIC:
            return None
        base = policy_class(config_value(cls, config, "base"))
        settings = base.enabling_settings(capability, config_value(cls, config, "base_config"))
        return {"base_config": settings} if settings else settings

    def __init__(self, config: MultiTaskConfig, obs_dim: int, action_dim: int) -> None:
        super().__init__(config, obs_dim, action_dim)
        self.task_encoder = ENCODERS[config.encoder](tuple(config.tasks), config.task_dim)
        base_config = {**config.base_config, "obs_keys": tuple(config.obs_keys)}
        self.base = build_policy(config.base, base_config, obs_dim + config.task_dim, action_dim)
        self.action_norm = self.base.action_norm
        self.history = self.base.history
        self.chunk = self.base.chunk
        # Per-row task indices of the batch being trained on (None: every row acts on config.task).
        self._rows: torch.Tensor | None = None

    # tasks ---------------------------------------------------------------------------------------
    @property
    def tasks(self) -> tuple[str, ...]:  # type: ignore[override]
        """The task vocabulary."""
        return tuple(self.config.tasks)

    def set_task(self, env_id: str) -> None:
        """Act on ``env_id`` from now on (refused, in one line, if it has no task vector)."""
        if env_id not in self.config.tasks:
            raise ValueError(f"multi-task policy has no task {env_id!r}; it knows {list(self.config.tasks)} "
                             "(adapt it with --init and demos of that task)")
        self.config.task = env_id

    @property
    def task_index(self) -> int:
        """Index of the acting task."""
        return self.config.tasks.index(self.config.task) if self.config.task else 0

    def with_task(self, env_id: str) -> "MultiTaskPolicy":
        """A copy acting on ``env_id``, with a fresh task vector if the vocabulary lacks it."""
        tasks = tuple(self.config.tasks) + (() if env_id in self.config.tasks else (env_id,))
        config = dataclasses.replace(self.config, tasks=tasks, task=env_id)
        with torch.random.fork_rng(devices=[]):
            grown = MultiTaskPolicy(config, self.obs_dim, self.action_dim)
        if self.steps_to_go is not None:
            grown.attach_steps_to_go(self.steps_to_go.config)
        state = {k: v.clone() for k, v in self.state_dict().items() if not k.startswith("task_encoder.")}
        old = {k[len("task_encoder."):]: v for k, v in self.state_dict().items() if k.startswith("task_encoder.")}
        state.update({f"task_encoder.{k}": v for k, v in grown.task_encoder.grown_state(old).items()})
        grown.load_state_dict(state, strict=True)
        return grown.eval()

    # conditioning --------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _per_row(self, rows: torch.Tensor | None) -> Iterator[None]:
        self._rows = rows
        try:
            yield
        finally:
            self._rows = None

    def _widen(self, obs: torch.Tensor) -> torch.Tensor:
        """``obs`` ``(B, D)`` or ``(B, H, D)`` with each row's task vector appended to every step."""
        rows = self._rows if self._rows is not None else torch.full((obs.shape[0],), self.task_index, dtype=torch.long,
                                                                    device=obs.device)
        vec = self.task_encoder(rows)
        if obs.dim() == 3:
            vec = vec[:, None].expand(-1, obs.shape[1], -1)
        return torch.cat([obs, vec.to(obs.dtype)], dim=-1)

    def _widen_np(self, obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self._widen(torch.as_tensor(obs, dtype=torch.float32)).numpy()

    # training ------------------------------------------------------------------------------------
    def fit_normalizers(self, data: Transitions) -> None:
        """Fit the base's statistics on the state columns; the task columns pass through unchanged."""
        widened = dataclasses.replace(data, obs=torch.cat([data.obs, data.obs.new_zeros(
            *data.obs.shape[:-1], self.config.task_dim)], dim=-1))
        self.base.fit_normalizers(widened)
        width = self.obs_dim + self.config.task_dim
        for module in self.base.modules():
            if isinstance(module, Normalizer) and module is not self.base.action_norm and module.mean.numel() == width:
                module.mean[self.obs_dim:] = 0.0
                module.std[self.obs_dim:] = 1.0

    def training_loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The base's losses (and the steps-to-go loss) with each row conditioned on its own task."""
        with self._per_row(batch.get("task")):
            return super().training_loss(batch)

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The base's loss on task-widened observations."""
        return self.base.loss({**batch, "obs": self._widen(batch["obs"])})

    def features(self, obs: torch.Tensor) -> torch.Tensor:
        """The base's features of the task-widened observation."""
        return self.base.features(self._widen(obs))

    @property
    def feature_dim(self) -> int:
        """The base's feature width."""
        return self.base.feature_dim

    def after_optimizer_step(self) -> None:
        """The base's per-step hook (e.g. Diffusion Policy's EMA)."""
        self.base.after_optimizer_step()

    # acting --------------------------------------------------------------------------------------
    def act(self, obs: np.ndarray, deterministic: bool = True,
            generators: Sequence[torch.Generator] | None = None) -> np.ndarray:
        """The base's action for ``obs`` on the acting task."""
        return self.base.act(self._widen_np(obs), deterministic, generators)

    def predict_chunk(self, obs: np.ndarray, images: dict[str, np.ndarray] | None = None,
                      deterministic: bool = True, generators: Sequence[torch.Generator] | None = None) -> np.ndarray:
        """The base's chunk for histories ``obs`` on the acting task."""
        return self.base.predict_chunk(self._widen_np(obs), images, deterministic, generators)

    @property
    def execution(self) -> tuple[str, int, float]:
        """The base's chunk execution."""
        return self.base.execution

    def action_distribution(self, obs: torch.Tensor,
                            latent: torch.Tensor | None = None) -> torch.distributions.Distribution:
        """The base's action distribution on the acting task."""
        return self.base.action_distribution(self._widen(obs), latent)

    def practice_latent(self, generators: Sequence[torch.Generator]) -> torch.Tensor:
        """The base's practice randomness."""
        return self.base.practice_latent(generators)

    def practice_execution(self) -> None:
        """The base's practice execution."""
        self.base.practice_execution()

    def reset(self) -> None:
        """The base's per-episode reset."""
        self.base.reset()


def freeze_for_finetune(policy: Policy, mode: str) -> None:
    """Make only the weights that ``mode`` fine-tunes trainable: ``full`` all of them, ``embedding``
    only the task vectors (a multi-task policy's)."""
    if mode not in FINETUNE_MODES:
        raise ValueError(f"finetune: expected one of {FINETUNE_MODES}, got {mode!r}")
    if mode == "full":
        return
    if not isinstance(policy, MultiTaskPolicy):
        raise ValueError(f"finetune={mode!r} trains only task vectors; the --init policy ({policy.name}) has none")
    for name, p in policy.named_parameters():
        p.requires_grad_(name.startswith("task_encoder."))


def pretrained_start(policy: Policy, env_id: str) -> Policy:
    """``policy`` ready to fine-tune on ``env_id``: a multi-task policy gets (or reuses) that task's
    vector and acts on it; a single-task policy is returned as it is (a plain warm start)."""
    if isinstance(policy, MultiTaskPolicy):
        return policy.with_task(env_id)
    return policy
