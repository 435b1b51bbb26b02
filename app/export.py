"""What the Export section hands out: tables and a JSON document built from inferences (pure)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pandas as pd

from app.values import DataView, KnobChoice, ModelRun
from larnn.inference import SequenceInference, attention_frame, inference_to_dict


def file_stem(data: DataView, index: int) -> str:
    """'larnn_probe_cue_shape_12': the start of every file name the Export section offers."""
    return f"larnn_{(data.dataset_id or 'upload').replace(':', '_')}_{index}"


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
        "data": data.description,
        "data_name": data.name,
        "dataset_id": data.dataset_id,
        "sequence_index": index,
        "true_class": true_label,
        "checkpoints": {role: run.model.name for role, run in runs.items()},
        "knobs": None
        if choice is None
        else {
            "window": choice.window,
            "kv_activation": choice.kv_activation,
            "heads_on": list(choice.heads_on),
            "hidden_steps": list(choice.knobs.hidden_steps or ()),
            "layer_shown": choice.layer,
        },
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
        "sequence_index": context["sequence_index"],
    }
    for role, name in context["checkpoints"].items():
        columns[f"{role.lower()}_checkpoint"] = name
    knobs = context["knobs"]
    if knobs is not None:
        columns["hidden_steps"] = " ".join(str(s) for s in knobs["hidden_steps"])
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


def json_bytes(document: dict) -> bytes:
    return json.dumps(document, indent=1, allow_nan=True).encode()


def csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False, float_format="%.6g").encode()
