"""Diffusion Policy (Chi et al. 2023): a denoiser over action chunks conditioned on observation history.

A 1-D temporal U-Net (Conv1d residual blocks, GroupNorm + Mish, FiLM conditioning on a sinusoidal
timestep embedding plus the flattened per-step observation features) predicts the noise added to a
normalised action chunk. Training is DDPM epsilon-prediction MSE; inference runs DDIM with
``num_inference_steps`` steps (both through the ``diffusers`` schedulers, cosine betas).

Choices (the first three follow the paper's reference code):

* **Action normalisation** is per-dimension min-max to ``[-1, 1]`` (range floored at
  ``action_range_floor`` so a constant dimension maps to 0), and the scheduler clips predicted clean
  samples to ``[-1, 1]``: the sampler can then never leave the range of the demonstrated actions.
* **EMA**: the policy holds ``ema``, a frozen copy of its encoder + denoiser that
  :meth:`DiffusionPolicy.after_optimizer_step` moves toward the live weights with decay
  ``min(ema_decay, 1 - (1 + step) ** -ema_power)`` (diffusers' ``EMAModel`` warm-up, so early
  averages do not drag the random init along). It lives in the ``state_dict``, so every checkpoint
  holds it, and :meth:`DiffusionPolicy.predict_chunk` samples with it (``use_ema_for_inference``).
  Its parameters never get a gradient, so AdamW leaves them alone (no weight decay either).
* **Padding**: chunk slots past the episode end hold the repeated last action and *are* trained on
  (``action_mask`` is ignored), as in the reference code; the history padding (first observation
  repeated) matches what the rollout engine feeds at an episode's start.
* **Sampling noise**: every query starts DDIM from fresh Gaussian noise drawn from torch's global RNG,
  which the rollout actors reseed per episode, so rollouts are reproducible. ``deterministic=True``
  runs the deterministic sampler (``eta = 0``) from that noise; ``deterministic=False`` uses
  ``eta = ddim_eta``. A *fixed* initial noise (a pure function of the history) was tried and rejected:
  on point/reach, whose expert detours through random waypoints, it re-selects the same detour mode at
  every re-plan and success fell from 1.0 to 0.15 (a 1000-step training run).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from automimic.data.normalize import Normalizer
from automimic.data.transitions import Transitions
from automimic.policies.base import Policy, randn_rows, register_policy
from automimic.policies.encoders import ObservationEncoder


@dataclass
class DiffusionConfig:
    """Configuration of :class:`DiffusionPolicy`.

    Args:
        obs_keys: observation keys to concatenate (filled from the data when empty).
        image_keys: camera keys, each encoded by its own small ResNet.
        history: observation steps the denoiser is conditioned on.
        chunk: actions predicted per query (divisible by ``2 ** (len(down_dims) - 1)``).
        execute_steps: actions of each chunk executed before planning again.
        feature_dim: per-step observation feature width.
        obs_std_floor: smallest std the state normaliser divides by.
        image_width: base width of the image CNNs.
        image_size: side of the camera frames the env must render for this policy.
        crop_size: image crop side (random in training, central in evaluation); 0 keeps the frame.
        down_dims: U-Net channel widths per level (each level but the last halves the time axis); the
            paper uses (256, 512, 1024) on a GPU, these defaults train at ~10 steps/s on one CPU core.
        kernel_size: temporal convolution kernel (odd).
        n_groups: GroupNorm groups (must divide every width in ``down_dims``).
        time_embed_dim: width of the diffusion-timestep embedding.
        num_train_timesteps: DDPM noise levels in training.
        num_inference_steps: DDIM steps per query.
        ddim_eta: DDIM noise scale of non-deterministic queries (0: same sampler as deterministic ones).
        action_range_floor: smallest half-range the min-max action normaliser divides by.
        ema_decay: ceiling of the EMA decay.
        ema_power: EMA warm-up power (decay ``1 - (1 + step) ** -power`` until it reaches the ceiling).
        use_ema_for_inference: sample with the EMA weights (else the live ones).
    """

    obs_keys: tuple[str, ...] = ()
    image_keys: tuple[str, ...] = ()
    history: int = 2
    chunk: int = 16
    execute_steps: int = 8
    feature_dim: int = 64
    obs_std_floor: float = 0.1
    image_width: int = 16
    image_size: int = 84
    crop_size: int = 0
    down_dims: tuple[int, ...] = (32, 64, 128)
    kernel_size: int = 5
    n_groups: int = 8
    time_embed_dim: int = 64
    num_train_timesteps: int = 100
    num_inference_steps: int = 10
    ddim_eta: float = 0.0
    action_range_floor: float = 1e-2
    ema_decay: float = 0.995
    ema_power: float = 0.75
    use_ema_for_inference: bool = True

    def __post_init__(self) -> None:
        for name in ("history", "chunk", "execute_steps", "feature_dim", "kernel_size", "n_groups",
                     "time_embed_dim", "num_train_timesteps", "num_inference_steps"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.execute_steps > self.chunk:
            raise ValueError(f"execute_steps must be <= chunk ({self.chunk}), got {self.execute_steps}")
        if not self.down_dims or any(d <= 0 or d % self.n_groups for d in self.down_dims):
            raise ValueError(f"down_dims must be positive multiples of n_groups={self.n_groups}, got {self.down_dims}")
        factor = 2 ** (len(self.down_dims) - 1)
        if self.chunk % factor:
            raise ValueError(f"chunk must be divisible by {factor} (the U-Net halves it {len(self.down_dims) - 1} "
                             f"times for down_dims={self.down_dims}), got {self.chunk}")
        if self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {self.kernel_size}")
        if self.num_inference_steps > self.num_train_timesteps:
            raise ValueError(f"num_inference_steps must be <= num_train_timesteps ({self.num_train_timesteps}), "
                             f"got {self.num_inference_steps}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.ddim_eta < 0 or self.action_range_floor <= 0 or self.ema_power <= 0:
            raise ValueError(f"ddim_eta must be >= 0 and action_range_floor, ema_power > 0, got "
                             f"{self.ddim_eta}, {self.action_range_floor}, {self.ema_power}")


def _conv_block(cin: int, cout: int, kernel: int, groups: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv1d(cin, cout, kernel, padding=kernel // 2), nn.GroupNorm(groups, cout), nn.Mish())


class ConditionalResBlock1D(nn.Module):
    """Two conv blocks; the condition scales and shifts (FiLM) the first one's output per channel."""

    def __init__(self, cin: int, cout: int, cond_dim: int, kernel: int, groups: int) -> None:
        super().__init__()
        self.block1 = _conv_block(cin, cout, kernel, groups)
        self.block2 = _conv_block(cout, cout, kernel, groups)
        self.film = nn.Sequential(nn.Mish(), nn.Linear(cond_dim, 2 * cout))
        self.skip = nn.Conv1d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """``x`` ``(B, C_in, T)``, ``cond`` ``(B, cond_dim)`` -> ``(B, C_out, T)``."""
        scale, shift = self.film(cond)[:, :, None].chunk(2, dim=1)
        return self.block2(self.block1(x) * scale + shift) + self.skip(x)


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding ``(B, dim)`` of integer diffusion timesteps ``(B,)``."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / max(1, half - 1))
    args = t.float()[:, None] * freqs[None]
    return torch.cat([args.sin(), args.cos(), torch.zeros(len(t), dim - 2 * half, device=t.device)], dim=-1)


