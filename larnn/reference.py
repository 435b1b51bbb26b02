"""The LARNN, one step at a time: the specification that the fast path is tested against.

Written line for line like the equations in `larnn.model`'s docstring, over an explicit deque
of raw past cell states: every step re-applies f to each past cell state, concatenates its
pe(lag), re-projects it to a key and a value, and attends over them. That is O(K H^2) work
per step where `larnn.scan` does O(H^2 + K H), and it is slow, but each line can be checked
against the paper by eye. It uses a LARNN's own modules and weights, so any model can be
run both ways. The tests (`tests/test_model.py`, `tests/test_compiled_scan.py`) and the
speed benchmark (`benchmarks/speed.py`) import it; nothing else should.

Not modelled: dropout on the attention weights (random; the scan's is tested by finite
differences). Shapes as in larnn/model.py.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import Tensor

from larnn.model import LARNN, InferenceKnobs, LARNNCell

ACT = {"elu": F.elu, "relu": F.relu, "tanh": torch.tanh, "none": lambda v: v}


def positional_encoding(lag: int, queue_size: int) -> list[float]:
    """pe(lag): cos then sin of 2 pi lag / 2^i for i = 1 .. ceil(log2(4 queue_size))."""
    n = math.ceil(math.log2(4 * queue_size))
    cos = [math.cos(2 * math.pi * lag / 2**i) for i in range(1, n + 1)]
    sin = [math.sin(2 * math.pi * lag / 2**i) for i in range(1, n + 1)]
    return cos + sin


def reference_layer(
    cell: LARNNCell,
    x: Tensor,
    window: int,
    head_mask: Tensor | None,
    kv_activation: str,
    past: deque[Tensor] | None = None,
    h: Tensor | None = None,
    c: Tensor | None = None,
    hidden_steps: tuple[int, ...] = (),
    start: int = 0,
) -> tuple[Tensor, Tensor, tuple[deque[Tensor], Tensor, Tensor]]:
    """One layer over x (T, B, C) from the state (past, h, c), zeros and empty by default.

    `start` is the absolute time of x's first step; past states of `hidden_steps` are left
    out of the attention, as if their slots were empty. Returns h at every step (T, B, H),
    the attention weights (B, T, NH, window) with the oldest slot first and zeros on empty
    and hidden slots, and the state after the last step.
    """
    cfg = cell.config
    T, B, _ = x.shape
    H, NH = cfg.hidden_size, cfg.heads
    HD = H // NH
    h = x.new_zeros(B, H) if h is None else h
    c = x.new_zeros(B, H) if c is None else c
    past = deque(maxlen=window) if past is None else past  # raw cell states, oldest first
    outputs, weights = [], []
    for t in range(T):
        # q_t = act_q(Wq [x_t, h_{t-1}] + bq)
        q = ACT[cfg.query_activation](cell.query(torch.cat([x[t], h], dim=1)))  # (B, H)
        a = x.new_zeros(B, H)
        w_t = x.new_zeros(B, NH, window)
        n = len(past)
        lags = [n - index for index in range(n)]  # the newest past state is one step old
        slots = [i for i in range(n) if start + t - lags[i] not in hidden_steps]
        if slots:
            # k_j, v_j = Wk [f(c_j), pe(t - j)] + bk, Wv [f(c_j), pe(t - j)] + bv
            features = []
            for index in slots:
                feature = cell.kv_norm(ACT[kv_activation](past[index]))  # (B, H)
                if cfg.positional_encoding:
                    pe = positional_encoding(lags[index], cfg.queue_size)
                    pe = torch.tensor(pe, dtype=x.dtype)
                    feature = torch.cat([feature, pe.expand(B, -1)], dim=1)  # (B, H + P)
                features.append(feature)
            kv = cell.memory_to_kv(torch.stack(features, dim=1))  # (B, visible, 2H)
            keys = kv[..., :H].reshape(B, len(slots), NH, HD)
            values = kv[..., H:].reshape(B, len(slots), NH, HD)
            # a_t = concat_heads( softmax_j(q_t k_j / sqrt(HD)) v_j )
            scores = torch.einsum("bhd,bnhd->bhn", q.view(B, NH, HD), keys) / math.sqrt(HD)
            p = torch.softmax(scores, dim=2)  # (B, NH, visible)
            if head_mask is not None:
                p = p * head_mask[:, None]  # a switched-off head attends to nothing
            a = torch.einsum("bhn,bnhd->bhd", p, values).reshape(B, H)
            w_t[:, :, [window - n + i for i in slots]] = p
        # i, f, o, g = split(Wx x_t + Wh h_{t-1} + Wa a_t + b) or split(W [x_t, h_{t-1}, a_t] + b)
        if cfg.mode == "residual":
            gates = cell.input_to_gates(x[t]) + cell.hidden_to_gates(h) + cell.attention_to_gates(a)
        else:
            gates = cell.gates(torch.cat([x[t], h, a], dim=1))
        i, f, o, g = gates.chunk(4, dim=1)
        # c_t = sigmoid(f) c_{t-1} + sigmoid(i) tanh(g);  h_t = norm_h(sigmoid(o) tanh(c_t))
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = cell.hidden_norm(torch.sigmoid(o) * torch.tanh(c))
        past.append(c)  # the oldest state leaves when the deque is full
        outputs.append(h)
        weights.append(w_t)
    return torch.stack(outputs), torch.stack(weights, dim=1), (past, h, c)


def reference_stack(
    model: LARNN, x: Tensor, knobs: InferenceKnobs | None = None
) -> tuple[Tensor, list[Tensor]]:
    """The stack over x from a zero state, as `model(x, knobs=knobs, return_attention=True)`:
    the last layer's h at every step, and each layer's attention weights (B, T, NH, K).

    Hidden steps given per sample run each sample alone with its own (eval semantics)."""
    cfg = model.config
    knobs = knobs or InferenceKnobs()
    if knobs.hidden_steps and isinstance(knobs.hidden_steps[0], tuple):
        batch_dim = 0 if cfg.batch_first else 1
        runs = [
            reference_stack(model, sample, replace(knobs, hidden_steps=steps or None))
            for sample, steps in zip(x.split(1, dim=batch_dim), knobs.hidden_steps, strict=True)
        ]
        outputs = torch.cat([out for out, _ in runs], dim=batch_dim)
        weights = [torch.cat(layer, dim=0) for layer in zip(*(w for _, w in runs), strict=True)]
        return outputs, weights
    window = knobs.window or cfg.window
    hidden = set(knobs.hidden_steps or ())
    kv_activation = knobs.kv_activation or cfg.kv_activation
    masks = [None] * cfg.num_layers
    if knobs.head_mask is not None:
        mask = torch.tensor(knobs.head_mask, dtype=x.dtype)
        masks = list(mask.expand(cfg.num_layers, cfg.heads))  # one row per layer
    if cfg.batch_first:
        x = x.transpose(0, 1)  # (T, B, C)
    layer_input, all_weights = x, []
    for index, cell in enumerate(model.layers):
        out, weights, _ = reference_layer(
            cell, layer_input, window, masks[index], kv_activation, hidden_steps=hidden
        )
        if cfg.stacked_residual and index > 0:
            out = out + layer_input
        if index < cfg.num_layers - 1:
            out = F.dropout(out, cfg.dropout, model.training)
        layer_input = out
        all_weights.append(weights)
    output = layer_input.transpose(0, 1) if cfg.batch_first else layer_input
    return output, all_weights
