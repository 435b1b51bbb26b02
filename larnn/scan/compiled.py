"""LARNNScan's loops compiled for the CPU (`csrc/`), and when to use them.

The Python loops of LARNNScan make ~30 ATen calls per step and layer forward and ~60
backward. The compiled forward runs each block of LANES batch columns through all steps on
one thread, with products of its own, unless batch norm takes the batch's statistics at
each step; then, like the compiled backward, it makes three (backward: six) matmul calls a
step and does the rest (attention, gates, norms) in fused passes over batch-last data,
spread over ATen's threads. They read and write the same buffers as the Python loops.
They run for float32 on the CPU; everything else (float64, CUDA) takes the Python loops.

They are built with torch's C++ extension tooling the first time they are needed (about
15 s, once per machine, source and torch version; cached under TORCH_EXTENSIONS_DIR, by
default ~/.cache/torch_extensions). The environment variable LARNN_COMPILED_SCAN chooses:
unset, build them and fall back to the Python loops with a warning where that fails (no
C++ compiler); "0", never use them; "1", use them and raise where they cannot be built.
"""

from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor, nn

from larnn.scan.types import ScanOutputs, ScanSpec

SOURCES = [
    Path(__file__).with_name("csrc") / f"scan_{part}.cpp" for part in ("forward", "backward")
]
ENV_SWITCH = "LARNN_COMPILED_SCAN"
ACTIVATION_CODES = {"elu": 0, "relu": 1, "tanh": 2, "none": 3}  # enum Activation in the C++
NO_NORM, LAYER_NORM, BATCH_NORM, BATCH_NORM_EVAL = 0, 1, 2, 3  # enum Norm in the C++

