"""LARNN: the Linear Attention Recurrent Neural Network (Chevalier, 2018, arXiv 1808.05578).

An LSTM cell that keeps a FIFO queue of its K most recent cell states and, at every step,
queries that queue with multi-head attention. For one layer at step t, with
f = the activation (and normalisation) on keys/values and pe(lag) the optional positional
encoding concatenated to each past state:

    q_t       = act_q(Wq [x_t, h_{t-1}] + bq)                         query from input and hidden
    k_j, v_j  = Wk [f(c_j), pe(t-j)] + bk,  Wv [f(c_j), pe(t-j)] + bv  for j in t-K .. t-1
    a_t       = concat_heads( softmax(q_t k_j / sqrt(HD)) v_j )       over filled slots only
    i, f, o, g = split( Wx x_t + Wh h_{t-1} + Wa a_t + b )   mode "residual"
               = split( W [x_t, h_{t-1}, a_t] + b )           mode "layer"
    c_t = sigmoid(f) * c_{t-1} + sigmoid(i) * tanh(g)
    h_t = norm_h( sigmoid(o) * tanh(c_t) )

The specification is `larnn.reference`: these equations, one step at a time, over an explicit
deque of past cell states. Every test of the fast path compares against it.

The fast path (`larnn.scan`) computes the same numbers in O(H^2 + K H) per step and sample:
each new cell state is projected to its key and value once, when it enters the queue, and the
positional part, which depends only on the lag, is a (K, H) table. Over a series that is
O(T K) attention work per layer. For float32 on the CPU its loops run compiled (C++).

Shape legend
    B   batch                 T   time steps            C   input channels
    H   hidden size           K   window (queue slots)  NH  attention heads
    HD  head dim = H // NH    L   layers                P   positional features
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from larnn.activations import ACTIVATIONS
from larnn.config_base import JsonConfig, require
from larnn.errors import ConfigError
from larnn.scan.layer import run_layer
from larnn.scan.types import LayerKnobs, LayerParameters

NORMS = ("batch", "layer", "none")
MODES = ("residual", "layer")


class LARNN(nn.Module):
    """A stack of LARNN layers with an `nn.LSTM`-like interface.

    Inputs: x, state
        x: (T, B, C), or (B, T, C) with `batch_first`.
        state: LARNNState from a previous call, or None for zeros and an empty queue.
    Outputs: output, state[, record]
        output: (T, B, H) or (B, T, H): the last layer's h at every step.
        record: AttentionRecord, only with `return_attention=True`.
    """

    def __init__(self, config: LARNNConfig) -> None:
        super().__init__()
        self.config = config
        self.layers = nn.ModuleList(
            LARNNCell(config.input_size if i == 0 else config.hidden_size, config)
            for i in range(config.num_layers)
        )

    def initial_state(self, batch_size: int, device=None, dtype=None) -> LARNNState:
        cfg = self.config
        L, H, Kq = cfg.num_layers, cfg.hidden_size, cfg.queue_size
        zeros = torch.zeros(L, batch_size, H, device=device, dtype=dtype)
        memory = torch.zeros(L, batch_size, Kq, H, device=device, dtype=dtype)
        return LARNNState(zeros, zeros.clone(), memory, 0)

    def forward(
        self,
        x: Tensor,
        state: LARNNState | None = None,
        *,
        knobs: InferenceKnobs | None = None,
        return_attention: bool = False,
    ):
        cfg = self.config
        if x.dim() != 3 or x.shape[-1] != cfg.input_size:
            raise ValueError(
                f"LARNN expects input of shape (T, B, {cfg.input_size})"
                f"{' with batch_first as (B, T, C)' if cfg.batch_first else ''}, "
                f"got {tuple(x.shape)}"
            )
        if cfg.batch_first:
            x = x.transpose(0, 1)  # (T, B, C)
        T, B, _ = x.shape
        if state is None:
            state = self.initial_state(B, x.device, x.dtype)
        layer_knobs = self._resolve(knobs or InferenceKnobs(), x, state.steps)

        hs, cs, memories, weights = [], [], [], []
        layer_input = x
        for i, layer in enumerate(self.layers):
            out, h, c, memory, recorded = layer(
                layer_input,
                state.h[i],
                state.c[i],
                state.memory[i],
                state.steps,
                layer_knobs[i],
                return_attention,
            )
            if cfg.stacked_residual and i > 0:
                out = out + layer_input
            if i < len(self.layers) - 1:
                out = F.dropout(out, cfg.dropout, self.training)
            layer_input = out
            hs.append(h)
            cs.append(c)
            memories.append(memory)
            weights.append(recorded)

        new_state = LARNNState(
            torch.stack(hs), torch.stack(cs), torch.stack(memories), state.steps + T
        )
        output = (layer_input.transpose(0, 1) if cfg.batch_first else layer_input).contiguous()
        if not return_attention:
            return output, new_state
        window = layer_knobs[0].window
        record = AttentionRecord(tuple(weights), slot_times(state.steps, T, window, x.device))
        return output, new_state, record

    def _resolve(self, knobs: InferenceKnobs, x: Tensor, steps: int) -> list[LayerKnobs]:
        """The knobs checked against this model, as each layer applies them to x (T, B, C)."""
        cfg = self.config
        window = cfg.window if knobs.window is None else knobs.window
        if not isinstance(window, int) or not 1 <= window <= cfg.queue_size:
            raise ConfigError(
                f"InferenceKnobs.window: must be an integer in 1..{cfg.queue_size} "
                f"(the queue size; train with a larger max_window to look further), got {window!r}"
            )
        kv_activation = knobs.kv_activation or cfg.kv_activation
        if kv_activation not in ACTIVATIONS:
            raise ConfigError(
                f"InferenceKnobs.kv_activation: must be one of {ACTIVATIONS}, got {kv_activation!r}"
            )
        masks: list[Tensor | None] = [None] * cfg.num_layers
        if knobs.head_mask is not None:
            mask = torch.tensor(knobs.head_mask, dtype=x.dtype, device=x.device)
            if mask.shape == (cfg.heads,):
                mask = mask.expand(cfg.num_layers, cfg.heads)
            if mask.shape != (cfg.num_layers, cfg.heads):
                raise ConfigError(
                    f"InferenceKnobs.head_mask: expected shape ({cfg.heads},) or "
                    f"({cfg.num_layers}, {cfg.heads}), got {tuple(mask.shape)}"
                )
            masks = list(mask.unbind(0))
        visible = None
        if knobs.hidden_steps:
            visible = visible_slots(knobs.hidden_steps, steps, x.shape[0], x.shape[1], window, x)
        return [LayerKnobs(window, mask, kv_activation, visible) for mask in masks]


class LARNNCell(nn.Module):
    """One LARNN layer: its parameters, and a loop over time that reuses projected memories.

    Args:
        input_size: features of the layer's input (C for layer 0, H above).
        config: the stack's configuration (sizes, mode, activations, norms).

    Gate order in the weights is (i, f, o, g), so the three sigmoid gates are contiguous.
    """

    def __init__(self, input_size: int, config: LARNNConfig) -> None:
        super().__init__()
        H, P = config.hidden_size, config.positional_size
        self.input_size = input_size
        self.config = config
        self.query = nn.Linear(input_size + H, H)
        if config.mode == "residual":
            self.input_to_gates = nn.Linear(input_size, 4 * H)
            self.hidden_to_gates = nn.Linear(H, 4 * H, bias=False)
            self.attention_to_gates = nn.Linear(H, 4 * H, bias=False)
        else:
            self.gates = nn.Linear(input_size + 2 * H, 4 * H)
        self.memory_to_kv = nn.Linear(H + P, 2 * H)  # past state (+ pe) -> key, value
        self.kv_norm = normalisation(config.kv_norm, H)
        self.hidden_norm = normalisation(config.hidden_norm, H)
        if P:
            self.register_buffer("positions", positional_table(config.queue_size), persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for name, param in self.named_parameters():
            if param.dim() >= 2:
                nn.init.xavier_uniform_(param)
            elif name.endswith("bias") and "norm" not in name:
                nn.init.zeros_(param)
        # A forget-gate bias of 1 keeps early gradients flowing (Jozefowicz et al., 2015).
        H = self.config.hidden_size
        gate_bias = self.input_to_gates.bias if self.config.mode == "residual" else self.gates.bias
        with torch.no_grad():
            gate_bias[H : 2 * H].fill_(1.0)

    def forward(
        self,
        x: Tensor,
        h: Tensor,
        c: Tensor,
        memory: Tensor,
        steps: int,
        knobs: LayerKnobs,
        record: bool,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor | None]:
        """Run the layer over a series (by `larnn.scan`; step by step in `larnn.reference`).

        Args:
            x: (T, B, C) input; h, c: (B, H) state; memory: (B, Kq, H) past cells, oldest
            first; steps: time steps already seen; knobs: window (<= Kq), head mask,
            activation on keys/values and hidden slots.
        Returns:
            output (T, B, H), a view of batch-last (T, H, B) memory that the next layer reads
            as is; h (B, H), c (B, H), memory (B, Kq, H), weights (B, T, NH, K) when
            `record`, else None.
        """
        return run_layer(self.scan_parameters(), x, h, c, memory, steps, knobs, record)

    def scan_parameters(self) -> LayerParameters:
        """The layer's parameters grouped as the reference applies them, for `larnn.scan`."""
        C, H, cfg = self.input_size, self.config.hidden_size, self.config
        if cfg.mode == "residual":
            g_x, g_h = self.input_to_gates.weight, self.hidden_to_gates.weight
            g_a, g_b = self.attention_to_gates.weight, self.input_to_gates.bias
        else:  # one matrix over [x_t, h_{t-1}, a_t]
            g_x, g_h, g_a = self.gates.weight.split([C, H, H], dim=1)
            g_b = self.gates.bias
        return LayerParameters(
            query_weight=self.query.weight,
            query_bias=self.query.bias,
            gates_x=g_x,
            gates_h=g_h,
            gates_a=g_a,
            gates_bias=g_b,
            kv_weight=self.memory_to_kv.weight,
            kv_bias=self.memory_to_kv.bias,
            positions=self.positions if cfg.positional_encoding else None,
            kv_norm=self.kv_norm,
            hidden_norm=self.hidden_norm,
            heads=cfg.heads,
            query_activation=cfg.query_activation,
            attention_dropout=cfg.attention_dropout if self.training else 0.0,
        )


