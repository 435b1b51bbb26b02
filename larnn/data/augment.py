"""Augmentation of inertial signals for training: rotation, scaling, jitter, time warping.

Each transform acts on a batch of raw signals x (B, T, C) (before normalisation, so a
rotation mixes the axes of a physical vector) and draws its randomness from a
torch.Generator, so a seeded run is repeatable. All are off by default (`AugmentConfig()`).

- rotation: one random rotation per sample, applied to every x/y/z triple of channels (the
  sensors of one device turn together); angle uniform in [0, rotation] degrees about a
  uniformly random axis.
- scale: every channel of a sample times a factor ~ N(1, scale).
- jitter: Gaussian noise of std `jitter` on every value.
- time_warp: the time axis resampled along a smooth random monotone path whose local speed
  varies by about +- time_warp, ends fixed (Um et al., 2017).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from larnn.config_base import JsonConfig, require

WARP_KNOTS = 4  # interior points of the time warp's speed curve


@dataclass(frozen=True)
class AugmentConfig(JsonConfig):
    """Strength of each augmentation; 0 switches it off."""

    rotation: float = 0.0  # degrees, at most 180
    scale: float = 0.0  # std of the per-channel factor around 1
    jitter: float = 0.0  # std of additive noise, in the signal's units
    time_warp: float = 0.0  # relative variation of the local speed, below 1

    def __post_init__(self) -> None:
        for name, top in (("rotation", 180.0), ("scale", 1.0), ("jitter", math.inf)):
            value = getattr(self, name)
            require(
                isinstance(value, (int, float)) and 0 <= value <= top,
                "AugmentConfig",
                name,
                f"must be a number in [0, {top}], got {value!r}",
            )
        require(
            isinstance(self.time_warp, (int, float)) and 0 <= self.time_warp < 1,
            "AugmentConfig",
            "time_warp",
            f"must be a number in [0, 1), got {self.time_warp!r}",
        )

    @property
    def active(self) -> bool:
        return any((self.rotation, self.scale, self.jitter, self.time_warp))


def vector_triples(channel_names: Sequence[str]) -> list[tuple[int, int, int]]:
    """Channel indices of each x/y/z triple, by name (`<sensor>_x`, `_y`, `_z`)."""
    found: dict[str, dict[str, int]] = {}
    for index, name in enumerate(channel_names):
        match = re.fullmatch(r"(.*)[_-]([xyz])", name, flags=re.IGNORECASE)
        if match:
            found.setdefault(match.group(1), {})[match.group(2).lower()] = index
    return [(axes["x"], axes["y"], axes["z"]) for axes in found.values() if len(axes) == 3]


def random_rotations(n: int, max_degrees: float, generator: torch.Generator) -> Tensor:
    """(n, 3, 3) rotation matrices: a uniform axis, an angle uniform in [0, max_degrees]."""
    axis = torch.randn(n, 3, generator=generator)
    axis = axis / axis.norm(dim=1, keepdim=True)
    angle = torch.rand(n, generator=generator) * math.radians(max_degrees)  # (n,)
    kx, ky, kz = axis.unbind(1)
    zero = torch.zeros(n)
    cross = torch.stack([zero, -kz, ky, kz, zero, -kx, -ky, kx, zero], dim=1).view(
        n, 3, 3
    )  # K with K v = axis x v
    eye = torch.eye(3).expand(n, 3, 3)
    sin, cos = angle.sin()[:, None, None], angle.cos()[:, None, None]
    return eye + sin * cross + (1 - cos) * cross @ cross  # Rodrigues' formula


def rotate(
    x: Tensor, triples: Sequence[tuple[int, int, int]], max_degrees: float, generator
) -> Tensor:
    """x (B, T, C) with each sample's triples turned by one random rotation."""
    rotation = random_rotations(x.shape[0], max_degrees, generator).to(x)  # (B, 3, 3)
    out = x.clone()
    for triple in triples:
        columns = list(triple)
        out[:, :, columns] = x[:, :, columns] @ rotation.transpose(1, 2)  # v' = R v
    return out


def time_warp(x: Tensor, strength: float, generator: torch.Generator) -> Tensor:
    """x (B, T, C) resampled at a smooth random monotone time path with fixed ends."""
    B, T, _ = x.shape
    knots = 1 + strength * (2 * torch.rand(B, WARP_KNOTS + 2, generator=generator) - 1)
    speed = torch.nn.functional.interpolate(
        knots[:, None], size=T - 1, mode="linear", align_corners=True
    )[:, 0]  # (B, T-1) positive local speed
    path = torch.cat([torch.zeros(B, 1), speed.cumsum(1)], dim=1)  # (B, T)
    path = path / path[:, -1:] * (T - 1)  # from 0 to T - 1
    low = path.floor().long().clamp(max=T - 2)  # (B, T)
    frac = (path - low).to(x)[..., None]  # (B, T, 1)
    rows = torch.arange(B)[:, None]
    return x[rows, low] * (1 - frac) + x[rows, low + 1] * frac


def augment(
    x: Tensor,
    config: AugmentConfig,
    generator: torch.Generator,
    triples: Sequence[tuple[int, int, int]] = (),
) -> Tensor:
    """A randomly transformed copy of the raw batch x (B, T, C)."""
    if config.rotation and triples:
        x = rotate(x, triples, config.rotation, generator)
    if config.time_warp:
        x = time_warp(x, config.time_warp, generator)
    if config.scale:
        factor = 1 + config.scale * torch.randn(x.shape[0], 1, x.shape[2], generator=generator)
        x = x * factor.to(x)
    if config.jitter:
        x = x + config.jitter * torch.randn(x.shape, generator=generator).to(x)
    return x
