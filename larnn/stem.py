"""The input stem: a small causal convolutional front end that shortens the series the cell
steps over.

A LARNN (or the LSTM baseline) stepping over a raw univariate series of 1,460 samples sees one
number per step, and its gates' input weights start tiny (Xavier over a fan-in of one): both
networks stayed at chance on such series. The stem lifts each sample to `width` features with
causal convolutions (batch norm over real steps, ReLU), then hands the encoder one step per `patch`
samples: the maximum of each feature over the patch's real samples. Cell step j covers the
samples j*patch .. (j+1)*patch - 1 of the original series (`patch_span`); its receptive field
reaches `receptive_field - 1` samples further back. With `pool` > 1 the first layer's features
are already the maxima over blocks of `pool` samples, and the later layers step over the blocks:
on a long series they do `pool` times less work (the blocks tile each patch). With `residual`
the classifier's head reads the encoder's output plus the stem's (larnn.classifier).

Causal, and blind to padding: a convolution at sample s reads samples s-k+1..s (zeros before
the start); batch norm applies per-feature statistics (running ones in eval; in training those
of the batch's real steps only) and ReLU acts on one step at a time; padded samples never enter
a patch's maximum. A series padded to any length gives the same encoder input at its real
steps.

Shape letters: B batch, T samples, C channels, W stem width, P patch, S = ceil(T / P) steps,
Q pool, U = ceil(T / Q) blocks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from larnn.config_base import JsonConfig, require


@dataclass(frozen=True)
class StemConfig(JsonConfig):
    """A convolutional stem; `ClassifierConfig.stem` holds its fields, {} for none."""

    width: int = 64  # W: features per step the encoder reads
    kernels: list = field(default_factory=lambda: [7, 5, 3])  # one causal Conv1d per kernel
    patch: int = 1  # P: samples per encoder step (the maximum over each patch)
    pool: int = 1  # Q: samples per block the layers after the first step over; divides P
    residual: bool = False  # the head reads the encoder's output plus the stem's (W = H)

    def __post_init__(self) -> None:
        owner = "StemConfig"
        for name in ("width", "patch", "pool"):
            value = getattr(self, name)
            valid = isinstance(value, int) and not isinstance(value, bool) and value >= 1
            require(valid, owner, name, f"must be an integer >= 1, got {value!r}")
        require(
            len(self.kernels) >= 1
            and all(
                isinstance(k, int) and not isinstance(k, bool) and k >= 1 for k in self.kernels
            ),
            owner,
            "kernels",
            f"must be one or more integers >= 1 (a kernel size per layer), got {self.kernels!r}",
        )
        require(
            self.patch % self.pool == 0 and (self.pool == 1 or len(self.kernels) >= 2),
            owner,
            "pool",
            f"must divide the patch ({self.patch}) and needs a layer after the first, got "
            f"{self.pool!r}",
        )
        require(isinstance(self.residual, bool), owner, "residual", "must be true or false")

    @property
    def receptive_field(self) -> int:
        """Samples one feature before the patch maximum reads: its sample (its block's last,
        with a pool) and receptive_field - 1 before it."""
        first, *later = self.kernels
        return self.pool + (first - 1) + self.pool * sum(k - 1 for k in later)


def stem_steps(lengths: Tensor, patch: int) -> Tensor:
    """Encoder steps of series of `lengths` samples: ceil(lengths / patch)."""
    return (lengths + patch - 1) // patch


def patch_span(step: int, patch: int, length: int) -> tuple[int, int]:
    """The samples [start, stop) of a series of `length` samples that encoder step `step`
    covers."""
    return step * patch, min((step + 1) * patch, length)


class ConvStem(nn.Module):
    """Causal Conv1d -> MaskedBatchNorm -> ReLU per kernel (the first followed by a max over
    each block of `pool` samples), then a max over each patch.

    Inputs: x (B, T, C), lengths (B,) or None (all T real).
    Outputs: z (B, S, W), steps (B,) or None: each series' real encoder steps.
    """

    def __init__(self, channels: int, config: StemConfig) -> None:
        super().__init__()
        self.config = config
        widths = [channels] + [config.width] * len(config.kernels)
        self.convs = nn.ModuleList(
            nn.Conv1d(a, b, k) for a, b, k in zip(widths, widths[1:], config.kernels, strict=False)
        )
        self.norms = nn.ModuleList(MaskedBatchNorm(config.width) for _ in config.kernels)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        pool, patch = self.config.pool, self.config.patch
        z = x.transpose(1, 2)  # (B, C, T)
        for layer, (conv, norm) in enumerate(zip(self.convs, self.norms, strict=True)):
            real = None
            if lengths is not None:
                real = torch.arange(z.shape[2], device=x.device) < lengths[:, None]
            z = conv(F.pad(z, (conv.kernel_size[0] - 1, 0)))  # causal: (B, W, T), or (B, W, U)
            z = F.relu(norm(z, real))
            if layer == 0 and pool > 1:
                z, lengths = block_max(z, lengths, pool)  # (B, W, U)
        if patch > 1:
            z, lengths = block_max(z, lengths, patch // pool)  # (B, W, S)
        return z.transpose(1, 2), lengths


def block_max(z: Tensor, lengths: Tensor | None, size: int) -> tuple[Tensor, Tensor | None]:
    """The maximum of each feature of z (B, W, T) over blocks of `size` steps: (B, W, ceil(T /
    size)), and each series' real blocks. Padded steps never win a maximum; blocks past a
    series' last real one are zeros (what a causal convolution or the encoder reads there)."""
    B, W, T = z.shape
    blocks = math.ceil(T / size)
    if size > 1:
        real = torch.arange(blocks * size, device=z.device)[None, :] < (
            lengths[:, None] if lengths is not None else T
        )  # (B, blocks * size): padded steps and the last block's fill
        z = F.pad(z, (0, blocks * size - T)).masked_fill(~real[:, None, :], -math.inf)
        z = z.view(B, W, blocks, size).amax(dim=3)  # (B, W, blocks)
    if lengths is None:
        return z, None
    steps = stem_steps(lengths, size)
    past = torch.arange(blocks, device=z.device)[None, :] >= steps[:, None]  # (B, blocks)
    return z.masked_fill(past[:, None, :], 0.0), steps


