"""Small network building blocks shared by policies, heads, critics and discriminators."""

from __future__ import annotations

from torch import nn


def mlp(width: int, hidden: tuple[int, ...], out: int) -> nn.Sequential:
    """A GELU multilayer perceptron ``width -> hidden... -> out`` (no activation after the last layer)."""
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(width, h), nn.GELU()]
        width = h
    layers.append(nn.Linear(width, out))
    return nn.Sequential(*layers)
