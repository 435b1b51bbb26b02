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

Cost per step is O(H^2 + K H) per sample: each new cell state is projected to its key and
value once, when it enters the queue; the positional part depends only on the lag and is a
(K, H) table added through the query. Over a series that is O(T K) attention work per layer.
The loop over time is `LARNNScan`, batch-last and with a hand-written backward; its layout
is described there. For float32 on the CPU its loops run compiled (`larnn.compiled_scan`).

Shape legend
    B   batch                 T   time steps            C   input channels
    H   hidden size           K   window (queue slots)  NH  attention heads
    HD  head dim = H // NH    L   layers                P   positional features
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from larnn import compiled_scan
from larnn.config_base import JsonConfig, require
from larnn.errors import ConfigError

ACTIVATIONS = ("elu", "relu", "tanh", "none")
NORMS = ("batch", "layer", "none")
MODES = ("residual", "layer")


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
    """Changes applied at inference without touching the model's weights.

    window: attend to the `window` most recent slots (1 .. config.queue_size).
    head_mask: (NH,) for every layer or (L, NH); a 0 switches that head off.
    kv_activation: replace the activation on keys/values (one of ACTIVATIONS).
    """

    window: int | None = None
    head_mask: Tensor | None = None
    kv_activation: str | None = None


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

    def scan_weights(self) -> ScanWeights:
        """The layer's weights regrouped for the scan (see ScanWeights); differentiable."""
        C, H, NH = self.input_size, self.config.hidden_size, self.config.heads
        q_x, q_h = self.query.weight.split([C, H], dim=1)
        if self.config.mode == "residual":
            g_x, g_h = self.input_to_gates.weight, self.hidden_to_gates.weight
            g_a, g_b = self.attention_to_gates.weight, self.input_to_gates.bias
        else:
            g_x, g_h, g_a = self.gates.weight.split([C, H, H], dim=1)
            g_b = self.gates.bias
        # Feature i of the reordered query/key/value is (head n, dim d) with i = d * NH + n.
        order = torch.arange(H, device=q_x.device).view(NH, H // NH).t().reshape(-1)  # (H,)
        kv_order = torch.cat([order, order + H])  # (2H,)
        kv_scale = q_x.new_ones(2 * H)
        kv_scale[:H] = math.log2(math.e) / math.sqrt(H // NH)  # see LARNNScan: softmax in base 2
        g_scale = q_x.new_ones(4 * H, 1)
        g_scale[3 * H :] = 2.0  # tanh(g) = 2 sigmoid(2 g) - 1: one sigmoid serves all gates
        return ScanWeights(
            w_x=torch.cat([g_x * g_scale, q_x[order]]),  # (5H, C)
            w_h=torch.cat([g_h * g_scale, q_h[order]]),  # (5H, H)
            bias=torch.cat([g_b * g_scale[:, 0], self.query.bias[order]]),  # (5H,)
            w_a=g_a[:, order] * g_scale,  # (4H, H)
            w_kv=self.memory_to_kv.weight[kv_order] * kv_scale[:, None],  # (2H, H + P)
            b_kv=self.memory_to_kv.bias[kv_order] * kv_scale,  # (2H,)
        )

    def project_memory(self, cells: Tensor, weights: ScanWeights, kv_activation: str) -> Tensor:
        """Key and value of past cell states, without the positional part: (..., H) -> (..., 2H)."""
        H = self.config.hidden_size
        flat = self.kv_norm(activation_fn(kv_activation, cells.reshape(-1, H)))  # (N, H)
        kv = F.linear(flat, weights.w_kv[:, :H], weights.b_kv)  # (N, 2H)
        return kv.reshape(*cells.shape[:-1], 2 * H)

    def positional_kv(self, window: int, weights: ScanWeights) -> tuple[Tensor, Tensor] | None:
        """Positional part of key and value per window slot, oldest first: 2 x (K, HD, NH, 1)."""
        if not self.config.positional_encoding:
            return None
        H, NH = self.config.hidden_size, self.config.heads
        lags = self.positions[:window].flip(0)  # (K, P): slot i has lag window - i
        kv = F.linear(lags, weights.w_kv[:, H:])  # (K, 2H)
        pos_k, pos_v = kv.view(window, 2, H // NH, NH, 1).unbind(1)  # 2 x (K, HD, NH, 1)
        return pos_k, pos_v

    def forward(
        self,
        x: Tensor,
        h: Tensor,
        c: Tensor,
        memory: Tensor,
        steps: int,
        window: int,
        head_mask: Tensor | None,
        kv_activation: str,
        record: bool,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor | None]:
        """Run the layer over a series.

        Args:
            x: (T, B, C) input; h, c: (B, H) state; memory: (B, Kq, H) past cells, oldest
            first; steps: time steps already seen; window: slots attended (<= Kq);
            head_mask: (NH,) or None; kv_activation: activation on keys/values.
        Returns:
            output (T, B, H), a view of batch-last (T, H, B) memory that the next layer reads
            as is; h (B, H), c (B, H), memory (B, Kq, H), weights (B, T, NH, K) when
            `record`, else None.
        """
        cfg = self.config
        H, NH, K, Kq = cfg.hidden_size, cfg.heads, window, memory.shape[1]
        weights = self.scan_weights()
        filled = min(steps, K)  # slots of the window that hold a past cell state
        queue = x.new_zeros(x.shape[1], 0, 2 * H)  # (B, filled, 2H)
        if filled:
            queue = self.project_memory(memory[:, Kq - filled :], weights, kv_activation)
        positional = self.positional_kv(K, weights) or (None, None)
        w_kv, b_kv, kv_norm = weights.w_kv[:, :H], weights.b_kv, self.kv_norm
        if isinstance(kv_norm, nn.BatchNorm1d) and not kv_norm.training:
            # In eval, batch norm is affine: fold it into the projection, one call less a step.
            scale = kv_norm.weight * torch.rsqrt(kv_norm.running_var + kv_norm.eps)  # (H,)
            b_kv = b_kv + w_kv @ (kv_norm.bias - kv_norm.running_mean * scale)
            w_kv, kv_norm = w_kv * scale, nn.Identity()
        norms = [p for norm in (kv_norm, self.hidden_norm) for p in norm_parameters(norm)]
        tensors = (
            x.permute(0, 2, 1),  # (T, C, B)
            h.t(),  # (H, B)
            c.t(),  # (H, B)
            queue.permute(1, 2, 0),  # (filled, 2H, B)
            weights.w_x,
            weights.bias,
            weights.w_h,
            weights.w_a,
            w_kv,
            b_kv,
            *positional,
            *norms,
        )
        needs_grad = torch.is_grad_enabled() and any(
            t is not None and t.requires_grad for t in tensors
        )
        spec = ScanSpec(
            heads=NH,
            window=K,
            query_activation=cfg.query_activation,
            kv_activation=kv_activation,
            kv_norm=kv_norm,
            hidden_norm=self.hidden_norm,
            head_mask=None if head_mask is None else head_mask[:, None],  # (NH, 1)
            dropout=cfg.attention_dropout if self.training else 0.0,
            record=record,
            keep=needs_grad,
        )
        hs, cs, recorded = LARNNScan.apply(spec, *tensors)  # (T, H, B) twice, (T, K, NH, B)
        output = hs.permute(0, 2, 1)  # (T, B, H), batch-last in memory for the next layer
        memory = torch.cat([memory, cs[-Kq:].permute(2, 0, 1)], dim=1)[:, -Kq:]  # (B, Kq, H)
        if record:
            recorded = recorded.permute(3, 0, 2, 1)  # (B, T, NH, K)
        return output, output[-1], cs[-1].t(), memory, recorded


class ScanWeights(NamedTuple):
    """A layer's weights as the scan uses them.

    Rows 0..4H of w_x, w_h and bias are the gates, rows 4H..5H the query, so one matmul per
    operand serves both; the g gate's rows are doubled (see `tanh_via_sigmoid`). Query, key
    and value features are reordered head-dim major, (HD, NH) instead of (NH, HD): per-head
    sums then run over an outer axis while the inner loops span NH * B. Keys carry the
    softmax scale HD**-0.5 and log2(e), for the scan's base-2 softmax.
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
    head_mask: Tensor | None  # (NH, 1)
    dropout: float  # on the attention weights; 0 outside training
    record: bool  # return the attention weights
    keep: bool  # keep what backward needs


class LARNNScan(torch.autograd.Function):
    """A layer's loop over time, with a hand-written backward.

    Everything is laid out batch-last, (features, B), so that per-head sums over HD and the
    softmax over the window run over outer axes with NH * B contiguous values inside. The
    keys and values of all steps live in one history `kv` of K + T slots, (K + T, 2H, B):
    slot K + t is written by step t and never changed, and step t attends to the view
    kv[t : t + K], so the window never moves in memory and backward reads the same slots.
    Backward walks the steps in reverse, accumulating the gradient of each slot in `d_kv`;
    slot K + t is complete once step t is reached, since only later steps read it. It saves
    per step only what it cannot cheaply recompute: the gates, q and a; the attention
    weights are recomputed from q and the keys.

    Two implementations of each loop fill the same buffers: for float32 on the CPU the
    compiled ones of `larnn.compiled_scan` (C++, a few fused passes per step), elsewhere
    `python_scan_forward` and the loop in `backward` (ATen calls, any device and dtype).

    Inputs: x (T, C, B); h, c (H, B); queue (filled, 2H, B): keys and values of the past
    cell states; w_x (5H, C); bias (5H,); w_h (5H, H); w_a (4H, H); w_kv (2H, H); b_kv (2H,);
    pos_k, pos_v (K, HD, NH, 1) or None; kv_norm and hidden_norm weight, bias or None.
    Outputs: h and c at every step (T, H, B); weights (T, K, NH, B) when `spec.record`.
    """

    @staticmethod
    def forward(
        ctx, spec: ScanSpec, x, h, c, queue, w_x, bias, w_h, w_a, w_kv, b_kv, pos_k, pos_v, *norms
    ):
        T, _, B = x.shape
        H, NH, K = h.shape[0], spec.heads, spec.window
        filled, keep = queue.shape[0], spec.keep
        compiled = compiled_scan.applies_to(x, spec.kv_norm, spec.hidden_norm)
        if compiled:  # blocked by batch columns; a ring of K + 1 slots where nothing is kept
            kv = compiled_scan.history(queue, K, K + T if keep else K + 1, B)
        else:
            kv = x.new_empty(K + T, 2 * H, B)  # slots before K - filled are never read
            kv[K - filled : K] = queue
        drops = None
        if spec.dropout:  # inverted dropout masks on the attention weights, all steps at once
            drops = x.new_empty(T, K, NH, B).bernoulli_(1 - spec.dropout).div_(1 - spec.dropout)
        out = ScanOutputs(
            hs=x.new_empty(T, H, B),
            cs=x.new_empty(T, H, B),
            acts=x.new_empty(T, 4 * H, B) if keep else None,
            queries=x.new_empty(T, H, B) if keep else None,
            attended=x.new_zeros(T, H, B) if keep else None,  # zero while the queue is empty
            drops=drops,
            recorded=x.new_zeros(T, K, NH, B) if spec.record else None,
        )
        weights = (w_x, bias, w_h, w_a, w_kv, b_kv, pos_k, pos_v)
        prepared = None
        if compiled:
            prepared = compiled_scan.prepare(spec, x, h, c, *weights)
            compiled_scan.forward(spec, prepared, kv, filled, out)
        else:
            python_scan_forward(spec, x, h, c, kv, filled, *weights, out)
        if keep:
            ctx.spec, ctx.kv, ctx.filled, ctx.prepared = spec, kv, filled, prepared
            ctx.buffers = out.acts, out.queries, out.attended, out.drops
            ctx.save_for_backward(x, h, c, w_x, w_h, w_a, w_kv, pos_k, pos_v, out.hs, out.cs)
        return out.hs, out.cs, out.recorded

    @staticmethod
    @once_differentiable
    def backward(ctx, d_hs, d_cs, d_recorded):
        if ctx.prepared is not None:
            return LARNNScan.compiled_backward(ctx, d_hs, d_cs, d_recorded)
        spec, kv, filled = ctx.spec, ctx.kv, ctx.filled
        acts, queries, attended, drops = ctx.buffers
        x, h0, c0, w_x, w_h, w_a, w_kv, pos_k, pos_v, hs, cs = ctx.saved_tensors
        T, H, B = hs.shape
        NH, K = spec.heads, spec.window
        HD = H // NH
        dx = torch.empty_like(x)
        d_kv = torch.zeros_like(kv)
        dh, dc = hs.new_zeros(H, B), hs.new_zeros(H, B)
        d_w_x, d_w_h, d_w_a, d_w_kv = (torch.zeros_like(w) for w in (w_x, w_h, w_a, w_kv))
        d_bias = w_x.new_zeros(5 * H)
        d_pos_k = None if pos_k is None else torch.zeros_like(pos_k)
        d_pos_v = None if pos_v is None else torch.zeros_like(pos_v)
        d_norms = [None] * 4  # kv_norm weight, bias; hidden_norm weight, bias
        dz = kv.new_empty(5 * H, B)  # scratch, as in forward
        products = kv.new_empty(K, HD, NH, B)
        probs, d_p, p_dp = (kv.new_empty(K, NH, B) for _ in range(3))

        for t in reversed(range(T)):
            sig = acts[t]  # (4H, B)
            i, f, o, g = sig.chunk(4)
            g = g * 2 - 1
            tanh_c = tanh_via_sigmoid(cs[t])
            # Slot K + t is complete: only later steps, already done, read it.
            d_slot = d_kv[K + t]  # (2H, B)
            u = activation_fn(spec.kv_activation, cs[t])
            feat, d_u, d_kv_norm = norm_backward(spec.kv_norm, u, w_kv.t() @ d_slot)
            d_w_kv.addmm_(d_slot, feat.t())
            dc = dc + d_cs[t] + d_u * activation_grad(spec.kv_activation, u)
            _, d_h_raw, d_hidden_norm = norm_backward(spec.hidden_norm, o * tanh_c, dh + d_hs[t])
            d_norms = [
                accumulate(s, d) for s, d in zip(d_norms, d_kv_norm + d_hidden_norm, strict=True)
            ]
            dc = dc + d_h_raw * o * (1 - tanh_c * tanh_c)
            c_prev = cs[t - 1] if t else c0
            # Gradients of i, f, o and of the g gate's sigmoid (g = 2 sigmoid - 1), then of
            # their pre-activations.
            d_gates = torch.cat(
                [dc * g, dc * c_prev, d_h_raw * tanh_c, 2 * dc * i], out=dz[: 4 * H]
            )  # (4H, B)
            d_gates.mul_(sig).addcmul_(d_gates, sig, value=-1)  # times sig (1 - sig), in place
            dz[4 * H :] = 0
            dc = dc * f  # to c_{t-1}
            n = min(K, filled + t)
            if n:
                da = (w_a.t() @ dz[: 4 * H]).view(HD, NH, B)  # gradient of a
                d_window = d_kv[t + K - n : t + K]  # (n, 2H, B): gradients of the slots read
                keys = kv[t + K - n : t + K, :H].view(n, HD, NH, B)
                values = kv[t + K - n : t + K, H:].view(n, HD, NH, B)
                if pos_k is not None:
                    keys, values = keys + pos_k[K - n :], values + pos_v[K - n :]
                q = queries[t].view(HD, NH, B)
                # Recomputed: as fast as keeping it, and saves (T, K, NH, B) per layer.
                p = softmax2_(head_dot(keys, q, out=probs[:n]))  # (n, NH, B)
                w = p  # the weights applied to the values, and their gradient
                d_w = head_dot(values, da, out=d_p[:n])
                if d_recorded is not None:
                    d_w += d_recorded[t, K - n :]
                if drops is not None:
                    w = torch.mul(w, drops[t, K - n :], out=p_dp[:n])
                    d_w *= drops[t, K - n :]
                if spec.head_mask is not None:
                    w = torch.mul(w, spec.head_mask, out=p_dp[:n])
                    d_w *= spec.head_mask
                d_window[:, H:].view(n, HD, NH, B).addcmul_(w.unsqueeze(1), da)
                if pos_v is not None:
                    d_pos_v[K - n :] += (w.unsqueeze(1) * da).sum(-1, keepdim=True)
                # Base-2 softmax backward: d_scores = ln 2 * p * (d_p - sum_j p d_p).
                p_dot_dp = torch.mul(p, d_w, out=p_dp[:n]).sum(0)  # (NH, B)
                d_scores = d_w.sub_(p_dot_dp).mul_(p)  # (n, NH, B), without the ln 2
                d_window[:, :H].view(n, HD, NH, B).addcmul_(d_scores.unsqueeze(1), q * LN2)
                if pos_k is not None:
                    d_pos_k[K - n :] += LN2 * (d_scores.unsqueeze(1) * q).sum(-1, keepdim=True)
                dq = torch.mul(keys, d_scores.unsqueeze(1), out=products[:n]).sum(0)  # (HD, NH, B)
                q_grad = LN2 * activation_grad(spec.query_activation, q.view(H, B))
                torch.mul(dq.view(H, B), q_grad, out=dz[4 * H :])
                d_w_a.addmm_(dz[: 4 * H], attended[t].t())
            h_prev = hs[t - 1] if t else h0
            d_w_h.addmm_(dz, h_prev.t())
            d_w_x.addmm_(dz, x[t].t())
            d_bias += dz.sum(1)
            torch.mm(w_x.t(), dz, out=dx[t])
            dh = w_h.t() @ dz

        d_queue = d_kv[K - filled : K]
        d_b_kv = d_kv[K:].sum((0, 2))
        return (
            None,  # spec
            dx,
            dh,
            dc,
            d_queue,
            d_w_x,
            d_bias,
            d_w_h,
            d_w_a,
            d_w_kv,
            d_b_kv,
            d_pos_k,
            d_pos_v,
            *d_norms,
        )

    @staticmethod
    def compiled_backward(ctx, d_hs, d_cs, d_recorded):
        """The backward loop in C++ (compiled_scan), its gradients split as backward's."""
        *_, pos_k, pos_v, hs, cs = ctx.saved_tensors
        inputs = ctx.prepared
        C, H = inputs.x.shape[1], inputs.h.shape[0]
        grads = compiled_scan.backward(
            inputs, ctx.kv, ctx.filled, ctx.buffers, hs, cs, d_hs, d_cs, d_recorded
        )
        K = ctx.spec.window
        d_pos = (None, None)
        if grads.positional is not None:
            d_pos = tuple(part.view(pos_k.shape) for part in grads.positional)  # (K, HD, NH, 1)
        d_norms = [  # weight, bias of kv_norm, then of hidden_norm
            part
            for grad in (grads.kv_norm, grads.hidden_norm)
            for part in ((None, None) if grad is None else grad.unbind(0))
        ]
        return (
            None,  # spec
            grads.x,
            grads.h,
            grads.c,
            compiled_scan.unblocked(grads.kv[:, K - ctx.filled : K], inputs.h.shape[1]),  # queue
            grads.w_xh[:, :C],
            grads.w_xh[:, -1],  # bias
            grads.w_xh[:, C : C + H],
            grads.w_a,
            grads.w_kv[:, :H],
            grads.w_kv[:, H],  # b_kv
            *d_pos,
            *d_norms,
        )


class ScanOutputs(NamedTuple):
    """What the forward loop writes: per step (T, ...) and batch last (..., B)."""

    hs: Tensor  # (T, H, B)
    cs: Tensor  # (T, H, B)
    acts: Tensor | None  # (T, 4H, B): the gates' sigmoids, for backward
    queries: Tensor | None  # (T, H, B): q, for backward
    attended: Tensor | None  # (T, H, B): a, for backward; zero while the queue is empty
    drops: Tensor | None  # (T, K, NH, B): dropout masks, drawn before the loop
    recorded: Tensor | None  # (T, K, NH, B): the attention weights, when recorded


def python_scan_forward(
    spec: ScanSpec, x, h, c, kv, filled, w_x, bias, w_h, w_a, w_kv, b_kv, pos_k, pos_v, out
) -> None:
    """LARNNScan's forward loop in ATen calls, for any device and dtype.

    x (T, C, B); h, c (H, B); kv (K + T, 2H, B) with the queue in slots K - filled .. K - 1;
    fills kv's slots K .. K + T - 1 and the buffers of `out` (ScanOutputs). CPU details live
    in `head_dot`, `softmax2_` and `tanh_via_sigmoid`.
    """
    T, _, B = x.shape
    H, NH, K = h.shape[0], spec.heads, spec.window
    HD = H // NH
    # Scratch reused every step: a fresh window-sized tensor per op costs page faults that
    # take longer than the op itself.
    z, sig = x.new_empty(5 * H, B), x.new_empty(4 * H, B)
    bias, b_kv = bias[:, None], b_kv[:, None]  # (5H, 1), (2H, 1)
    products = x.new_empty(K, HD, NH, B)
    scores, weights = x.new_empty(K, NH, B), x.new_empty(K, NH, B)

    for t in range(T):
        torch.addmm(bias, w_x, x[t], out=z)  # (5H, B)
        z.addmm_(w_h, h)
        q = activation_fn(spec.query_activation, z[4 * H :])  # (H, B)
        gates = z[: 4 * H]  # (4H, B)
        n = min(K, filled + t)  # filled slots: the newest n of the window
        if n:
            window = kv[t + K - n : t + K]  # (n, 2H, B)
            keys = window[:, :H].view(n, HD, NH, B)
            values = window[:, H:].view(n, HD, NH, B)
            if pos_k is not None:
                keys, values = keys + pos_k[K - n :], values + pos_v[K - n :]
            p = softmax2_(head_dot(keys, q.view(HD, NH, B), out=scores[:n]))  # (n, NH, B)
            w = p  # the weights applied to the values
            if out.drops is not None:
                w = torch.mul(w, out.drops[t, K - n :], out=weights[:n])
            if spec.head_mask is not None:
                w = torch.mul(w, spec.head_mask, out=weights[:n])
            if out.recorded is not None:
                out.recorded[t, K - n :] = w
            a = torch.mul(values, w.unsqueeze(1), out=products[:n]).sum(0).view(H, B)  # (H, B)
            gates.addmm_(w_a, a)
            if out.attended is not None:
                out.attended[t] = a
        sig = torch.sigmoid(gates, out=sig if out.acts is None else out.acts[t])  # (4H, B)
        i, f, o, g = sig.chunk(4)
        g = g * 2 - 1  # tanh of the g gate, whose pre-activation rows are doubled
        c = torch.addcmul(f * c, i, g, out=out.cs[t])
        h = norm_forward(spec.hidden_norm, o * tanh_via_sigmoid(c))
        out.hs[t] = h
        if out.queries is not None:
            out.queries[t] = q
        # The new cell state enters the queue: projected once, into its own slot.
        feat = norm_forward(spec.kv_norm, activation_fn(spec.kv_activation, c))
        torch.addmm(b_kv, w_kv, feat, out=kv[K + t])


LN2 = math.log(2)


def head_dot(keys: Tensor, q: Tensor, out: Tensor) -> Tensor:
    """Per-head dot products over the window: (n, HD, NH, B) with (HD, NH, B) -> (n, NH, B).

    A loop over the few head dims reads each slab of keys once; a broadcast multiply and a
    sum over HD would write and reread a window-sized product.
    """
    (k0, *k_rest), (q0, *q_rest) = keys.unbind(1), q.unbind(0)
    torch.mul(k0, q0, out=out)
    for k_d, q_d in zip(k_rest, q_rest, strict=True):
        out.addcmul_(k_d, q_d)
    return out


def softmax2_(scores: Tensor) -> Tensor:
    """In-place softmax over dim 0 of scores in base 2: 2^s / sum 2^s.

    Equal to softmax(s ln 2); the keys carry log2(e), and ATen's exp2 is several times
    faster than its exp on CPU.
    """
    scores.sub_(scores.amax(0)).exp2_()
    return scores.div_(scores.sum(0))


def accumulate(total: Tensor | None, part: Tensor | None) -> Tensor | None:
    return part if total is None else total + part


def norm_parameters(norm: nn.Module) -> tuple[Tensor | None, Tensor | None]:
    return getattr(norm, "weight", None), getattr(norm, "bias", None)


def norm_forward(norm: nn.Module, x: Tensor) -> Tensor:
    """A per-feature norm (nn.BatchNorm1d, nn.LayerNorm, nn.Identity) on batch-last x (H, B)."""
    return x if isinstance(norm, nn.Identity) else norm(x.t()).t()


def norm_backward(
    norm: nn.Module, x: Tensor, dy: Tensor
) -> tuple[Tensor, Tensor, list[Tensor | None]]:
    """For batch-last x (H, B): y = norm_forward(norm, x) without side effects, the
    gradient dx from dy, and [d weight, d bias]."""
    if isinstance(norm, nn.Identity):
        return x, dy, [None, None]
    over = 1 if isinstance(norm, nn.BatchNorm1d) else 0  # batch statistics, or per sample
    if isinstance(norm, nn.BatchNorm1d) and not norm.training:
        mean, var, over = norm.running_mean[:, None], norm.running_var[:, None], None
    else:
        mean = x.mean(over, keepdim=True)
        var = x.var(over, unbiased=False, keepdim=True)
    rstd = torch.rsqrt(var + norm.eps)
    x_hat = (x - mean) * rstd
    d_hat = dy * norm.weight[:, None]
    if over is None:
        dx = d_hat * rstd
    else:
        d_mean, d_proj = d_hat.mean(over, keepdim=True), (d_hat * x_hat).mean(over, keepdim=True)
        dx = rstd * (d_hat - d_mean - x_hat * d_proj)
    y = torch.addcmul(norm.bias[:, None], x_hat, norm.weight[:, None])
    return y, dx, [(dy * x_hat).sum(1), dy.sum(1)]


def tanh_via_sigmoid(x: Tensor) -> Tensor:
    """tanh(x) = 2 sigmoid(2x) - 1: ATen's sigmoid is several times faster than its tanh on CPU."""
    return torch.sigmoid(2 * x) * 2 - 1


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
        window, head_masks, kv_activation = self._resolve(knobs or InferenceKnobs(), x.device)

        hs, cs, memories, weights = [], [], [], []
        layer_input = x
        for i, layer in enumerate(self.layers):
            out, h, c, memory, recorded = layer(
                layer_input,
                state.h[i],
                state.c[i],
                state.memory[i],
                state.steps,
                window,
                head_masks[i],
                kv_activation,
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
        record = AttentionRecord(tuple(weights), slot_times(state.steps, T, window, x.device))
        return output, new_state, record

    def _resolve(self, knobs: InferenceKnobs, device) -> tuple[int, list[Tensor | None], str]:
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
            mask = torch.as_tensor(knobs.head_mask, dtype=torch.float32, device=device)
            if mask.shape == (cfg.heads,):
                mask = mask.expand(cfg.num_layers, cfg.heads)
            if mask.shape != (cfg.num_layers, cfg.heads):
                raise ConfigError(
                    f"InferenceKnobs.head_mask: expected shape ({cfg.heads},) or "
                    f"({cfg.num_layers}, {cfg.heads}), got {tuple(mask.shape)}"
                )
            masks = list(mask.unbind(0))
        return window, masks, kv_activation


def slot_times(steps: int, length: int, window: int, device=None) -> Tensor:
    """Absolute time index of each window slot at each step, oldest first; -1 where empty.

    At absolute step s = steps + t, slot i holds the cell state of step s - (window - i).
    Returns (T, K) int64.
    """
    s = torch.arange(steps, steps + length, device=device)[:, None]  # (T, 1)
    lag = torch.arange(window, 0, -1, device=device)[None, :]  # (1, K)
    index = s - lag  # (T, K)
    return index.masked_fill(index < 0, -1)