class MaskedBatchNorm(nn.BatchNorm1d):
    """`nn.BatchNorm1d` over (B, W, T) whose training statistics skip padded steps.

    Per feature, over the batch and time like BatchNorm1d, so the level of a window survives
    (a layer norm over the features of one step divides it away: on a univariate series it
    kept only the window's shape). In eval it applies the running statistics, one series at
    a time; in training, padded steps (`real` False) neither enter the statistics nor move
    the running ones, so a ragged batch is normalised as its real steps alone would be.
    """

    def forward(self, z: Tensor, real: Tensor | None = None) -> Tensor:
        if not self.training or real is None:
            return super().forward(z)
        mask = real[:, None, :].to(z.dtype)  # (B, 1, T)
        count = mask.sum()
        mean = (z * mask).sum(dim=(0, 2)) / count  # (W,)
        centred = (z - mean[None, :, None]) * mask
        var = centred.pow(2).sum(dim=(0, 2)) / count  # (W,) biased, as BatchNorm1d normalises
        if self.track_running_stats:
            with torch.no_grad():
                unbiased = var * count / max(count - 1, 1)
                self.running_mean.lerp_(mean, self.momentum)
                self.running_var.lerp_(unbiased, self.momentum)
                self.num_batches_tracked += 1
        scale = self.weight / torch.sqrt(var + self.eps)  # (W,)
        return (z - mean[None, :, None]) * scale[None, :, None] + self.bias[None, :, None]