@dataclass(frozen=True)
class LARNNConfig(JsonConfig):
    """Every constructor argument of a LARNN stack. Defaults follow the paper where it says."""

    input_size: int  # C
    hidden_size: int  # H
    num_layers: int = 1  # L
    heads: int = 1  # NH; hidden_size must be a multiple
    window: int = 16  # K: past cell states attended to during training
    max_window: int | None = None  # queue capacity; > window lets inference look further back
    mode: Literal["residual", "layer"] = "residual"
    positional_encoding: bool = False  # concatenate sin/cos of the lag to each past state
    kv_activation: Literal["elu", "relu", "tanh", "none"] = "elu"  # paper: ELU
    kv_norm: Literal["batch", "layer", "none"] = "batch"  # paper: batch norm after ELU
    query_activation: Literal["elu", "relu", "tanh", "none"] = "none"
    hidden_norm: Literal["batch", "layer", "none"] = "none"  # paper: batch norm on h
    stacked_residual: bool = False  # layer l >= 1 adds its input to its output
    dropout: float = 0.0  # on each layer's output but the last, as nn.LSTM
    attention_dropout: float = 0.0  # on the attention weights, training only
    batch_first: bool = False

    def __post_init__(self) -> None:
        owner = "LARNNConfig"
        for name in ("input_size", "hidden_size", "num_layers", "heads", "window"):
            value = getattr(self, name)
            require(
                isinstance(value, int) and not isinstance(value, bool) and value >= 1,
                owner,
                name,
                f"must be an integer >= 1, got {value!r}",
            )
        require(
            self.hidden_size % self.heads == 0,
            owner,
            "heads",
            f"hidden_size={self.hidden_size} must be a multiple of heads={self.heads}",
        )
        if self.max_window is not None:
            require(
                isinstance(self.max_window, int) and self.max_window >= self.window,
                owner,
                "max_window",
                f"must be an integer >= window={self.window}, got {self.max_window!r}",
            )
        require(self.mode in MODES, owner, "mode", f"must be one of {MODES}, got {self.mode!r}")
        for name, choices in (
            ("kv_activation", ACTIVATIONS),
            ("query_activation", ACTIVATIONS),
            ("kv_norm", NORMS),
            ("hidden_norm", NORMS),
        ):
            value = getattr(self, name)
            require(value in choices, owner, name, f"must be one of {choices}, got {value!r}")
        for name in ("dropout", "attention_dropout"):
            value = getattr(self, name)
            require(
                isinstance(value, (int, float)) and 0.0 <= value < 1.0,
                owner,
                name,
                f"must be a number in [0, 1), got {value!r}",
            )

    @property
    def queue_size(self) -> int:
        """Slots kept in the queue: the largest window inference can ask for."""
        return self.max_window or self.window

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.heads

    @property
    def positional_size(self) -> int:
        """P: sin/cos pairs of geometrically spaced periods up to 4x the queue size."""
        return positional_size(self.queue_size) if self.positional_encoding else 0