# Vector instructions by the capability ATen detected on this CPU, as ATen's own kernels
# are built: with AVX-512 one instruction covers a block's 16 batch columns (about 10% less
# time than AVX2 for config (a) forward, measured). Named, not -march=native, so that a
# build cached in a home folder shared with another kind of CPU is rebuilt, not misrun.
VECTOR_FLAGS = {
    "AVX2": ["-mavx2", "-mfma"],
    "AVX512": ["-mavx2", "-mfma", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq"],
}

_build_error: str | None = None  # why the last build failed
_loaded = False
_build_lock = threading.Lock()  # app sessions are threads: one build, one registration


def vector_flags() -> list[str]:
    """The vector instruction flags the loops are built with on this CPU (VECTOR_FLAGS)."""
    return VECTOR_FLAGS.get(torch.backends.cpu.get_cpu_capability(), [])


# kLanes in the C++: batch columns per block of the key/value history, one vector register
# of the instructions the loops are built with (scan_common.h).
LANES = 16 if "-mavx512f" in vector_flags() else 8


def build() -> None:
    """Compile (or load from the cache) and register torch.ops.larnn.scan_forward/backward."""
    global _loaded
    from torch.utils.cpp_extension import load

    with _build_lock:
        if _loaded:
            return
        flags = ["-O3", "-fopenmp", "-fno-math-errno", "-fno-trapping-math"]
        flags += vector_flags()
        load(
            # One build folder per instruction set: a child process capped at AVX2 (or a home
            # folder shared with another kind of CPU) does not rebuild over this one.
            name=f"larnn_scan_{torch.backends.cpu.get_cpu_capability().lower()}",
            sources=[str(source) for source in SOURCES],
            extra_cflags=flags,
            extra_ldflags=["-fopenmp"],
            is_python_module=False,
        )
        # Fake (meta) kernels, for fake tensors (torch.library.opcheck, torch.compile): both
        # ops only write into tensors they are given, declared Tensor(a!) in their schemas, so
        # there is nothing to allocate or return. (The C++ names this module as their home.)
        for op in ("larnn::scan_forward", "larnn::scan_backward"):
            torch.library.register_fake(op, _writes_only_its_arguments)
        _loaded = True


def _writes_only_its_arguments(*args, **kwargs) -> None:
    return None


def enabled() -> bool:
    """Whether the compiled loops are switched on and built; builds them on first call."""
    global _build_error
    switch = os.environ.get(ENV_SWITCH, "")
    if switch == "0":
        return False
    if _loaded:
        return True
    if _build_error is not None and switch != "1":
        return False
    try:
        build()
    except Exception as error:  # no compiler, no ninja, a failed build: all mean "not here"
        _build_error = f"{type(error).__name__}: {error}"
        if switch == "1":
            raise RuntimeError(
                f"{ENV_SWITCH}=1 but the compiled LARNN scan could not be built: {_build_error}"
            ) from error
        warnings.warn(
            f"larnn: the compiled CPU scan could not be built, so the slower Python loop runs "
            f"({build_error()}). Set {ENV_SWITCH}=0 to silence this.",
            RuntimeWarning,
            stacklevel=3,
        )
        return False
    return True


def build_error() -> str | None:
    """Why the last build failed (its first line), or None."""
    return None if _build_error is None else _build_error.splitlines()[0]


def applies_to(x: Tensor, kv_norm: nn.Module, hidden_norm: nn.Module) -> bool:
    """Whether the compiled loops run this scan: float32 on the CPU, and batch norms in
    training see more than one sample (else the Python loop raises torch's own error)."""
    if x.device.type != "cpu" or x.dtype != torch.float32:
        return False
    if x.shape[-1] < 2 and any(uses_batch_statistics(n) for n in (kv_norm, hidden_norm)):
        return False
    return enabled()


def uses_batch_statistics(norm: nn.Module) -> bool:
    return isinstance(norm, nn.BatchNorm1d) and (norm.training or norm.running_mean is None)


class NormArguments(NamedTuple):
    """A per-feature norm as the C++ takes it (struct NormSpec)."""

    kind: int  # NO_NORM, LAYER_NORM, BATCH_NORM (batch statistics) or BATCH_NORM_EVAL
    params: Tensor | None  # (2 or 4, H): weight, bias and, for batch norm, running mean, var
    eps: float


def norm_arguments(norm: nn.Module) -> NormArguments:
    """A per-feature norm (nn.Identity, nn.LayerNorm, nn.BatchNorm1d) as the C++ takes it."""
    if isinstance(norm, nn.Identity):
        return NormArguments(NO_NORM, None, 0.0)
    if isinstance(norm, nn.LayerNorm):
        return NormArguments(LAYER_NORM, torch.stack([norm.weight, norm.bias]), norm.eps)
    kind = BATCH_NORM if uses_batch_statistics(norm) else BATCH_NORM_EVAL
    params = [norm.weight, norm.bias, norm.running_mean, norm.running_var]
    return NormArguments(kind, torch.stack([p.to(norm.weight) for p in params]), norm.eps)


def history(queue: Tensor, window: int, slots: int, batch: int) -> Tensor:
    """The key/value history as the C++ loops keep it, by block of LANES batch columns so
    that a block's window is contiguous: (blocks, slots, 2H, LANES), feature i of slot s for
    sample b at [b // LANES, s, i, b % LANES]; the queue (filled, 2H, B) in slots
    window - filled .. window - 1; other slots and the padding are unset."""
    filled, features = queue.shape[0], queue.shape[1]
    blocks = -(-batch // LANES)
    kv = queue.new_empty(blocks, slots, features, LANES)
    if filled:
        padded = queue.new_zeros(filled, features, blocks * LANES)
        padded[..., :batch] = queue
        kv[:, window - filled : window] = padded.view(filled, features, blocks, LANES).permute(
            2, 0, 1, 3
        )
    return kv


def unblocked(kv: Tensor, batch: int) -> Tensor:
    """(blocks, n, 2H, LANES) of history() back to (n, 2H, B)."""
    blocks, n, features, _ = kv.shape
    return kv.permute(1, 2, 0, 3).reshape(n, features, blocks * LANES)[..., :batch]


class Prepared(NamedTuple):
    """A scan's inputs as the C++ loops take them: float32, contiguous, batch last; the
    weights as transformed by scan_weights (see ScanWeights: g rows doubled, head-dim major
    features, keys scaled by log2(e) / sqrt(HD))."""

    x: Tensor  # (T, C, B)
    h: Tensor  # (H, B)
    c: Tensor  # (H, B)
    w_xh: Tensor  # (5H, C + H + 1): [w_x, w_h, bias], applied to [x_t; h_{t-1}; 1]
    w_a: Tensor  # (4H, H)
    w_kv: Tensor  # (2H, H + 1): [w_kv, b_kv], applied to [feature; 1]
    pos_k: Tensor | None  # (K, H): the pe(lag) part of the keys per window position
    pos_v: Tensor | None  # (K, H): of the values
    head_mask: Tensor | None  # (NH,)
    visible: Tensor | None  # (T, K, B or 1) bool: False where a slot holds a hidden step
    heads: int  # NH
    query_activation: int  # ACTIVATION_CODES
    kv_activation: int  # ACTIVATION_CODES
    kv_norm: NormArguments
    hidden_norm: NormArguments

    def op_arguments(self) -> dict[str, Tensor | int | float | None]:
        """The arguments that scan_forward and scan_backward share, by their schema names."""
        return dict(
            x=self.x,
            h0=self.h,
            c0=self.c,
            w_xh=self.w_xh,
            w_a=self.w_a,
            w_kv=self.w_kv,
            pos_k=self.pos_k,
            pos_v=self.pos_v,
            head_mask=self.head_mask,
            visible=self.visible,
            heads=self.heads,
            query_activation=self.query_activation,
            kv_activation=self.kv_activation,
            kv_norm_kind=self.kv_norm.kind,
            kv_norm_params=self.kv_norm.params,
            kv_norm_eps=self.kv_norm.eps,
            h_norm_kind=self.hidden_norm.kind,
            h_norm_params=self.hidden_norm.params,
            h_norm_eps=self.hidden_norm.eps,
        )


def prepare(spec: ScanSpec, x, h, c, w_x, bias, w_h, w_a, w_kv, b_kv, pos_k, pos_v) -> Prepared:
    H, K = h.shape[0], spec.window
    return Prepared(
        x=x.contiguous(),
        h=h.contiguous(),
        c=c.contiguous(),
        w_xh=torch.cat([w_x, w_h, bias[:, None]], dim=1),
        w_a=w_a.contiguous(),
        w_kv=torch.cat([w_kv, b_kv[:, None]], dim=1),
        pos_k=None if pos_k is None else pos_k.reshape(K, H).contiguous(),
        pos_v=None if pos_v is None else pos_v.reshape(K, H).contiguous(),
        head_mask=None if spec.head_mask is None else spec.head_mask.to(x),
        visible=None if spec.visible is None else spec.visible.contiguous(),
        heads=spec.heads,
        query_activation=ACTIVATION_CODES[spec.query_activation],
        kv_activation=ACTIVATION_CODES[spec.kv_activation],
        kv_norm=norm_arguments(spec.kv_norm),
        hidden_norm=norm_arguments(spec.hidden_norm),
    )


def forward(spec: ScanSpec, inputs: Prepared, kv: Tensor, filled: int, out: ScanOutputs) -> None:
    """LARNNScan's forward loop: fills kv's new slots and `out`, then
    updates batch norms' running statistics as nn.BatchNorm1d would have, step by step.
    kv, from history(), holds K + T slots, or K + 1 used as a ring where backward will not
    read them."""
    T, _, B = inputs.x.shape
    H = inputs.h.shape[0]
    kv_stats = inputs.x.new_empty(T, 2, H) if inputs.kv_norm.kind == BATCH_NORM else None
    h_stats = inputs.x.new_empty(T, 2, H) if inputs.hidden_norm.kind == BATCH_NORM else None
    torch.ops.larnn.scan_forward(
        **inputs.op_arguments(),
        kv=kv,
        filled=filled,
        window=spec.window,
        drops=out.drops,
        # Written (Tensor(a!) in the schema), with kv's new slots:
        hs=out.hs,
        cs=out.cs,
        acts=out.acts,
        queries=out.queries,
        attended=out.attended,
        recorded=out.recorded,
        kv_stats=kv_stats,
        h_stats=h_stats,
    )
    if kv_stats is not None:
        update_running_statistics(spec.kv_norm, kv_stats, B)
    if h_stats is not None:
        update_running_statistics(spec.hidden_norm, h_stats, B)


class Gradients(NamedTuple):
    x: Tensor  # (T, C, B)
    h: Tensor  # (H, B)
    c: Tensor  # (H, B)
    kv: Tensor  # (blocks, K + T, 2H, LANES), as history()
    w_xh: Tensor  # (5H, C + H + 1)
    w_a: Tensor  # (4H, H)
    w_kv: Tensor  # (2H, H + 1)
    positional: Tensor | None  # (2, K, H): key part, value part
    kv_norm: Tensor | None  # (2, H): weight, bias
    hidden_norm: Tensor | None  # (2, H)


def backward(inputs: Prepared, kv, filled, buffers, hs, cs, d_hs, d_cs, d_recorded) -> Gradients:
    """LARNNScan's backward loop; buffers are the forward's acts, queries, attended, drops."""
    acts, queries, attended, drops = buffers
    K, H = kv.shape[1] - hs.shape[0], inputs.h.shape[0]
    new = inputs.x.new_zeros
    grads = Gradients(
        x=torch.empty_like(inputs.x),
        h=torch.empty_like(inputs.h),
        c=torch.empty_like(inputs.c),
        kv=torch.zeros_like(kv),
        w_xh=torch.zeros_like(inputs.w_xh),
        w_a=torch.zeros_like(inputs.w_a),
        w_kv=torch.zeros_like(inputs.w_kv),
        positional=None if inputs.pos_k is None else new(2, K, H),
        kv_norm=None if inputs.kv_norm.kind == NO_NORM else new(2, H),
        hidden_norm=None if inputs.hidden_norm.kind == NO_NORM else new(2, H),
    )
    torch.ops.larnn.scan_backward(
        **inputs.op_arguments(),
        kv=kv,
        filled=filled,
        drops=drops,
        hs=hs,
        cs=cs,
        acts=acts,
        queries=queries,
        attended=attended,
        d_hs=d_hs.contiguous(),
        d_cs=d_cs.contiguous(),
        d_recorded=None if d_recorded is None else d_recorded.contiguous(),
        # Written (Tensor(a!) in the schema):
        dx=grads.x,
        dh0=grads.h,
        dc0=grads.c,
        d_kv=grads.kv,
        d_w_xh=grads.w_xh,
        d_w_a=grads.w_a,
        d_w_kv=grads.w_kv,
        d_pos=grads.positional,
        d_kv_norm=grads.kv_norm,
        d_h_norm=grads.hidden_norm,
    )
    return grads


def update_running_statistics(norm: nn.Module, stats: Tensor, batch: int) -> None:
    """What nn.BatchNorm1d's training forward does to its running statistics, once per step
    in order, from the per-step batch mean and biased variance in stats (T, 2, H)."""
    if not norm.track_running_stats:
        return
    # Through .data, as batch norm's own kernel does: an earlier batch norm call in this
    # graph (on the carried queue) saved these buffers, and a bumped version would fail its
    # backward, though in training it never reads them.
    running_mean, running_var = norm.running_mean.data, norm.running_var.data
    for mean, var in stats.unbind(0):
        norm.num_batches_tracked += 1
        momentum = norm.momentum
        if momentum is None:  # a cumulative average, as nn.BatchNorm1d does
            momentum = 1.0 / float(norm.num_batches_tracked)
        running_mean.lerp_(mean, momentum)
        running_var.lerp_(var * (batch / (batch - 1)), momentum)
