"""Pure inference functions under the app: a model, an input and knobs in; numbers out.

Nothing here mutates a model or stores results on it, so one cached model can serve every
app session. Inputs are raw signals; each checkpoint's normaliser is applied here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from larnn.classifier import SequenceClassifier
from larnn.data import Normalizer
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


def normalised_tensor(raw: np.ndarray, normalizer: Normalizer) -> torch.Tensor:
    """(T, C) or (N, T, C) raw float signals -> float32 tensor (N, T, C), standardised."""
    array = np.asarray(raw, dtype=np.float32)
    if array.ndim == 2:
        array = array[None]
    return torch.from_numpy(normalizer.apply(array))


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
) -> np.ndarray:
    """Class probabilities (N, classes) for raw (N, T, C) sequences."""
    x = normalised_tensor(raw, normalizer)
    knobs = knobs if model.architecture == "larnn" else None
    parts = [torch.softmax(model(chunk, knobs=knobs).logits, -1) for chunk in x.split(batch_size)]
    return torch.cat(parts).numpy()


def window_sweep(
    model: SequenceClassifier,
    raw: np.ndarray,
    labels: np.ndarray,
    normalizer: Normalizer,
    windows: list[int],
    knobs: InferenceKnobs | None = None,
) -> pd.DataFrame:
    """Accuracy on (raw, labels) for each inference window k' (other knobs kept)."""
    knobs = knobs or InferenceKnobs()
    rows = []
    for window in windows:
        chosen = InferenceKnobs(window, knobs.head_mask, knobs.kv_activation)
        predicted = predict_probabilities(model, raw, normalizer, chosen).argmax(-1)
        rows.append({"window": window, "accuracy": float((predicted == labels).mean())})
    return pd.DataFrame(rows)


def attention_frame(inference: SequenceInference, layer: int) -> pd.DataFrame:
    """Long table of one layer's attention: step t, slot, time j, lag t - j, head, weight.

    Empty slots (j = -1) are left out.
    """
    if inference.attention is None or inference.slot_time is None:
        raise ValueError("this inference has no attention (LSTM baseline)")
    weights = inference.attention[layer]  # (T, NH, K)
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


def prediction_frame(inference: SequenceInference, class_names: list[str]) -> pd.DataFrame:
    """The running prediction as a table: one row per step, one column per class."""
    frame = pd.DataFrame(inference.step_probabilities, columns=list(class_names))
    frame.insert(0, "t", np.arange(len(frame)))
    return frame
