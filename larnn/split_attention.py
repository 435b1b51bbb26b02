"""Attention over a whole split: where each LARNN head looks, by lag, and which heads specialise;
beside it, what each input channel contributes to either model's predictions.

One sequence at a time, `larnn.inference` shows where each query step looks. Over a split these
functions run a classifier in batches and aggregate:

- `split_attention`: per layer and head, the mean attention weight at each lag 1..k' (over the
  whole split and per true class), the head's mean normalised entropy and its mean share on the
  oldest filled slot. A slot's lag comes from the recorded slot times, never from its position:
  lag = step(t) - step(j) for query sample t and the slot's time j, where step(s) = s // P is
  the encoder step of sample s (P = 1 without a patching stem; `larnn.stem`).
- `channel_importance`: Captum's Integrated Gradients (`larnn.faithfulness.attribution`) of the
  predicted class, mean |attribution| per channel over the real steps, as shares summing to 1.

Every aggregate counts real steps only: with `lengths` (N,), steps at or after a series' length
are padding and enter no sum and no count. Query steps are samples: a patched model's record
repeats each encoder step's attention for every sample of its patch, and each real sample counts
once. Inputs are raw signals (N, T, C) with the checkpoint's `Normalizer`, as in
`larnn.inference`.

Shape letters: N sequences, B a batch of them, T samples, C channels, L layers, NH heads,
K the window k' (lags 1..K), G classes.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields, replace

import numpy as np
import pandas as pd
import torch

from larnn.classifier import SequenceClassifier
from larnn.data import Normalizer
from larnn.errors import ConfigError
from larnn.faithfulness import attribution, head_mask, slot_entropy
from larnn.inference import normalised_tensor
from larnn.model import InferenceKnobs


@dataclass(frozen=True)
class SplitAttention:
    """A LARNN's attention over a split, aggregated per layer and head.

    Heads the knobs switch off are NaN everywhere. The entropy and the oldest slot's share
    are means over the real query steps with at least two filled slots (one slot takes all
    the attention by definition).
    """

    by_lag: np.ndarray  # (L, NH, K) mean weight at lag l + 1, over real steps with that lag filled
    by_lag_class: np.ndarray | None  # (G, L, NH, K) the same per true class; None without labels
    entropy: np.ndarray  # (L, NH) entropy / ln(filled slots): 0 one slot, 1 uniform
    oldest_share: np.ndarray  # (L, NH) weight on the oldest filled slot
    uniform_oldest: float  # the oldest slot's share under uniform attention, same steps
    sequences: int  # N
    steps: int  # real query steps, all sequences together
    class_sequences: np.ndarray | None  # (G,) sequences of each true class
    accuracy: float | None  # share predicted right with these knobs; None without labels
    patch: int  # samples per encoder step (lags are in encoder steps)

    @property
    def window(self) -> int:
        return int(self.by_lag.shape[-1])


def slot_lags(slot_time: torch.Tensor, patch: int) -> torch.Tensor:
    """(T, K) lag of each slot at each query sample t, in encoder steps: t // P - j // P for
    the slot's time j; 0 where the slot is empty (j = -1)."""
    T = slot_time.shape[0]
    step = torch.arange(T)[:, None] // patch  # (T, 1)
    return torch.where(slot_time >= 0, step - slot_time.div(patch, rounding_mode="floor"), 0)


@dataclass
class _Sums:
    """The sums behind a SplitAttention, over some batches (float64)."""

    lag: torch.Tensor  # (G, L, NH, K) attention weight by true class (all in class 0 without y)
    lag_count: torch.Tensor  # (G, K) real query steps whose slot at that lag is filled
    entropy: torch.Tensor  # (L, NH) normalised entropy, over the steps with >= 2 filled slots
    oldest: torch.Tensor  # (L, NH) weight on the oldest filled slot, same steps
    uniform: float  # the oldest slot's share under uniform attention, same steps
    counted: int  # those steps
    right: int  # sequences predicted right

    def __add__(self, other: _Sums) -> _Sums:
        return _Sums(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))


