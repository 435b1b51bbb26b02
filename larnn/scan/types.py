"""What a layer's scan takes and writes: the contract between the model (larnn.model) and
the scan, and between the scan's Python and compiled loops."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from torch import Tensor, nn


@dataclass(frozen=True)
class LayerKnobs:
    """InferenceKnobs checked against a model, as one layer applies them to one call."""

    window: int  # K
    head_mask: Tensor | None  # (NH,): 0 switches a head off
    kv_activation: str
    visible: Tensor | None  # (T, K, B or 1) bool: False where a slot holds a hidden step


@dataclass(frozen=True)
class LayerParameters:
    """One LARNN layer as the scan takes it: its parameters grouped as the reference applies
    them (larnn.model.LARNNCell.scan_parameters builds it), and its fixed options. Gate rows
    are (i, f, o, g); `scan_weights` regroups all of them for the loops."""

    query_weight: Tensor  # (H, C + H): Wq over [x_t, h_{t-1}]
    query_bias: Tensor  # (H,)
    gates_x: Tensor  # (4H, C): Wx
    gates_h: Tensor  # (4H, H): Wh
    gates_a: Tensor  # (4H, H): Wa
    gates_bias: Tensor  # (4H,)
    kv_weight: Tensor  # (2H, H + P): Wk then Wv over [f(c_j), pe(lag)]
    kv_bias: Tensor  # (2H,)
    positions: Tensor | None  # (Kq, P): pe(lag) for lag 1 .. Kq; None without pe
    kv_norm: nn.Module  # on act(c) before the key/value projection
    hidden_norm: nn.Module  # on h
    heads: int  # NH
    query_activation: str
    attention_dropout: float  # on the attention weights; 0 outside training


class ScanWeights(NamedTuple):
    """A layer's weights as the scan uses them.

    Rows 0..4H of w_x, w_h and bias are the gates, rows 4H..5H the query, so one matmul per
    operand serves both; the g gate's rows are doubled (see `function.tanh_via_sigmoid`).
    Query, key and value features are reordered head-dim major, (HD, NH) instead of (NH, HD):
    per-head sums then run over an outer axis while the inner loops span NH * B. Keys carry
    the softmax scale HD**-0.5 and log2(e), for the scan's base-2 softmax.
    """

    w_x: Tensor  # (5H, C)
    w_h: Tensor  # (5H, H)
    bias: Tensor  # (5H,)
    w_a: Tensor  # (4H, H)
    w_kv: Tensor  # (2H, H + P): keys then values; the last P columns take pe(lag)
    b_kv: Tensor  # (2H,)


@dataclass(frozen=True)
class ScanSpec:
    """Everything the scan needs besides the tensors it differentiates."""

    heads: int  # NH
    window: int  # K
    query_activation: str
    kv_activation: str
    kv_norm: nn.Module  # on act(c) before the key/value projection
    hidden_norm: nn.Module  # on h
    head_mask: Tensor | None  # (NH,): 0 switches a head off
    visible: Tensor | None  # (T, K, B or 1) bool: False where a slot holds a hidden step
    dropout: float  # on the attention weights; 0 outside training
    record: bool  # return the attention weights
    keep: bool  # keep what backward needs


class ScanOutputs(NamedTuple):
    """What the forward loop writes: per step (T, ...) and batch last (..., B)."""

    hs: Tensor  # (T, H, B)
    cs: Tensor  # (T, H, B)
    acts: Tensor | None  # (T, 4H, B): the gates' sigmoids, for backward
    queries: Tensor | None  # (T, H, B): q, for backward
    attended: Tensor | None  # (T, H, B): a, for backward; zero while the queue is empty
    drops: Tensor | None  # (T, K, NH, B): dropout masks, drawn before the loop
    recorded: Tensor | None  # (T, K, NH, B): the attention weights, when recorded