@dataclass(frozen=True)
class LARNNState:
    """Recurrent state of a LARNN stack, carried between calls.

    `memory` holds each layer's past cell states, oldest first; its last `min(steps, K)`
    slots are filled. Carrying the state makes a series run in chunks equal the series run
    whole, including the absolute time index of each attended slot.
    """

    h: Tensor  # (L, B, H)
    c: Tensor  # (L, B, H)
    memory: Tensor  # (L, B, K, H) with K = config.queue_size
    steps: int  # time steps already seen

    def detach(self) -> LARNNState:
        """The same state cut from the autograd graph (truncated backprop through time)."""
        return LARNNState(self.h.detach(), self.c.detach(), self.memory.detach(), self.steps)


@dataclass(frozen=True)
class AttentionRecord:
    """What each layer attended to: weights over the window slots, and when each slot was."""

    weights: tuple[Tensor, ...]  # per layer (B, T, NH, K), zero on empty slots and masked heads
    slot_time: Tensor  # (T, K) absolute time index held by each slot, oldest first; -1 if empty


@dataclass(frozen=True)
class InferenceKnobs:
    """Changes applied at inference without touching the model's weights: a hashable value,
    built once where the user sets it and passed whole to the model.

    window: attend to the `window` most recent slots (1 .. config.queue_size); None: as trained.
    head_mask: 1 keeps a head, 0 switches it off: NH values for every layer, or L rows of NH;
        any sequence or tensor is stored as a tuple of floats. None: every head on.
    kv_activation: replace the activation on keys/values (one of ACTIVATIONS); None: as trained.
    hidden_steps: absolute time steps (as in AttentionRecord.slot_time) whose cell states no
        layer may attend to: a slot holding one behaves exactly like an empty slot. Integers
        >= 0 for every sample, or B tuples of them, one per sample; stored as sorted tuples
        (an empty knob as None).
    """

    window: int | None = None
    head_mask: tuple[float, ...] | tuple[tuple[float, ...], ...] | None = None
    kv_activation: str | None = None
    hidden_steps: tuple[int, ...] | tuple[tuple[int, ...], ...] | None = None

    def __post_init__(self) -> None:
        if self.head_mask is not None:
            object.__setattr__(self, "head_mask", _mask_tuple(self.head_mask))
        if self.hidden_steps is not None:
            object.__setattr__(self, "hidden_steps", _hidden_tuple(self.hidden_steps))


