"""What the encoder reads at each step, besides the normalised channels themselves.

`asinh_scale` > 0 adds, for every channel c, asinh(x_c / asinh_scale) beside x_c. Standardised
over a whole data set, quiet stretches (UCI HAR's sitting, standing) move by a few percent of
a channel's spread, too little for the gates to tell apart; asinh(x / s) is about x / s for
|x| << s, so it magnifies those small movements, and about sign(x) log(2|x| / s) beyond, so
the large swings of walking stay in range. A pure per-step function: the classifier stays
causal.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from larnn.config_base import require


def check_asinh_scale(value: object, owner: str) -> None:
    """ConfigError naming `owner.asinh_scale` unless `value` is a finite number >= 0 (0 = off)."""
    valid = isinstance(value, (int, float)) and not isinstance(value, bool)
    require(
        valid and math.isfinite(value) and value >= 0,
        owner,
        "asinh_scale",
        f"must be a finite number >= 0 (0 = off), got {value!r}",
    )


def encoder_input_size(channels: int, asinh_scale: float) -> int:
    """How many values the encoder reads per step for `channels` data channels."""
    return 2 * channels if asinh_scale > 0 else channels


def input_features(x: Tensor, asinh_scale: float) -> Tensor:
    """x (B, T, C) normalised -> (B, T, C) unchanged, or (B, T, 2C): [x, asinh(x / scale)]."""
    if asinh_scale <= 0:
        return x
    return torch.cat([x, torch.asinh(x / asinh_scale)], dim=-1)  # (B, T, 2C)
