"""One LARNN layer over a series: the layer's weights regrouped for LARNNScan, and the call.

`run_layer` is `LARNNCell.forward`, given the cell's LayerParameters. It projects the carried
queue to keys and values once,
folds an eval-mode batch norm into the key/value projection, and hands the scan batch-last
tensors; `larnn.reference.reference_layer` computes the same outputs step by step.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from larnn.activations import activation_fn
from larnn.scan.function import LARNNScan
from larnn.scan.types import LayerKnobs, LayerParameters, ScanSpec, ScanWeights


def scan_weights(layer: LayerParameters) -> ScanWeights:
    """The layer's weights regrouped for the scan (see ScanWeights); differentiable.

    Equal to the reference's, transformed: gates and query share one matmul per operand, the
    g gate's rows are doubled (tanh(g) = 2 sigmoid(2 g) - 1), features are head-dim major,
    and the keys carry 1 / sqrt(HD) and log2(e) (softmax(s) = 2^(s log2 e) / sum).
    """
    C, H, NH = layer.gates_x.shape[1], layer.gates_h.shape[1], layer.heads
    q_x, q_h = layer.query_weight.split([C, H], dim=1)
    g_x, g_h, g_a, g_b = layer.gates_x, layer.gates_h, layer.gates_a, layer.gates_bias
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
        bias=torch.cat([g_b * g_scale[:, 0], layer.query_bias[order]]),  # (5H,)
        w_a=g_a[:, order] * g_scale,  # (4H, H)
        w_kv=layer.kv_weight[kv_order] * kv_scale[:, None],  # (2H, H + P)
        b_kv=layer.kv_bias[kv_order] * kv_scale,  # (2H,)
    )


def project_memory(
    layer: LayerParameters, cells: Tensor, weights: ScanWeights, kv_activation: str
) -> Tensor:
    """Key and value of past cell states, without the positional part: (..., H) -> (..., 2H)."""
    H = cells.shape[-1]
    flat = layer.kv_norm(activation_fn(kv_activation, cells.reshape(-1, H)))  # (N, H)
    kv = F.linear(flat, weights.w_kv[:, :H], weights.b_kv)  # (N, 2H)
    return kv.reshape(*cells.shape[:-1], 2 * H)


def positional_kv(
    layer: LayerParameters, window: int, weights: ScanWeights
) -> tuple[Tensor, Tensor] | tuple[None, None]:
    """Positional part of key and value per window slot, oldest first: 2 x (K, HD, NH, 1).

    The reference concatenates pe(lag) to each past state before the projection; its part of
    the projection depends only on the slot, so it is computed once per call and added.
    """
    if layer.positions is None:
        return None, None
    H, NH = layer.query_bias.shape[0], layer.heads
    lags = layer.positions[:window].flip(0)  # (K, P): slot i has lag window - i
    kv = F.linear(lags, weights.w_kv[:, H:])  # (K, 2H)
    pos_k, pos_v = kv.view(window, 2, H // NH, NH, 1).unbind(1)  # 2 x (K, HD, NH, 1)
    return pos_k, pos_v


def norm_parameters(norm: nn.Module) -> tuple[Tensor | None, Tensor | None]:
    return getattr(norm, "weight", None), getattr(norm, "bias", None)


def run_layer(
    layer: LayerParameters,
    x: Tensor,
    h: Tensor,
    c: Tensor,
    memory: Tensor,
    steps: int,
    knobs: LayerKnobs,
    record: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor | None]:
    """Run the layer over a series (the arguments and results of `LARNNCell.forward`)."""
    window, kv_activation = knobs.window, knobs.kv_activation
    H, NH, K, Kq = h.shape[1], layer.heads, window, memory.shape[1]
    weights = scan_weights(layer)
    filled = min(steps, K)  # slots of the window that hold a past cell state
    queue = x.new_zeros(x.shape[1], 0, 2 * H)  # (B, filled, 2H)
    if filled:
        queue = project_memory(layer, memory[:, Kq - filled :], weights, kv_activation)
    w_kv, b_kv, kv_norm = weights.w_kv[:, :H], weights.b_kv, layer.kv_norm
    if isinstance(kv_norm, nn.BatchNorm1d) and not kv_norm.training:
        # In eval, batch norm is affine: fold it into the projection, one call less a step.
        scale = kv_norm.weight * torch.rsqrt(kv_norm.running_var + kv_norm.eps)  # (H,)
        b_kv = b_kv + w_kv @ (kv_norm.bias - kv_norm.running_mean * scale)
        w_kv, kv_norm = w_kv * scale, nn.Identity()
    norms = [p for norm in (kv_norm, layer.hidden_norm) for p in norm_parameters(norm)]
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
        *positional_kv(layer, K, weights),
        *norms,
    )
    needs_grad = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)
    spec = ScanSpec(
        heads=NH,
        window=K,
        query_activation=layer.query_activation,
        kv_activation=kv_activation,
        kv_norm=kv_norm,
        hidden_norm=layer.hidden_norm,
        head_mask=knobs.head_mask,
        visible=knobs.visible,
        dropout=layer.attention_dropout,
        record=record,
        keep=needs_grad,
    )
    hs, cs, recorded = LARNNScan.apply(spec, *tensors)  # (T, H, B) twice, (T, K, NH, B)
    output = hs.permute(0, 2, 1)  # (T, B, H), batch-last in memory for the next layer
    newest = cs[-Kq:].permute(2, 0, 1)  # (B, min(T, Kq), H)
    if newest.shape[1] < Kq:  # the oldest slots come from the carried queue
        newest = torch.cat([memory[:, newest.shape[1] :], newest], dim=1)
    memory = newest  # (B, Kq, H)
    if record:
        recorded = recorded.permute(3, 0, 2, 1)  # (B, T, NH, K)
    return output, output[-1], cs[-1].t(), memory, recorded