def visible_slots(
    hidden_steps: tuple, steps: int, T: int, B: int, window: int, like: Tensor
) -> Tensor:
    """(T, K, B or 1) bool: whether each window slot at each step holds a step not hidden."""
    times = slot_times(steps, T, window, like.device)  # (T, K)
    per_sample = isinstance(hidden_steps[0], tuple)
    if per_sample and len(hidden_steps) != B:
        raise ConfigError(
            f"InferenceKnobs.hidden_steps: {len(hidden_steps)} per-sample tuples for a batch of {B}"
        )
    rows = hidden_steps if per_sample else (hidden_steps,)
    hidden = [torch.tensor(row, dtype=torch.long, device=like.device) for row in rows]
    return torch.stack([~torch.isin(times, row) for row in hidden], dim=-1)  # (T, K, B or 1)


def _hidden_tuple(steps) -> tuple[int, ...] | tuple[tuple[int, ...], ...] | None:
    values = steps.tolist() if isinstance(steps, Tensor) else steps
    try:
        nested = len(values) > 0 and all(not isinstance(v, numbers.Real) for v in values)
    except TypeError:
        nested = False
    if not nested:
        return _steps_tuple(steps) or None
    rows = tuple(_steps_tuple(row) for row in values)
    return rows if any(rows) else None


