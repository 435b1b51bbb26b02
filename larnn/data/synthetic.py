"""Synthetic memory probes: seeded tasks whose deciding steps are known.

Each probe puts its class-deciding events in the middle and ends with at least 15 steps of
pure noise, so a model must remember; `relevant_steps` marks the deciding steps, so that
attention can be scored against the truth with `attention_on_truth`.

Shape letters: `B`/`N` sequences, `T` time steps, `C` channels, `NH` heads, `K` queue slots.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from larnn.data.dataset import SequenceDataset
from larnn.errors import ConfigError, DataError

if TYPE_CHECKING:
    import torch

NOISE_STD = 0.1  # Gaussian noise on every channel; events have amplitude 1

PROBES = {
    "cue_shape": (
        "A 4-step pulse between 1/4 and 5/8 of the sequence, on one of 3 channels at random; "
        "its shape (up, down, up-down, down-up) is the class. The last 15 steps are noise."
    ),
    "which_first": (
        "A 3-step burst on channel a and one on channel b, both after the first quarter; the "
        "class is which started first and whether the lag is short (2-6 steps) or long "
        "(12-20). "
        "The last 15 steps are noise."
    ),
    "recall": (
        "Eight one-step events, each a key (one of 8 channels) paired with a value (one of 4 "
        "channels), at random times in the last 3/8 of the sequence, between noise steps; "
        "the last step is a query marker naming one key. The class is that key's value: the "
        "model must retrieve one of eight stored pairs."
    ),
}

_SHAPES = np.array(
    [[1, 1, 1, 1], [-1, -1, -1, -1], [1, 1, -1, -1], [-1, -1, 1, 1]], dtype=np.float32
)  # (4 classes, 4 steps)
_MIN_LENGTH = {"cue_shape": 32, "which_first": 50, "recall": 32}
RECALL_KEYS, RECALL_VALUES = 8, 4


def make_probe(name: str, n: int, seed: int, length: int = 64) -> SequenceDataset:
    """`n` sequences of probe `name` (a key of PROBES), balanced over classes, from `seed`.

    groups are the sample ids 0..n-1; relevant_steps marks the events that set the class.
    """
    if name not in PROBES:
        raise ConfigError(f"Unknown probe {name!r}; choose one of {', '.join(PROBES)}")
    if n < 1:
        raise ConfigError(f"n must be at least 1, got {n}")
    if length < _MIN_LENGTH[name]:
        raise ConfigError(f"Probe {name} needs length >= {_MIN_LENGTH[name]}, got {length}")
    rng = np.random.default_rng(seed)
    return _MAKERS[name](n, length, rng)


def _cue_shape(n: int, length: int, rng: np.random.Generator) -> SequenceDataset:
    n_classes, width = _SHAPES.shape
    y = rng.permutation(np.arange(n) % n_classes)  # (N,) balanced
    X = rng.normal(0.0, NOISE_STD, size=(n, length, 3)).astype(np.float32)  # (N, T, 3)
    last_start = min(length * 5 // 8, length - 15 - width)  # pulse ends by step T - 16
    start = rng.integers(length // 4, last_start + 1, size=n)  # (N,)
    channel = rng.integers(0, 3, size=n)
    rows = np.arange(n)[:, None]
    steps = start[:, None] + np.arange(width)  # (N, 4)
    X[rows, steps, channel[:, None]] += _SHAPES[y]
    relevant = np.zeros((n, length), dtype=bool)
    relevant[rows, steps] = True
    return SequenceDataset(
        X=X,
        y=y.astype(np.int64),
        groups=np.arange(n, dtype=np.int64),
        channel_names=("x", "y", "z"),
        class_names=("up", "down", "up_down", "down_up"),
        dataset_id="synthetic/cue_shape",
        relevant_steps=relevant,
    )


def _which_first(n: int, length: int, rng: np.random.Generator) -> SequenceDataset:
    width = 3  # each event is a 3-step burst
    y = rng.permutation(np.arange(n) % 4)  # (N,) balanced
    b_first, long_lag = y >= 2, y % 2 == 1
    lag = np.where(long_lag, rng.integers(12, 21, size=n), rng.integers(2, 7, size=n))
    first = rng.integers(length // 4, length - 14 - width - lag)  # both end by T - 16
    t_a = np.where(b_first, first + lag, first)
    t_b = np.where(b_first, first, first + lag)
    X = rng.normal(0.0, NOISE_STD, size=(n, length, 3)).astype(np.float32)  # (N, T, 3)
    rows = np.arange(n)[:, None]
    steps_a = t_a[:, None] + np.arange(width)  # (N, 3)
    steps_b = t_b[:, None] + np.arange(width)  # (N, 3)
    X[rows, steps_a, 0] += 1.0
    X[rows, steps_b, 1] += 1.0
    relevant = np.zeros((n, length), dtype=bool)
    relevant[rows, steps_a] = True
    relevant[rows, steps_b] = True
    return SequenceDataset(
        X=X,
        y=y.astype(np.int64),
        groups=np.arange(n, dtype=np.int64),
        channel_names=("a", "b", "noise"),
        class_names=("a_first_short", "a_first_long", "b_first_short", "b_first_long"),
        dataset_id="synthetic/which_first",
        relevant_steps=relevant,
    )


def _recall(n: int, length: int, rng: np.random.Generator) -> SequenceDataset:
    keys, values = RECALL_KEYS, RECALL_VALUES
    y = rng.permutation(np.arange(n) % values)  # (N,) balanced: the queried key's value
    span = length * 3 // 8  # the pairs sit in steps T - 1 - span .. T - 2
    times = np.sort(rng.permuted(np.tile(np.arange(span), (n, 1)), axis=1)[:, :keys], axis=1)
    times += length - 1 - span  # (N, keys) distinct steps, in time order
    order = rng.permuted(np.tile(np.arange(keys), (n, 1)), axis=1)  # (N, keys) key per event
    paired = rng.integers(0, values, size=(n, keys))  # (N, keys) value per event
    queried = rng.integers(0, keys, size=n)  # (N,) index of the queried event
    rows = np.arange(n)
    paired[rows, queried] = y
    C = keys + values + 1  # key channels, value channels, query marker
    X = rng.normal(0.0, NOISE_STD, size=(n, length, C)).astype(np.float32)  # (N, T, C)
    X[rows[:, None], times, order] += 1.0
    X[rows[:, None], times, keys + paired] += 1.0
    X[rows, length - 1, order[rows, queried]] += 1.0
    X[rows, length - 1, C - 1] += 1.0
    relevant = np.zeros((n, length), dtype=bool)
    relevant[rows, times[rows, queried]] = True
    return SequenceDataset(
        X=X,
        y=y.astype(np.int64),
        groups=np.arange(n, dtype=np.int64),
        channel_names=(
            *(f"key_{k}" for k in range(keys)),
            *(f"value_{v}" for v in range(values)),
            "query",
        ),
        class_names=tuple(f"value_{v}" for v in range(values)),
        dataset_id="synthetic/recall",
        relevant_steps=relevant,
    )


@dataclass(frozen=True)
class RecallAnswer:
    """How one recall sequence is answered: the key the last step queries, the step that stored
    that key, and the value stored with it (the class)."""

    key: int  # 0 .. RECALL_KEYS - 1
    stored_step: int  # the step of the queried key's event
    value: int  # 0 .. RECALL_VALUES - 1


def recall_answer(x: np.ndarray) -> RecallAnswer:
    """Read one recall sequence (T, C) as a person would: the query marker's key channel at the
    last step, the earlier step where that key channel fired, the value channel fired there."""
    keys, values = RECALL_KEYS, RECALL_VALUES
    if x.ndim != 2 or x.shape[1] != keys + values + 1 or len(x) < 2:
        raise DataError(
            f"a recall sequence has shape (T, {keys + values + 1}) with T >= 2, got {x.shape}"
        )
    key = int(np.argmax(x[-1, :keys]))
    stored_step = int(np.argmax(x[:-1, key]))
    value = int(np.argmax(x[stored_step, keys : keys + values]))
    return RecallAnswer(key, stored_step, value)


_MAKERS: dict[str, Callable[[int, int, np.random.Generator], SequenceDataset]] = {
    "cue_shape": _cue_shape,
    "which_first": _which_first,
    "recall": _recall,
}


def attention_on_truth(
    weights: np.ndarray | torch.Tensor,
    slot_time: np.ndarray,
    relevant_steps: np.ndarray,
    query_steps: np.ndarray | None = None,
) -> float:
    """How much more attention falls on ground-truth steps than uniform attention would put.

    Args:
        weights: (B, T, NH, K) attention of query step t, head h over queue slot k
            (numpy array or torch tensor).
        slot_time: (T, K) int, the time step held by slot k at query step t; -1 = empty.
        relevant_steps: (B, T) bool, the ground-truth steps.
        query_steps: (B, T) bool, the query steps to score (e.g. the step that must
            retrieve the evidence); None: every step after the first relevant one.

    Slot k holds the cell state after step slot_time[t, k], so the evidence of a relevant
    step s sits first in the slot holding s (and, carried by the cell, in later slots too):
    the score credits that slot, where the evidence first enters memory. With filled[t, k] =
    slot_time[t, k] >= 0 and truth[b, t, k] = filled[t, k] and relevant_steps[b,
    slot_time[t, k]], the counted queries Q are the (b, t) with at least one filled slot and
    t after the first relevant step of sequence b, or with query_steps[b, t]. Then

        score = sum_{(b,t) in Q, h} sum_k weights[b, t, h, k] * truth[b, t, k]
                / sum_{(b,t) in Q, h} (sum_k truth[b, t, k] / sum_k filled[t, k])

    i.e. attention mass on truth divided by the mass uniform attention over the filled
    slots would give: 1.0 = chance, above 1 = attends to the truth. NaN when no counted
    query has a truth step in its queue (the score is undefined then).
    """
    w = _to_numpy(weights).astype(np.float64)
    st = np.asarray(slot_time)
    rel = np.asarray(relevant_steps)
    if w.ndim != 4:
        raise DataError(f"weights must have shape (B, T, NH, K), got {w.shape}")
    B, T, NH, K = w.shape
    if st.shape != (T, K) or st.dtype.kind not in "iu":
        raise DataError(f"slot_time must be an int array of shape ({T}, {K}), got {st.shape}")
    if rel.shape != (B, T) or rel.dtype != np.bool_:
        raise DataError(f"relevant_steps must be a bool array of shape ({B}, {T}), got {rel.shape}")
    if (st >= T).any() or (st < -1).any():
        raise DataError(f"slot_time values must lie in -1..{T - 1}")
    filled = st >= 0  # (T, K)
    truth = rel[:, np.where(filled, st, 0)] & filled  # (B, T, K)
    if query_steps is None:
        first = np.where(rel.any(axis=1), rel.argmax(axis=1), T)  # (B,) T = never
        queries = np.arange(T) > first[:, None]  # (B, T)
    else:
        queries = np.asarray(query_steps)
        if queries.shape != (B, T) or queries.dtype != np.bool_:
            raise DataError(
                f"query_steps must be a bool array of shape ({B}, {T}), got {queries.shape}"
            )
    counted = queries & filled.any(axis=1)  # (B, T)
    mass = (w * truth[:, :, None, :]).sum(axis=-1)  # (B, T, NH)
    chance = truth.sum(axis=-1) / np.maximum(filled.sum(axis=-1), 1)  # (B, T)
    denominator = chance[counted].sum() * NH
    if denominator == 0:
        return float("nan")
    return float(mass[counted].sum() / denominator)


def _to_numpy(x: np.ndarray | torch.Tensor) -> np.ndarray:
    """numpy view of a numpy array or a (possibly GPU, grad-tracking) torch tensor."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)
