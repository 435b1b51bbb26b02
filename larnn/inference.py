"""Pure inference functions under the app: a model, an input and knobs in; numbers out.

Nothing here mutates a model or stores results on it, so one cached model can serve every
app session. Inputs are raw signals; each checkpoint's normaliser is applied here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch

from larnn.classifier import SequenceClassifier
from larnn.data import Normalizer, attention_on_truth
from larnn.model import InferenceKnobs


@dataclass(frozen=True)
class SequenceInference:
    """One sequence through one model."""

    probabilities: np.ndarray  # (classes,) at the last step
    step_probabilities: np.ndarray  # (T, classes): the running prediction
    attention: tuple[np.ndarray, ...] | None  # per layer (T, NH, K); LARNN only
    slot_time: np.ndarray | None  # (T, K) absolute time index per slot, -1 if empty

    @property
    def predicted(self) -> int:
        return int(self.probabilities.argmax())

    def layer_attention(self, layer: int) -> np.ndarray:
        """(T, NH, K) attention of one layer; ValueError for the LSTM baseline."""
        if self.attention is None or self.slot_time is None:
            raise ValueError("this inference has no attention (LSTM baseline)")
        return self.attention[layer]


def normalised_tensor(
    raw: np.ndarray, normalizer: Normalizer, lengths: np.ndarray | None = None
) -> torch.Tensor:
    """(T, C) or (N, T, C) raw float signals -> float32 tensor (N, T, C), standardised;
    with `lengths` (N,), the padding after each series stays zero."""
    array = np.asarray(raw, dtype=np.float32)
    if array.ndim == 2:
        array = array[None]
    return torch.from_numpy(normalizer.apply(array, lengths))


@torch.no_grad()
def infer_sequence(
    model: SequenceClassifier,
    raw: np.ndarray,
    normalizer: Normalizer,
    knobs: InferenceKnobs | None = None,
) -> SequenceInference:
    """Probabilities, running prediction and (LARNN) attention for one raw (T, C) sequence."""
    x = normalised_tensor(raw, normalizer)  # (1, T, C)
    is_larnn = model.architecture == "larnn"
    out = model(x, knobs=knobs if is_larnn else None, return_attention=is_larnn, all_steps=True)
    step_probabilities = torch.softmax(out.step_logits[0], dim=-1).numpy()  # (T, classes)
    attention = slot_time = None
    if out.attention is not None:
        attention = tuple(w[0].numpy() for w in out.attention.weights)  # each (T, NH, K)
        slot_time = out.attention.slot_time.numpy()
    return SequenceInference(step_probabilities[-1], step_probabilities, attention, slot_time)


@torch.no_grad()
def predict_probabilities(
    model: SequenceClassifier,
    raw: np.ndarray,
    normalizer: Normalizer,
    knobs: InferenceKnobs | None = None,
    batch_size: int = 256,
    lengths: np.ndarray | None = None,
) -> np.ndarray:
    """Class probabilities (N, classes) for raw (N, T, C) sequences, each read at its last
    real step when `lengths` (N,) says where right-padded series end."""
    x = normalised_tensor(raw, normalizer, lengths)
    knobs = knobs if model.architecture == "larnn" else None
    ends = None if lengths is None else torch.as_tensor(np.asarray(lengths)).split(batch_size)
    parts = [
        torch.softmax(model(chunk, None if ends is None else ends[i], knobs=knobs).logits, -1)
        for i, chunk in enumerate(x.split(batch_size))
    ]
    return torch.cat(parts).numpy()


def accuracy(
    model: SequenceClassifier,
    raw: np.ndarray,
    labels: np.ndarray,
    normalizer: Normalizer,
    knobs: InferenceKnobs | None = None,
    lengths: np.ndarray | None = None,
) -> float:
    """Share of raw (N, T, C) sequences whose predicted class is their label (N,)."""
    probabilities = predict_probabilities(model, raw, normalizer, knobs, lengths=lengths)
    predicted = probabilities.argmax(-1)  # (N,)
    return float((predicted == np.asarray(labels)).mean())


def window_sweep(
    model: SequenceClassifier,
    raw: np.ndarray,
    labels: np.ndarray,
    normalizer: Normalizer,
    windows: Sequence[int],
    knobs: InferenceKnobs | None = None,
    lengths: np.ndarray | None = None,
) -> pd.DataFrame:
    """Accuracy on (raw, labels) for each inference window k' (the other knobs kept).

    Returns one row per window: columns window, accuracy.
    """
    knobs = knobs or InferenceKnobs()
    rows = [
        {
            "window": int(window),
            "accuracy": accuracy(
                model, raw, labels, normalizer, replace(knobs, window=window), lengths
            ),
        }
        for window in windows
    ]
    return pd.DataFrame(rows, columns=["window", "accuracy"])


def attention_frame(inference: SequenceInference, layer: int) -> pd.DataFrame:
    """Long table of one layer's attention: step t, slot, time j, lag t - j, head, weight.

    Empty slots (j = -1) are left out.
    """
    weights = inference.layer_attention(layer)  # (T, NH, K)
    T, NH, K = weights.shape
    t, head, slot = np.meshgrid(np.arange(T), np.arange(NH), np.arange(K), indexing="ij")
    j = inference.slot_time[t, slot]  # (T, NH, K)
    frame = pd.DataFrame(
        {
            "t": t.ravel(),
            "head": head.ravel(),
            "slot": slot.ravel(),
            "j": j.ravel(),
            "lag": (t - j).ravel(),
            "weight": weights.ravel(),
        }
    )
    return frame[frame["j"] >= 0].reset_index(drop=True)


# --- Views of one inference for the app: pure, checked against `attention_frame` in tests ---

ATTENTION_AXES = ("lag", "time")


@dataclass(frozen=True)
class AttentionGrid:
    """One layer's attention laid out for a heatmap: rows are past steps, columns query steps t.

    axis "lag": row r holds lag r + 1 (1 .. K); axis "time": row r holds time step j = y[r].
    Cells without a filled slot (before the series start, outside the window) are NaN in `z`
    and -1 in `j` and `lag`.
    """

    z: np.ndarray  # (R, T) attention weight
    y: np.ndarray  # (R,) lag or time step of each row
    j: np.ndarray  # (R, T) int time step attended
    lag: np.ndarray  # (R, T) int t - j
    axis: str
    t: np.ndarray  # (T,) the query step of each column


def head_weights(
    inference: SequenceInference,
    layer: int,
    heads: list[int] | tuple[int, ...] | None = None,
    span: tuple[int, int] | None = None,
) -> np.ndarray:
    """(T, K) attention of one layer averaged over `heads` (all heads when None); with span
    (first, stop), the (stop - first, K) rows of those query steps only."""
    weights = inference.layer_attention(layer)  # (T, NH, K)
    first, stop = span if span is not None else (0, weights.shape[0])
    if not 0 <= first < stop <= weights.shape[0]:
        raise ValueError(f"span must lie within 0 .. {weights.shape[0]}, got {span}")
    chosen = list(range(weights.shape[1])) if heads is None else list(heads)
    if not chosen:
        raise ValueError("choose at least one head")
    return weights[first:stop, chosen].mean(axis=1)  # (S, K)


def attention_grid(
    inference: SequenceInference,
    layer: int,
    heads: list[int] | tuple[int, ...] | None = None,
    axis: str = "lag",
    span: tuple[int, int] | None = None,
) -> AttentionGrid:
    """The (T, K) weights of `head_weights` as a heatmap grid over (past step, query step).

    span: (first, stop), the query steps first .. stop - 1 only (all when None): a long
    series is drawn a stretch at a time; on the time axis its rows start at the oldest step
    those queries reach.
    """
    if axis not in ATTENTION_AXES:
        raise ValueError(f"axis must be one of {ATTENTION_AXES}, got {axis!r}")
    weights = head_weights(inference, layer, heads, span)  # (S, K), S query steps
    first, stop = span if span is not None else (0, weights.shape[0])
    slot_time = inference.slot_time[first:stop]  # (S, K), slot i holds lag K - i
    S, K = weights.shape
    filled = slot_time >= 0  # (S, K)
    t = np.arange(first, stop)  # (S,)
    if axis == "lag":
        z = np.where(filled, weights, np.nan)[:, ::-1].T  # (K, S): row r is slot K-1-r, lag r+1
        j = slot_time[:, ::-1].T.copy()  # (K, S)
        lag = np.where(j >= 0, t[None, :] - j, -1)
        return AttentionGrid(np.ascontiguousarray(z), np.arange(1, K + 1), j, lag, axis, t)
    oldest = int(slot_time[filled].min()) if filled.any() else first
    rows = np.arange(oldest, stop)  # (R,) time steps j
    z = np.full((len(rows), S), np.nan)
    steps, slots = np.nonzero(filled)
    z[slot_time[steps, slots] - oldest, steps] = weights[steps, slots]
    inside = ~np.isnan(z)
    j = np.where(inside, rows[:, None], -1)  # (R, S)
    lag = np.where(inside, t[None, :] - rows[:, None], -1)
    return AttentionGrid(z, rows, j, lag, axis, t)


def step_attention(
    inference: SequenceInference,
    layer: int,
    t: int,
    heads: list[int] | tuple[int, ...] | None = None,
) -> pd.DataFrame:
    """Where query step t looks: one row per filled slot (oldest first), j, lag and weight."""
    weights = head_weights(inference, layer, heads)[t]  # (K,)
    j = inference.slot_time[t]  # (K,)
    keep = j >= 0
    return pd.DataFrame({"j": j[keep], "lag": t - j[keep], "weight": weights[keep]})


def truth_score(
    inference: SequenceInference,
    layer: int,
    relevant_steps: np.ndarray,
    heads: list[int] | tuple[int, ...] | None = None,
) -> float:
    """`attention_on_truth` of one sequence and layer over `heads` (all when None).

    relevant_steps: (T,) bool ground truth. 1.0 = chance; NaN when undefined.
    """
    weights = inference.layer_attention(layer)  # (T, NH, K)
    chosen = list(range(weights.shape[1])) if heads is None else list(heads)
    if not chosen:
        return float("nan")
    return attention_on_truth(
        weights[None][:, :, chosen], inference.slot_time, np.asarray(relevant_steps)[None]
    )


def inference_to_dict(inference: SequenceInference, class_names: list[str]) -> dict:
    """A JSON-ready record: probabilities, running prediction and (LARNN) attention per layer."""
    names = list(class_names)
    record: dict = {
        "class_names": names,
        "probabilities": dict(zip(names, inference.probabilities.tolist(), strict=True)),
        "predicted": names[inference.predicted],
        "step_probabilities": inference.step_probabilities.tolist(),  # (T, classes)
    }
    if inference.attention is not None and inference.slot_time is not None:
        record["slot_time"] = inference.slot_time.tolist()  # (T, K)
        record["attention"] = [w.tolist() for w in inference.attention]  # per layer (T, NH, K)
    return record