@torch.no_grad()
def _batch_sums(
    model: SequenceClassifier,
    x: torch.Tensor,
    ends: torch.Tensor,
    y: torch.Tensor | None,
    knobs: InferenceKnobs,
) -> _Sums:
    """The sums of one batch: x (B, T, C) normalised, ends (B,) real steps, y (B,) or None."""
    out = model(x, ends, knobs=knobs, return_attention=True)
    record = out.attention
    B, T = x.shape[:2]
    G, K = model.config.num_classes, record.slot_time.shape[1]
    if y is None:
        group = torch.zeros(B, G)
        group[:, 0] = 1.0
        right = 0
    else:
        group = torch.nn.functional.one_hot(y, G).float()  # (B, G)
        right = int((out.logits.argmax(-1) == y).sum())
    filled = record.slot_time >= 0  # (T, K)
    lag = slot_lags(record.slot_time, model.config.patch)  # (T, K)
    at_lag = ((lag[..., None] == torch.arange(1, K + 1)) & filled[..., None]).float()
    # at_lag: (T, K, K), 1 where slot k holds lag l + 1 at step t
    real = (torch.arange(T)[None, :] < ends[:, None]).float()  # (B, T)
    lengths_vary = not bool(real.all())
    n_filled = filled.sum(-1)  # (T,)
    several = real * (n_filled >= 2).float()[None, :]  # (B, T) steps of entropy, oldest
    first = filled.float().argmax(-1)  # (T,) the oldest filled slot (slots are oldest first)
    log_n = torch.log(n_filled.clamp(min=2).float())  # (T,)
    per_head = several.T / log_n[:, None]  # (T, B): a step's weight in the mean entropy
    lag_sums, entropy, oldest = [], [], []
    for weights in record.weights:  # (B, T, NH, K), 0 on empty slots
        # (T, K, NH, B): the scan's own memory layout, so no copy; sums over B are matmuls.
        w = weights.permute(1, 3, 2, 0)
        NH = w.shape[2]
        if lengths_vary:
            w = w * real.T[:, None, None, :]  # padded query steps weigh nothing
        by_step = (group.T @ w.reshape(T * K * NH, B).T).view(G, T, K, NH)  # summed per class
        lag_sums.append(torch.einsum("gtkh,tkl->ghl", by_step, at_lag))
        nats = slot_entropy(w, 1)  # (T, NH, B)
        entropy.append(torch.einsum("thb,tb->h", nats, per_head))
        share = w[torch.arange(T), first]  # (T, NH, B)
        oldest.append(torch.einsum("thb,tb->h", share, several.T))
    return _Sums(
        lag=torch.stack(lag_sums, 1).double(),
        lag_count=(group.T @ real @ at_lag.sum(1)).double(),
        entropy=torch.stack(entropy).double(),
        oldest=torch.stack(oldest).double(),
        uniform=float((several / n_filled.clamp(min=1)[None, :]).sum()),
        counted=int(several.sum()),
        right=right,
    )


def split_attention(
    model: SequenceClassifier,
    raw: np.ndarray,
    normalizer: Normalizer,
    knobs: InferenceKnobs | None = None,
    labels: np.ndarray | None = None,
    lengths: np.ndarray | None = None,
    batch_size: int = 128,
    workers: int = 1,
) -> SplitAttention:
    """Aggregate a LARNN's attention over raw (N, T, C) sequences run in batches with `knobs`
    (window, head mask, activation; hidden steps, which name one sequence's steps, are
    dropped). labels: (N,) true classes in the model's class order, for the per-class view
    and the accuracy; lengths: (N,) real steps of right-padded series. workers: threads
    running batches side by side (torch's kernels release the GIL; each runs on torch's
    intra-op threads, one in the app)."""
    if model.architecture != "larnn":
        raise ConfigError("the LSTM baseline has no attention to aggregate")
    knobs = replace(knobs or InferenceKnobs(), hidden_steps=None)
    N, T = raw.shape[:2]
    if N == 0:
        raise ConfigError("no sequence to aggregate attention over")
    ends = torch.full((N,), T) if lengths is None else torch.as_tensor(np.asarray(lengths))
    y = None if labels is None else torch.as_tensor(np.asarray(labels), dtype=torch.long)

    def batch(start: int) -> _Sums:
        rows = slice(start, start + batch_size)
        x = normalised_tensor(
            raw[rows], normalizer, None if lengths is None else ends[rows].numpy()
        )
        return _batch_sums(model, x, ends[rows], None if y is None else y[rows], knobs)

    starts = range(0, N, batch_size)
    with ThreadPoolExecutor(max(1, min(workers, len(starts)))) as pool:
        sums = functools.reduce(operator.add, pool.map(batch, starts))
    on = head_mask(model.encoder.config, knobs) > 0  # (L, NH)
    off = np.where(on, 1.0, np.nan)  # NaN on switched-off heads

    def mean(total: torch.Tensor, count: torch.Tensor | int) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return (total / count).numpy()

    by_class = [
        mean(lag, count) * off[..., None]
        for lag, count in zip(sums.lag, sums.lag_count, strict=True)
    ]
    counted = sums.counted or float("nan")  # no step with two filled slots: NaN
    return SplitAttention(
        by_lag=mean(sums.lag.sum(0), sums.lag_count.sum(0)) * off[..., None],
        by_lag_class=None if y is None else np.stack(by_class),
        entropy=mean(sums.entropy, counted) * off,
        oldest_share=mean(sums.oldest, counted) * off,
        uniform_oldest=sums.uniform / counted,
        sequences=N,
        steps=int(ends.sum()),
        class_sequences=None if y is None else np.bincount(y.numpy(), minlength=len(sums.lag)),
        accuracy=None if y is None else sums.right / N,
        patch=model.config.patch,
    )


