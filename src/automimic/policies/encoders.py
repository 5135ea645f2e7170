"""Observation encoders shared by the chunked policies: normalised state plus camera images.

Images go through a small ResNet-18-style CNN (four stages of two basic blocks, random init).
Widths are configurable and default to a quarter of ResNet-18's because these machines train on
CPU; GroupNorm replaces BatchNorm, as in Diffusion Policy, because batch statistics interact badly
with an EMA of the weights and with small batches. Training crops a random window of each frame
(the standard augmentation for few-demo visuomotor policies); evaluation crops the centre.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from automimic.data.normalize import Normalizer


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, channels // 4) or 1, channels)


class BasicBlock(nn.Module):
    """ResNet basic block: two 3×3 convolutions with a residual connection."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.norm1 = _norm(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.norm2 = _norm(cout)
        self.skip = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), _norm(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual block output."""
        y = F.relu(self.norm1(self.conv1(x)))
        return F.relu(self.norm2(self.conv2(y)) + self.skip(x))


class ResNetEncoder(nn.Module):
    """ResNet-18 layout (2-2-2-2 basic blocks) with base width ``width``; ``(B, 3, H, W)`` -> ``(B, out_dim)``."""

    def __init__(self, out_dim: int, width: int = 16) -> None:
        super().__init__()
        widths = [width, 2 * width, 4 * width, 8 * width]
        layers: list[nn.Module] = [nn.Conv2d(3, width, 3, 2, 1, bias=False), _norm(width), nn.ReLU()]
        cin = width
        for i, w in enumerate(widths):
            layers += [BasicBlock(cin, w, 1 if i == 0 else 2), BasicBlock(w, w, 1)]
            cin = w
        self.body = nn.Sequential(*layers)
        self.proj = nn.Linear(cin, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Globally pooled features of images scaled to [0, 1]."""
        return self.proj(self.body(x).mean(dim=(2, 3)))


def crop(images: torch.Tensor, size: int, random: bool) -> torch.Tensor:
    """Crop ``(N, C, H, W)`` to ``size × size``: a random window per image, or the centre."""
    n, _, h, w = images.shape
    if size >= min(h, w):
        return images
    if not random:
        top, left = (h - size) // 2, (w - size) // 2
        return images[:, :, top: top + size, left: left + size]
    dev = images.device  # a GPU batch draws its windows there: no index tensors cross to and from the host
    tops = torch.randint(0, h - size + 1, (n,), device=dev)
    lefts = torch.randint(0, w - size + 1, (n,), device=dev)
    rows = (tops[:, None] + torch.arange(size, device=dev)[None])[:, None, :, None]
    cols = (lefts[:, None] + torch.arange(size, device=dev)[None])[:, None, None, :]
    return images[torch.arange(n, device=dev)[:, None, None, None],
                  torch.arange(images.shape[1], device=dev)[None, :, None, None], rows, cols]


class ObservationEncoder(nn.Module):
    """Per-step features ``(B, T, F)`` from state histories ``(B, T, D)`` and image histories.

    Args:
        obs_dim: flattened state size (0 allowed for image-only policies).
        image_keys: camera keys; each gets its own CNN.
        feature_dim: output width ``F``.
        obs_std_floor: smallest std the state normaliser divides by.
        image_width: base width of the ResNet-style CNNs.
        crop_size: side of the (random in training, central in evaluation) crop; 0 keeps the frame.
    """

    def __init__(self, obs_dim: int, image_keys: tuple[str, ...], feature_dim: int, obs_std_floor: float = 0.1,
                 image_width: int = 16, crop_size: int = 0) -> None:
        super().__init__()
        self.image_keys = tuple(image_keys)
        self.crop_size = crop_size
        self.obs_norm = Normalizer(obs_dim, min_std=obs_std_floor)
        self.cnns = nn.ModuleDict({k: ResNetEncoder(feature_dim, image_width) for k in self.image_keys})
        self.proj = nn.Linear(obs_dim + feature_dim * len(self.image_keys), feature_dim)

    def forward(self, obs: torch.Tensor, images: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Encode every step of the histories; images are uint8 ``(B, T, H, W, C)``."""
        parts = [self.obs_norm(obs)]
        for key in self.image_keys:
            if images is None or key not in images:
                raise KeyError(f"policy reads camera {key!r} but the observation has no such image")
            frames = images[key]
            b, t = frames.shape[:2]
            # Made contiguous NCHW: left as a channels-last view, oneDNN's convolution backward corrupted
            # the heap (torch 2.13 CPU: ACT with a 4-channel CNN on 24-px frames aborted in backward).
            x = frames.reshape(b * t, *frames.shape[2:]).permute(0, 3, 1, 2).float().contiguous() / 255.0
            x = crop(x, self.crop_size, random=self.training) if self.crop_size else x
            parts.append(self.cnns[key](x).reshape(b, t, -1))
        return self.proj(torch.cat(parts, dim=-1))
