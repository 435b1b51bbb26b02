"""A naive LARNN, step by step as in the 2018 code: the speed baseline for `speed.py`.

It runs a `larnn.model.LARNN`'s own weights, but keeps a deque of the raw past cell states
and re-projects all K of them to keys and values at every step: O(K H^2) work per step
where the model's scan does O(H^2 + K H). It is vectorised over batch and heads, so the
comparison measures that design choice rather than Python loops. Eval mode, no carried
state, no inference knobs.

Shapes follow larnn/model.py: B batch, T time, C channels, H hidden, K window, NH heads,
HD head dim, P positional features.
"""

from __future__ import annotations

import math
from collections import deque

import torch
from torch import Tensor

from larnn.model import LARNN, LARNNCell, activation_fn


def naive_layer(cell: LARNNCell, x: Tensor) -> Tensor:
    """One layer over x (T, B, C) -> h at every step (T, B, H)."""
    cfg = cell.config
    T, B, _ = x.shape
    H, NH, K = cfg.hidden_size, cfg.heads, cfg.window
    HD = H // NH
    h, c = x.new_zeros(B, H), x.new_zeros(B, H)
    past: deque[Tensor] = deque(maxlen=K)  # raw cell states, oldest first
    outputs = []
    for t in range(T):
        q = activation_fn(cfg.query_activation, cell.query(torch.cat([x[t], h], dim=1)))
        attended = x.new_zeros(B, H)
        if past:
            n = len(past)
            cells = torch.stack(list(past), dim=1)  # (B, n, H)
            features = cell.kv_norm(activation_fn(cfg.kv_activation, cells.reshape(-1, H)))
            features = features.view(B, n, H)
            if cfg.positional_encoding:
                lags = cell.positions[:n].flip(0)  # (n, P): the oldest slot has lag n
                features = torch.cat([features, lags.expand(B, n, -1)], dim=2)  # (B, n, H + P)
            kv = cell.memory_to_kv(features).view(B, n, 2, NH, HD)  # every slot, every step
            keys, values = (
                kv[:, :, 0].transpose(1, 2),
                kv[:, :, 1].transpose(1, 2),
            )  # (B, NH, n, HD)
            scores = keys @ q.view(B, NH, HD, 1) / math.sqrt(HD)  # (B, NH, n, 1)
            p = torch.softmax(scores, dim=2)
            attended = (p.transpose(2, 3) @ values).reshape(B, H)  # (B, H)
        if cfg.mode == "residual":
            gates = (
                cell.input_to_gates(x[t])
                + cell.hidden_to_gates(h)
                + cell.attention_to_gates(attended)
            )  # (B, 4H)
        else:
            gates = cell.gates(torch.cat([x[t], h, attended], dim=1))  # (B, 4H)
        i, f, o, g = gates.chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = cell.hidden_norm(torch.sigmoid(o) * torch.tanh(c))
        past.append(c)
        outputs.append(h)
    return torch.stack(outputs)  # (T, B, H)


def naive_larnn(model: LARNN, x: Tensor) -> Tensor:
    """The stack over x (T, B, C), or (B, T, C) with batch_first: the last layer's h (eval)."""
    cfg = model.config
    if cfg.batch_first:
        x = x.transpose(0, 1)  # (T, B, C)
    layer_input = x
    for index, cell in enumerate(model.layers):
        out = naive_layer(cell, layer_input)
        layer_input = out + layer_input if cfg.stacked_residual and index > 0 else out
    return layer_input.transpose(0, 1) if cfg.batch_first else layer_input
