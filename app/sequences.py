"""Choosing a sequence: the "choose by" modes and the sequences each offers (pure)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# --- choosing a sequence --------------------------------------------------------------------------

CHOOSE_BY = {
    "index": "index",
    "class": "true class",
    "larnn_wrong": "misclassified by LARNN",
    "lstm_wrong": "misclassified by LSTM",
    "disagree": "LARNN and LSTM disagree",
}


def choose_modes(larnn_labels_ok: bool, lstm_labels_ok: bool) -> list[str]:
    """The "choose by" modes that make sense with the models at hand."""
    modes = ["index", "class"]
    if larnn_labels_ok:
        modes.append("larnn_wrong")
    if lstm_labels_ok:
        modes.append("lstm_wrong")
    if larnn_labels_ok and lstm_labels_ok:
        modes.append("disagree")
    return modes


def candidate_indices(
    mode: str,
    labels: np.ndarray,
    larnn_predicted: np.ndarray | None = None,
    lstm_predicted: np.ndarray | None = None,
    true_class: int | None = None,
) -> np.ndarray:
    """Indices of the sequences a mode offers, ascending.

    mode: a key of CHOOSE_BY; "class" needs `true_class`; the other modes but "index" need
    the predictions (N,) of the models they name.
    """
    n = len(labels)
    if mode == "index":
        return np.arange(n)
    if mode == "class":
        return np.flatnonzero(labels == true_class)
    if mode == "larnn_wrong":
        return np.flatnonzero(larnn_predicted != labels)
    if mode == "lstm_wrong":
        return np.flatnonzero(lstm_predicted != labels)
    if mode == "disagree":
        return np.flatnonzero(larnn_predicted != lstm_predicted)
    raise ValueError(f"unknown mode {mode!r}; one of {list(CHOOSE_BY)}")


def sequence_caption(
    index: int,
    labels: np.ndarray,
    class_names: Sequence[str],
    larnn_predicted: np.ndarray | None = None,
    lstm_predicted: np.ndarray | None = None,
) -> str:
    """'#12 · true up · LARNN down · LSTM up': an option label for a sequence picker."""
    parts = [f"#{index}", f"true {class_names[labels[index]]}"]
    if larnn_predicted is not None:
        parts.append(f"LARNN {class_names[larnn_predicted[index]]}")
    if lstm_predicted is not None:
        parts.append(f"LSTM {class_names[lstm_predicted[index]]}")
    return " · ".join(parts)