def _steps_tuple(steps) -> tuple[int, ...]:
    values = steps.tolist() if isinstance(steps, Tensor) else steps
    try:
        result = tuple(sorted({int(v) for v in values if int(v) == v}))
        valid = len(result) == len(set(values)) and all(v >= 0 for v in result)
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ConfigError(
            f"InferenceKnobs.hidden_steps: expected time steps as integers >= 0, got {steps!r}"
        )
    return result


def _mask_tuple(mask: Sequence | Tensor) -> tuple[float, ...] | tuple[tuple[float, ...], ...]:
    values = mask.tolist() if isinstance(mask, Tensor) else mask
    try:
        if all(isinstance(v, numbers.Real) for v in values):
            return tuple(float(v) for v in values)
        rows = tuple(tuple(float(v) for v in row) for row in values)
    except (TypeError, ValueError):
        rows = ()
    if not rows or len({len(row) for row in rows}) != 1:
        raise ConfigError(
            f"InferenceKnobs.head_mask: expected NH numbers or L rows of NH numbers, got {mask!r}"
        )
    return rows


def slot_times(steps: int, length: int, window: int, device=None) -> Tensor:
    """Absolute time index of each window slot at each step, oldest first; -1 where empty.

    At absolute step s = steps + t, slot i holds the cell state of step s - (window - i).
    Returns (T, K) int64.
    """
    s = torch.arange(steps, steps + length, device=device)[:, None]  # (T, 1)
    lag = torch.arange(window, 0, -1, device=device)[None, :]  # (1, K)
    index = s - lag  # (T, K)
    return index.masked_fill(index < 0, -1)


def positional_size(queue_size: int) -> int:
    return 2 * math.ceil(math.log2(4 * queue_size))


def positional_table(queue_size: int) -> Tensor:
    """pe(lag) for lag = 1 .. queue_size as rows: (K, P), cos and sin of period 2^i."""
    n = positional_size(queue_size) // 2
    lags = torch.arange(1, queue_size + 1, dtype=torch.float64)[:, None]  # (K, 1)
    periods = 2.0 ** torch.arange(1, n + 1, dtype=torch.float64)  # (P/2,)
    angle = 2 * math.pi * lags / periods  # (K, P/2)
    return torch.cat([angle.cos(), angle.sin()], dim=1).float()  # (K, P)


def normalisation(name: str, size: int) -> nn.Module:
    if name == "batch":
        return nn.BatchNorm1d(size)
    if name == "layer":
        return nn.LayerNorm(size)
    return nn.Identity()
