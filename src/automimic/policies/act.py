"""ACT (Action Chunking with Transformers, Zhao et al. 2023): a CVAE transformer that predicts action chunks.

Training encodes the expert's action chunk (with the current observation) into a latent style
variable ``z`` (the CVAE encoder); the policy — a transformer encoder over ``[z, observation
history tokens]`` and a decoder with one learned query per future step — reconstructs the chunk
with an L1 loss plus ``kl_weight`` times the KL of ``z`` to a unit Gaussian. At execution ``z = 0``
(the prior mean), or a draw from the prior when asked to sample, which gives diverse yet
demo-like behaviour for practice rollouts.

Every decoder layer configured is used: the output is read after the last one. (The original
implementation built ``dec_layers`` layers but returned the first layer's output, so the rest
trained nothing useful; here ``dec_layers=1`` reproduces that behaviour deliberately.)
Padded chunk slots past an episode's end are masked out of the loss, as in the original.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
import torch
from torch import nn

from automimic.data.normalize import Normalizer
from automimic.data.transitions import Transitions
from automimic.policies.base import Policy, randn_rows, register_policy
from automimic.policies.encoders import ObservationEncoder


@dataclass
class ACTConfig:
    """Configuration of :class:`ACTPolicy`.

    Args:
        obs_keys: state keys to concatenate (filled from the data when empty).
        image_keys: camera keys to encode with a ResNet-style CNN each.
        history: observation steps the policy reads.
        chunk: actions predicted per query.
        d_model: transformer width (the paper's 512 is sized for a GPU; 64 trains at ~12 steps/s
            of 64 samples on one CPU core and suffices for state-based Meta-World tasks).
        heads: attention heads.
        enc_layers: transformer encoder layers (policy and CVAE encoder alike).
        dec_layers: transformer decoder layers (all are used).
        ff_dim: feed-forward width inside the transformer layers.
        dropout: transformer dropout.
        latent_dim: size of the CVAE style variable ``z``.
        kl_weight: weight of the KL term (the paper uses 10).
        execution: ``ensemble`` (temporal ensembling: query every step, blend overlapping chunks)
            or ``chunk`` (execute ``execute_steps`` actions of a chunk, then query again).
        ensemble_k: ensembling weight decay ``k`` in ``exp(-k i)``, 0.01 as in the paper.
        execute_steps: actions run per chunk in ``chunk`` mode (0: the whole chunk).
        obs_std_floor: smallest std the state normaliser divides by.
        image_width: base width of the CNN.
        image_size: side of the camera frames the env must render for this policy.
        crop_size: random-crop side for images in training (0: no crop).
    """

    obs_keys: tuple[str, ...] = ()
    image_keys: tuple[str, ...] = ()
    history: int = 1
    chunk: int = 20
    d_model: int = 64
    heads: int = 4
    enc_layers: int = 2
    dec_layers: int = 2
    ff_dim: int = 256
    dropout: float = 0.1
    latent_dim: int = 32
    kl_weight: float = 10.0
    execution: Literal["ensemble", "chunk"] = "ensemble"
    ensemble_k: float = 0.01
    execute_steps: int = 0
    obs_std_floor: float = 0.1
    image_width: int = 16
    image_size: int = 84
    crop_size: int = 0

    def __post_init__(self) -> None:
        for name in ("history", "chunk", "d_model", "heads", "enc_layers", "dec_layers", "ff_dim", "latent_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"act.{name} must be >= 1, got {getattr(self, name)}")
        if self.d_model % self.heads:
            raise ValueError(f"act.d_model ({self.d_model}) must be divisible by act.heads ({self.heads})")
        if self.execution not in ("ensemble", "chunk"):
            raise ValueError(f"act.execution must be 'ensemble' or 'chunk', got {self.execution!r}")
        if not 0 <= self.execute_steps <= self.chunk:
            raise ValueError(f"act.execute_steps must be in [0, chunk={self.chunk}], got {self.execute_steps}")
        if self.kl_weight < 0 or self.ensemble_k < 0:
            raise ValueError("act.kl_weight and act.ensemble_k must be >= 0")


def _encoder(cfg: ACTConfig) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(cfg.d_model, cfg.heads, cfg.ff_dim, cfg.dropout, batch_first=True,
                                       norm_first=True)
    return nn.TransformerEncoder(layer, cfg.enc_layers, enable_nested_tensor=False)


@register_policy("act")
class ACTPolicy(Policy):
    """Observation history ``(B, history, D)`` (+ images) -> action chunk ``(B, chunk, A)``."""

    Config = ACTConfig
    # The policy benchmark (docs/policies.md) learns its tasks at 2,000 x 64 in minutes on 2 cores; TrainConfig's
    # 5,000 x 256 took 23 minutes on point/reach for no better success.
    cpu_train = {"steps": 2000, "batch_size": 64}

    def __init__(self, config: ACTConfig, obs_dim: int, action_dim: int) -> None:
        super().__init__(config, obs_dim, action_dim)
        self.history, self.chunk = config.history, config.chunk
        d = config.d_model
        self.obs_encoder = ObservationEncoder(obs_dim, config.image_keys, d, config.obs_std_floor,
                                              config.image_width, config.crop_size)
        self.action_norm = Normalizer(action_dim)
        # CVAE encoder: [CLS, obs, a_1..a_chunk] -> (mu, logvar) of z.
        self.cvae_cls = nn.Parameter(torch.zeros(1, 1, d))
        self.cvae_action = nn.Linear(action_dim, d)
        self.cvae_pos = nn.Parameter(torch.randn(1, config.chunk + 2, d) * 0.02)
        self.cvae_encoder = _encoder(config)
        self.to_latent = nn.Linear(d, 2 * config.latent_dim)
        # Policy: encoder over [z, obs history], decoder with one query per future step.
        self.from_latent = nn.Linear(config.latent_dim, d)
        self.enc_pos = nn.Parameter(torch.randn(1, config.history + 1, d) * 0.02)
        self.encoder = _encoder(config)
        self.queries = nn.Parameter(torch.randn(1, config.chunk, d) * 0.02)
        layer = nn.TransformerDecoderLayer(d, config.heads, config.ff_dim, config.dropout, batch_first=True,
                                           norm_first=True)
        self.decoder = nn.TransformerDecoder(layer, config.dec_layers, norm=nn.LayerNorm(d))
        self.action_head = nn.Linear(d, action_dim)

    @property
    def execution(self) -> tuple[str, int, float]:
        """Temporal ensembling with ``ensemble_k``, or chunk execution of ``execute_steps`` actions."""
        return (self.config.execution, self.config.execute_steps or self.config.chunk, self.config.ensemble_k)

    def fit_normalizers(self, data: Transitions) -> None:
        """Fit state and action statistics on the training rows."""
        self.obs_encoder.obs_norm.fit(data.obs)
        self.action_norm.fit(data.actions)

    def _memory(self, obs: torch.Tensor, images: dict[str, torch.Tensor] | None, z: torch.Tensor) -> torch.Tensor:
        tokens = torch.cat([self.from_latent(z)[:, None], self.obs_encoder(obs, images)], dim=1)
        return self.encoder(tokens + self.enc_pos)

    def _decode(self, memory: torch.Tensor) -> torch.Tensor:
        out = self.decoder(self.queries.expand(len(memory), -1, -1), memory)
        return self.action_head(out)

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Masked L1 reconstruction of the normalised chunk + ``kl_weight`` × KL(q(z | chunk, obs) ‖ N(0, I))."""
        obs, images = batch["obs"], batch.get("images")
        target = self.normalize_actions(batch["actions"])
        mask = batch["action_mask"].float()
        cls = self.cvae_cls.expand(len(obs), -1, -1)
        obs_token = self.obs_encoder(obs[:, -1:], _last(images))
        tokens = torch.cat([cls, obs_token, self.cvae_action(target)], dim=1) + self.cvae_pos
        pad = torch.cat([torch.zeros(len(obs), 2, dtype=torch.bool, device=obs.device), ~batch["action_mask"]], dim=1)
        stats = self.to_latent(self.cvae_encoder(tokens, src_key_padding_mask=pad)[:, 0])
        mu, logvar = stats.chunk(2, dim=-1)
        z = mu + (0.5 * logvar).exp() * torch.randn_like(mu)
        pred = self._decode(self._memory(obs, images, z))
        l1 = ((pred - target).abs().mean(-1) * mask).sum() / mask.sum().clamp_min(1.0)
        kl = (-0.5 * (1 + logvar - mu ** 2 - logvar.exp())).sum(-1).mean()
        return {"loss": l1 + self.config.kl_weight * kl, "l1": l1, "kl": kl}

    @torch.no_grad()
    def predict_chunk(self, obs: np.ndarray, images: dict[str, np.ndarray] | None = None,
                      deterministic: bool = True, generators: Sequence[torch.Generator] | None = None) -> np.ndarray:
        """Chunks in env units; ``z = 0`` when deterministic, a prior draw otherwise."""
        obs_t = torch.as_tensor(obs, dtype=torch.float32)
        images_t = {k: torch.as_tensor(v) for k, v in images.items()} if images else None
        z = torch.zeros(len(obs_t), self.config.latent_dim)
        if not deterministic:
            z = randn_rows(len(obs_t), (self.config.latent_dim,), generators)
        return self.unnormalize_actions(self._decode(self._memory(obs_t, images_t, z))).numpy()

    def action_distribution(self, obs: torch.Tensor,
                            latent: torch.Tensor | None = None) -> torch.distributions.Distribution:
        """Gaussian over the *first* normalised action of the chunk for histories ``(B, history, D)`` (``z = 0``).

        ACT learns no action noise: the std is a placeholder of 1e-3 that practice's exploration
        floor (``min_std``) replaces, so REINFORCE moves the chunk's first action.
        """
        z = torch.zeros(len(obs), self.config.latent_dim, device=obs.device)
        mean = self._decode(self._memory(obs, None, z))[:, 0]
        return torch.distributions.Independent(torch.distributions.Normal(mean, torch.full_like(mean, 1e-3)), 1)

    def practice_execution(self) -> None:
        """Re-plan every step and execute the chunk's first action (what practice scores)."""
        self.config.execution, self.config.execute_steps = "chunk", 1

    def features(self, obs: torch.Tensor) -> torch.Tensor:
        """Mean encoder token for the current observation ``(B, D)`` (history filled with it, ``z = 0``)."""
        if self.image_keys:
            raise ValueError("a steps-to-go head on an image ACT policy would need images; not supported")
        history = obs[:, None].expand(-1, self.history, -1)
        return self._memory(history, None, torch.zeros(len(obs), self.config.latent_dim,
                                                       device=obs.device)).mean(dim=1)

    @property
    def feature_dim(self) -> int:
        """The transformer width."""
        return self.config.d_model


def _last(images: dict[str, torch.Tensor] | None) -> dict[str, torch.Tensor] | None:
    return {k: v[:, -1:] for k, v in images.items()} if images else None
