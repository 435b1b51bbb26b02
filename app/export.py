"""What the page hands out: tables and JSON documents built from inferences, the window sweep
and the attributions (pure). The Export section offers the sequence's; the sweep and the
attribution sections offer theirs under their figures.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pandas as pd

from app.values import DataView, KnobChoice, ModelRun
from larnn.inference import SequenceInference, attention_frame, inference_to_dict


def file_stem(data: DataView, index: int | None) -> str:
    """'larnn_probe_cue_shape_12': the start of every file name the page offers (without the
    index, 'larnn_probe_cue_shape', for numbers over many sequences)."""
    stem = f"larnn_{(data.dataset_id or 'upload').replace(':', '_')}"
    return stem if index is None else f"{stem}_{index}"


def with_class_names(
    runs: dict[str, ModelRun],
) -> dict[str, tuple[SequenceInference, tuple[str, ...]]]:
    """{role: (inference, its model's class names)}: what the tables and the document read."""
    return {role: (run.inference, run.model.class_names) for role, run in runs.items()}


def export_context(
    data: DataView, index: int, runs: dict[str, ModelRun], choice: KnobChoice | None
) -> dict:
    """What the exported document says it shows: data, sequence, checkpoints and knobs."""
    true_label = None if data.labels is None else data.class_names[int(data.labels[index])]
    return {
        **_data_fields(data),
        "sequence_index": index,
        "true_class": true_label,
        "checkpoints": {role: run.model.name for role, run in runs.items()},
        "knobs": None
        if choice is None
        else {"window": choice.window, **_knob_fields(choice), "layer_shown": choice.layer},
    }


def _data_fields(data: DataView) -> dict:
    """The data an export was made on: its description, name and dataset id."""
    return {"data": data.description, "data_name": data.name, "dataset_id": data.dataset_id}


def _knob_fields(choice: KnobChoice) -> dict:
    """The knobs but k' and the layer shown: activation, heads on, hidden steps."""
    return {
        "kv_activation": choice.kv_activation,
        "heads_on": list(choice.heads_on),
        "hidden_steps": list(choice.knobs.hidden_steps or ()),
    }


def split_columns(data: DataView, larnn_name: str, choice: KnobChoice) -> dict[str, object]:
    """What a table over the whole split shows, as constant columns: dataset, data,
    larnn_checkpoint, window, kv_activation, heads_on (space-separated)."""
    return {
        "dataset": data.dataset_id or "upload",
        "data": data.name,
        "larnn_checkpoint": larnn_name,
        "window": choice.window,
        "kv_activation": choice.kv_activation,
        "heads_on": " ".join(str(h) for h in choice.heads_on),
    }


def with_context(frame: pd.DataFrame, context: dict) -> pd.DataFrame:
    """The table with what it shows appended as constant columns (see `export_context`):
    dataset, data (its name and split, or the uploaded file), sequence_index,
    <role>_checkpoint per model and, for a LARNN, hidden_steps, window, kv_activation and
    heads_on (hidden_steps and heads_on space-separated numbers)."""
    columns: dict[str, object] = {
        "dataset": context["dataset_id"] or "upload",
        "data": context["data_name"],
    }
    for name in ("sequence_index", "sample_size"):  # a sequence's, or the sweep's sample
        if name in context:
            columns[name] = context[name]
    for role, name in context["checkpoints"].items():
        columns[f"{role.lower()}_checkpoint"] = name
    knobs = context["knobs"]
    if knobs is not None:
        columns["hidden_steps"] = " ".join(str(s) for s in knobs["hidden_steps"])
        if "window" in knobs:  # the sweep varies it: a column of its table
            columns["window"] = knobs["window"]
        columns["kv_activation"] = knobs["kv_activation"]
        columns["heads_on"] = " ".join(str(h) for h in knobs["heads_on"])
    return frame.assign(**columns)


def attention_table(inference: SequenceInference) -> pd.DataFrame:
    """Every layer's attention as one long table: layer, t, head, slot, j, lag, weight."""
    if inference.attention is None:
        raise ValueError("this inference has no attention (LSTM baseline)")
    parts = [
        attention_frame(inference, layer).assign(layer=layer)
        for layer in range(len(inference.attention))
    ]
    frame = pd.concat(parts, ignore_index=True)
    return frame[["layer", "t", "head", "slot", "j", "lag", "weight"]]


def predictions_table(
    inferences: dict[str, tuple[SequenceInference, Sequence[str]]],
    true_label: str | None = None,
) -> pd.DataFrame:
    """The running predictions side by side: t, then '<model> P(<class>)' per model and class."""
    columns: dict[str, np.ndarray] = {}
    length = None
    for model, (inference, class_names) in inferences.items():
        probabilities = inference.step_probabilities  # (T, classes)
        length = len(probabilities)
        for k, name in enumerate(class_names):
            columns[f"{model} P({name})"] = probabilities[:, k]
    frame = pd.DataFrame({"t": np.arange(length or 0), **columns})
    if true_label is not None:
        frame.insert(1, "true_class", true_label)
    return frame


def probability_table(
    probabilities: dict[str, np.ndarray], class_names: Sequence[str], true_class: int | None
) -> pd.DataFrame:
    """Class probabilities at the last step: one row per class, one column per model."""
    frame = pd.DataFrame({"class": list(class_names)})
    if true_class is not None:
        frame["true"] = ["yes" if k == true_class else "" for k in range(len(class_names))]
    for model, p in probabilities.items():
        frame[model] = np.round(np.asarray(p, dtype=np.float64), 4)
    return frame


def export_document(
    context: dict,
    inferences: dict[str, tuple[SequenceInference, Sequence[str]]],
) -> dict:
    """One JSON-ready record of what the page shows: the context (data, sequence, knobs,
    checkpoints) and, per model, its probabilities, running prediction and attention."""
    return {
        **context,
        "models": {
            model: inference_to_dict(inference, list(class_names))
            for model, (inference, class_names) in inferences.items()
        },
    }


# --- the window sweep and the attributions ------------------------------------------------------


def sweep_context(
    data: DataView,
    checkpoints: dict[str, str],
    choice: KnobChoice,
    sample: np.ndarray,
) -> dict:
    """What the window sweep ran on: data, checkpoints {role: name}, the knobs other than
    k' (it varies) and the sample of sequences (their indices in the split)."""
    return {
        **_data_fields(data),
        "sample_size": len(sample),
        "sample_indices": [int(i) for i in sample],
        "checkpoints": dict(checkpoints),
        "knobs": _knob_fields(choice),
    }


def sweep_table(
    sweep: pd.DataFrame, lstm_accuracy: float | None, trained_window: int
) -> pd.DataFrame:
    """The sweep's numbers, one row per window: window, larnn_accuracy, trained ('yes' at
    the window the LARNN was trained with) and, with an LSTM, lstm_accuracy (it has no
    window: the same on every row)."""
    frame = pd.DataFrame(
        {
            "window": sweep["window"].astype(int).to_numpy(),
            "larnn_accuracy": sweep["accuracy"].astype(float).to_numpy(),
        }
    )
    frame["trained"] = np.where(frame["window"] == trained_window, "yes", "")
    if lstm_accuracy is not None:
        frame["lstm_accuracy"] = float(lstm_accuracy)
    return frame


def attribution_table(
    raw: np.ndarray, channel_names: Sequence[str], attributions: dict[str, np.ndarray]
) -> pd.DataFrame:
    """Integrated Gradients as one long table, a row per (t, channel): t, channel, value (the
    raw input), then '<role> attribution' for each model {role: (T, C)}."""
    T, C = raw.shape
    frame = pd.DataFrame(
        {
            "t": np.repeat(np.arange(T), C),
            "channel": np.tile(np.asarray(channel_names, dtype=object), T),
            "value": np.asarray(raw, dtype=np.float64).reshape(-1),
        }
    )
    for role, values in attributions.items():
        frame[f"{role} attribution"] = np.asarray(values, dtype=np.float64).reshape(-1)
    return frame


def attribution_document(
    context: dict,
    raw: np.ndarray,
    channel_names: Sequence[str],
    attributions: dict[str, np.ndarray],
    attributed: dict[str, str],
) -> dict:
    """The attributions as JSON: the context, then per model the class attributed to, the
    (T, C) attribution and its sum (= logit(x) - logit(baseline)); the raw input (T, C)."""
    return {
        **context,
        "method": "Integrated Gradients (Captum), baseline the training mean",
        "channels": list(channel_names),
        "input": np.asarray(raw, dtype=np.float64).tolist(),
        "models": {
            role: {
                "attributed_class": attributed[role],
                "attribution": np.asarray(values, dtype=np.float64).tolist(),
                "sum": float(np.sum(values)),
            }
            for role, values in attributions.items()
        },
    }


def json_bytes(document: dict) -> bytes:
    return json.dumps(document, indent=1, allow_nan=True).encode()


def csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False, float_format="%.6g").encode()
