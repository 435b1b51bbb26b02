"""Augmentation of inertial signals (larnn.data.augment)."""

from __future__ import annotations

import math

import pytest
import torch

from larnn.data.augment import (
    AugmentConfig,
    augment,
    random_rotations,
    rotate,
    time_warp,
    vector_triples,
)
from larnn.data.uci_har import CHANNELS
from larnn.errors import ConfigError


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_triples_are_found_by_name():
    assert vector_triples(CHANNELS) == [(0, 1, 2), (3, 4, 5), (6, 7, 8)]
    assert vector_triples(["acc_x", "acc_y", "temp", "acc_z", "gyro_x"]) == [(0, 1, 3)]


def test_rotations_are_proper_and_within_the_angle():
    rotation = random_rotations(500, 30.0, seeded())
    eye = torch.eye(3).expand(500, 3, 3)
    torch.testing.assert_close(rotation @ rotation.transpose(1, 2), eye, atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.linalg.det(rotation), torch.ones(500), atol=1e-5, rtol=0)
    angle = torch.arccos(((rotation.diagonal(dim1=1, dim2=2).sum(1) - 1) / 2).clamp(-1, 1))
    assert angle.max() <= math.radians(30) + 1e-4 and angle.max() > math.radians(25)


def test_rotation_keeps_each_vectors_length_and_leaves_other_channels():
    x = torch.randn(8, 20, 7)
    out = rotate(x, [(0, 1, 2), (3, 4, 5)], 180.0, seeded(1))
    for triple in ([0, 1, 2], [3, 4, 5]):
        torch.testing.assert_close(out[..., triple].norm(dim=-1), x[..., triple].norm(dim=-1))
        assert not torch.allclose(out[..., triple], x[..., triple])
    torch.testing.assert_close(out[..., 6], x[..., 6])
    # one rotation per sample: the angle between the two sensors' vectors is kept
    cos_before = torch.nn.functional.cosine_similarity(x[..., :3], x[..., 3:6], dim=-1)
    cos_after = torch.nn.functional.cosine_similarity(out[..., :3], out[..., 3:6], dim=-1)
    torch.testing.assert_close(cos_after, cos_before, atol=1e-5, rtol=0)


def test_time_warp_keeps_the_ends_and_the_order():
    ramp = torch.linspace(0, 1, 50).expand(4, 50)[..., None].contiguous()  # (4, 50, 1)
    warped = time_warp(ramp, 0.5, seeded(2))
    torch.testing.assert_close(warped[:, [0, -1]], ramp[:, [0, -1]])
    assert (warped.diff(dim=1) >= 0).all()  # a monotone path through a ramp stays monotone
    assert not torch.allclose(warped, ramp)
    torch.testing.assert_close(time_warp(ramp, 0.0, seeded(2)), ramp)


def test_augment_is_off_by_default_and_repeatable_with_a_seed():
    x = torch.randn(5, 30, 9)
    assert not AugmentConfig().active
    torch.testing.assert_close(augment(x, AugmentConfig(), seeded()), x)
    config = AugmentConfig(rotation=20, scale=0.1, jitter=0.05, time_warp=0.2)
    triples = vector_triples(CHANNELS)
    first = augment(x, config, seeded(7), triples)
    torch.testing.assert_close(first, augment(x, config, seeded(7), triples))
    assert not torch.allclose(first, augment(x, config, seeded(8), triples))
    assert first.shape == x.shape and torch.isfinite(first).all()


@pytest.mark.parametrize(
    "field, value", [("rotation", 200), ("scale", -0.1), ("jitter", "a"), ("time_warp", 1.0)]
)
def test_config_validation_names_the_field(field, value):
    with pytest.raises(ConfigError, match=f"AugmentConfig.{field}"):
        AugmentConfig(**{field: value})