class ConditionalUnet1D(nn.Module):
    """Noise prediction ``(B, T, A)`` from noisy chunks ``(B, T, A)``, timesteps and a global condition."""

    def __init__(self, action_dim: int, cond_dim: int, cfg: DiffusionConfig) -> None:
        super().__init__()
        k, g, e = cfg.kernel_size, cfg.n_groups, cfg.time_embed_dim
        self.embed_dim = e
        self.time_mlp = nn.Sequential(nn.Linear(e, 4 * e), nn.Mish(), nn.Linear(4 * e, e))
        cond_dim += e
        dims = [action_dim, *cfg.down_dims]
        last = len(cfg.down_dims) - 1
        self.down = nn.ModuleList(nn.ModuleList([
            ConditionalResBlock1D(cin, cout, cond_dim, k, g), ConditionalResBlock1D(cout, cout, cond_dim, k, g),
            nn.Conv1d(cout, cout, 3, 2, 1) if i < last else nn.Identity()])
            for i, (cin, cout) in enumerate(zip(dims[:-1], dims[1:])))
        mid = cfg.down_dims[-1]
        self.mid = nn.ModuleList([ConditionalResBlock1D(mid, mid, cond_dim, k, g) for _ in range(2)])
        self.up = nn.ModuleList(nn.ModuleList([
            ConditionalResBlock1D(2 * cout, cin, cond_dim, k, g), ConditionalResBlock1D(cin, cin, cond_dim, k, g),
            nn.ConvTranspose1d(cin, cin, 4, 2, 1)])
            for cin, cout in reversed(list(zip(cfg.down_dims[:-1], cfg.down_dims[1:]))))
        self.final = nn.Sequential(_conv_block(cfg.down_dims[0], cfg.down_dims[0], k, g),
                                   nn.Conv1d(cfg.down_dims[0], action_dim, 1))

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Predicted noise for ``x`` ``(B, T, A)`` at timesteps ``t`` ``(B,)`` given ``cond`` ``(B, C)``."""
        cond = torch.cat([self.time_mlp(timestep_embedding(t, self.embed_dim)), cond], dim=-1)
        h, skips = x.transpose(1, 2), []
        for res1, res2, down in self.down:
            h = res2(res1(h, cond), cond)
            skips.append(h)
            h = down(h)
        for block in self.mid:
            h = block(h, cond)
        for res1, res2, up in self.up:  # one level fewer than down: the finest skip is unused, as in the reference
            h = up(res2(res1(torch.cat([h, skips.pop()], dim=1), cond), cond))
        return self.final(h).transpose(1, 2)


class _Model(nn.Module):
    """What the EMA averages: the observation encoder and the denoiser."""

    def __init__(self, encoder: ObservationEncoder, denoiser: ConditionalUnet1D) -> None:
        super().__init__()
        self.encoder = encoder
        self.denoiser = denoiser

    def condition(self, obs: torch.Tensor, images: dict[str, torch.Tensor] | None) -> torch.Tensor:
        """Flattened history features ``(B, history * F)``."""
        return self.encoder(obs, images).flatten(1)


def ddim_sample(denoise_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], scheduler: Any,
                noise: torch.Tensor, num_inference_steps: int, eta: float = 0.0,
                generator: torch.Generator | list[torch.Generator] | None = None) -> torch.Tensor:
    """Run a DDIM ``scheduler`` from ``noise`` to a clean sample with ``denoise_fn(x_t, t) -> epsilon``."""
    scheduler.set_timesteps(num_inference_steps)
    x = noise
    for t in scheduler.timesteps:
        eps = denoise_fn(x, t.expand(len(x)))
        x = scheduler.step(eps, t, x, eta=eta, generator=generator).prev_sample
    return x


@register_policy("diffusion")
class DiffusionPolicy(Policy):
    """Observation history ``(B, history, D)`` -> action chunk ``(B, chunk, A)`` by DDIM denoising."""

    Config = DiffusionConfig
    # The policy benchmark (docs/policies.md) learns its tasks at 2,000 x 64 in minutes on 2 cores; TrainConfig's
    # 5,000 x 256 took 23 minutes on point/reach for no better success.
    cpu_train = {"steps": 2000, "batch_size": 64}

    def __init__(self, config: DiffusionConfig, obs_dim: int, action_dim: int) -> None:
        super().__init__(config, obs_dim, action_dim)
        from diffusers import DDIMScheduler, DDPMScheduler  # slow import: only where a diffusion policy is built

        self.history, self.chunk = config.history, config.chunk
        encoder = ObservationEncoder(obs_dim, config.image_keys, config.feature_dim, config.obs_std_floor,
                                     config.image_width, config.crop_size)
        denoiser = ConditionalUnet1D(action_dim, config.history * config.feature_dim, config)
        self.model = _Model(encoder, denoiser)
        self.ema = copy.deepcopy(self.model).requires_grad_(False)
        self.register_buffer("ema_steps", torch.zeros((), dtype=torch.long))
        # Min-max scaling held in a Normalizer: mean = range centre, std = half-range.
        self.action_norm = Normalizer(action_dim, min_std=config.action_range_floor)
        kwargs = dict(num_train_timesteps=config.num_train_timesteps, beta_schedule="squaredcos_cap_v2",
                      clip_sample=True, prediction_type="epsilon")
        self.train_scheduler = DDPMScheduler(**kwargs)
        self.sample_scheduler = DDIMScheduler(**kwargs, set_alpha_to_one=True)

    def train(self, mode: bool = True) -> "DiffusionPolicy":
        """Set the training mode; the EMA copy stays in evaluation mode (central image crops)."""
        super().train(mode)
        self.ema.eval()  # it only ever samples, and rollouts do not switch the policy to eval()
        return self

    @property
    def execution(self) -> tuple[str, int, float]:
        """Receding horizon: execute the first ``execute_steps`` actions of each chunk, then re-plan."""
        return ("chunk", self.config.execute_steps, 0.0)

    def fit_normalizers(self, data: Transitions) -> None:
        """Fit state statistics and the action range, then restart the EMA from the live weights."""
        self.model.encoder.obs_norm.fit(data.obs)
        lo, hi = data.actions.min(0).values, data.actions.max(0).values
        self.action_norm.mean.copy_((hi + lo) / 2)
        self.action_norm.std.copy_(((hi - lo) / 2).clamp_min(self.config.action_range_floor))
        self.ema.load_state_dict(self.model.state_dict())
        self.ema_steps.zero_()

    @torch.no_grad()
    def after_optimizer_step(self) -> None:
        """Move the EMA toward the live weights (warm-up decay); copy buffers (normaliser statistics)."""
        self.ema_steps += 1
        decay = min(self.config.ema_decay, 1.0 - (1.0 + self.ema_steps.item()) ** -self.config.ema_power)
        for avg, new in zip(self.ema.parameters(), self.model.parameters()):
            avg.lerp_(new, 1.0 - decay)
        for avg, new in zip(self.ema.buffers(), self.model.buffers()):
            avg.copy_(new)

    def features(self, obs: torch.Tensor) -> torch.Tensor:
        """Live encoder features of ``obs`` ``(B, D)`` as a history of that step repeated, flattened."""
        if self.image_keys:
            raise ValueError("steps-to-go features of an image diffusion policy need images; not supported")
        return self.model.condition(obs[:, None].expand(-1, self.history, -1), None)

    @property
    def feature_dim(self) -> int:
        """``history * feature_dim``."""
        return self.history * self.config.feature_dim

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """DDPM epsilon-prediction MSE on normalised chunks (padding past the episode end included)."""
        x0 = self.normalize_actions(batch["actions"])
        noise = torch.randn_like(x0)
        t = torch.randint(0, self.config.num_train_timesteps, (len(x0),), device=x0.device)
        noisy = self.train_scheduler.add_noise(x0, noise, t)
        cond = self.model.condition(batch["obs"], batch.get("images"))
        mse = F.mse_loss(self.model.denoiser(noisy, t, cond), noise)
        return {"loss": mse, "mse": mse}

    def practice_latent(self, generators: Sequence[torch.Generator]) -> torch.Tensor:
        """The DDIM starting noise ``(n, chunk * A)`` of each practice query, one row per generator."""
        return randn_rows(len(generators), (self.chunk * self.action_dim,), generators)

    def action_distribution(self, obs: torch.Tensor,
                            latent: torch.Tensor | None = None) -> torch.distributions.Distribution:
        """Gaussian around the first action DDIM (eta 0) denoises from starting noise ``latent``.

        With the noise fixed, the sampled chunk is a differentiable function of the weights, so
        REINFORCE can score an executed action again after an update (gradients flow through every
        denoising step of the live model). The std is a placeholder that practice's ``min_std`` replaces.
        """
        if latent is None:
            raise ValueError("a diffusion policy's action distribution needs the starting noise (practice_latent)")
        cond = self.model.condition(obs, None)
        x = ddim_sample(lambda x, t: self.model.denoiser(x, t, cond), self.sample_scheduler,
                        latent.reshape(len(obs), self.chunk, self.action_dim), self.config.num_inference_steps)
        mean = x[:, 0]
        return torch.distributions.Independent(torch.distributions.Normal(mean, torch.full_like(mean, 1e-3)), 1)

    def practice_execution(self) -> None:
        """Practise the live weights starting from the EMA ones, re-planning every step."""
        self.model.load_state_dict(self.ema.state_dict())
        self.config.use_ema_for_inference = False
        self.config.execute_steps = 1

    @torch.no_grad()
    def predict_chunk(self, obs: np.ndarray, images: dict[str, np.ndarray] | None = None,
                      deterministic: bool = True, generators: Sequence[torch.Generator] | None = None) -> np.ndarray:
        """Action chunks ``(B, chunk, A)`` in env units by DDIM from histories ``(B, history, D)``."""
        model = self.ema if self.config.use_ema_for_inference else self.model
        obs_t = torch.as_tensor(obs, dtype=torch.float32)
        images_t = {k: torch.as_tensor(v) for k, v in images.items()} if images else None
        cond = model.condition(obs_t, images_t)
        noise = randn_rows(len(obs_t), (self.chunk, self.action_dim), generators)
        x = ddim_sample(lambda x, t: model.denoiser(x, t, cond), self.sample_scheduler, noise,
                        self.config.num_inference_steps, 0.0 if deterministic else self.config.ddim_eta,
                        list(generators) if generators is not None else None)
        return self.unnormalize_actions(x).numpy()