def lag_frame(split: SplitAttention, class_names: Sequence[str] | None = None) -> pd.DataFrame:
    """Long table of the mean weight by lag: class ('all' for the whole split), layer, head,
    lag, weight."""
    parts = [("all", split.by_lag)]
    if split.by_lag_class is not None:
        names = class_names or [str(g) for g in range(len(split.by_lag_class))]
        parts += list(zip(names, split.by_lag_class, strict=True))
    rows = [
        {"class": name, "layer": layer, "head": head, "lag": lag + 1, "weight": float(w)}
        for name, values in parts
        for (layer, head, lag), w in np.ndenumerate(values)
    ]
    return pd.DataFrame(rows, columns=["class", "layer", "head", "lag", "weight"])


def head_table(split: SplitAttention, importance: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per layer and head: normalised entropy, share on the oldest slot and, where
    `importance` (`larnn.faithfulness.head_importance`) is given, the accuracy drop when the
    head is switched off."""
    L, NH = split.entropy.shape
    frame = pd.DataFrame(
        {
            "layer": np.repeat(np.arange(L), NH),
            "head": np.tile(np.arange(NH), L),
            "entropy": split.entropy.ravel(),
            "oldest_share": split.oldest_share.ravel(),
        }
    )
    if importance is None:
        return frame.assign(accuracy_drop=np.nan)
    drops = importance[["layer", "head", "accuracy_drop"]]
    return frame.merge(drops, on=["layer", "head"], how="left")


# --- channel importance ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ChannelImportance:
    """Sum of |Integrated Gradients| per channel over the real steps of some sequences."""

    total: np.ndarray  # (C,)
    steps: int  # real steps summed over
    sequences: int

    @property
    def share(self) -> np.ndarray:
        """(C,) mean |attribution| per channel, as shares summing to 1 (NaN when all are 0)."""
        total = self.total.sum()
        return self.total / total if total > 0 else np.full_like(self.total, np.nan)

    def __add__(self, other: ChannelImportance) -> ChannelImportance:
        return ChannelImportance(
            self.total + other.total, self.steps + other.steps, self.sequences + other.sequences
        )


def channel_importance(
    model: SequenceClassifier,
    raw: np.ndarray,
    normalizer: Normalizer,
    knobs: InferenceKnobs | None = None,
    lengths: np.ndarray | None = None,
    batch_size: int = 16,
) -> ChannelImportance:
    """|Integrated Gradients| of each model's predicted class, summed per channel over the
    real steps of raw (N, T, C) sequences, in batches. knobs: a LARNN's (hidden steps
    dropped); the LSTM takes none."""
    if model.architecture == "larnn":
        knobs = replace(knobs or InferenceKnobs(), hidden_steps=None)
    else:
        knobs = None
    N, T, C = raw.shape
    x = normalised_tensor(raw, normalizer, lengths)  # (N, T, C)
    ends = torch.full((N,), T) if lengths is None else torch.as_tensor(np.asarray(lengths))
    total = np.zeros(C)
    for start in range(0, N, batch_size):
        rows = slice(start, start + batch_size)
        values = attribution(
            model, x[rows], "integrated_gradients", lengths=ends[rows], knobs=knobs
        )
        real = torch.arange(T)[None, :] < ends[rows][:, None]  # (B, T)
        total += (values.abs() * real[..., None]).sum((0, 1)).double().numpy()
    return ChannelImportance(total, int(ends.sum()), N)
