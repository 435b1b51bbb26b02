"""The activations a LARNN may put on its query and on its keys/values, and their gradients."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

ACTIVATIONS = ("elu", "relu", "tanh", "none")


def activation_fn(name: str, x: Tensor) -> Tensor:
    if name == "elu":
        return F.elu(x)
    if name == "relu":
        return F.relu(x)
    if name == "tanh":
        return torch.tanh(x)
    return x


def activation_grad(name: str, y: Tensor) -> Tensor | float:
    """d activation_fn(name, x) / dx, from its output y."""
    if name == "elu":
        return (y + 1).clamp_(max=1)  # exp(x) = elu(x) + 1 for x <= 0, else 1
    if name == "relu":
        return torch.sign(y)  # y >= 0: 1 where x > 0, else 0
    if name == "tanh":
        return 1 - y * y
    return 1.0
