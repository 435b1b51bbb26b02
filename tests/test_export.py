"""app.export: the tables and the JSON document the Export section hands out."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
from test_app import PROBE

from app import export, knobs
from app.values import DataView, KnobChoice, Loaded, ModelRun
from larnn.inference import attention_frame
from larnn.model import LARNNConfig


def test_exports(inference):
    result, _ = inference
    table = export.attention_table(result)
    assert list(table.columns) == ["layer", "t", "head", "slot", "j", "lag", "weight"]
    assert len(table) == len(attention_frame(result, 0))
    names = ["up", "down", "up_down", "down_up"]
    predictions = export.predictions_table({"LARNN": (result, names)}, "up")
    assert list(predictions.columns[:3]) == ["t", "true_class", "LARNN P(up)"]
    document = export.export_document({"sequence_index": 3}, {"LARNN": (result, names)})
    back = json.loads(export.json_bytes(document))
    assert back["sequence_index"] == 3
    assert np.asarray(back["models"]["LARNN"]["attention"][0]).shape == result.attention[0].shape
    frame = pd.read_csv(io.BytesIO(export.csv_bytes(table)))
    assert len(frame) == len(table)


def test_exported_tables_carry_the_context(inference):
    result, _ = inference
    data = DataView(
        X=np.zeros((3, 32, 3)),
        labels=np.zeros(3, dtype=int),
        class_names=("up", "down", "up_down", "down_up"),
        channel_names=("x", "y", "z"),
        channel_units=("", "", ""),
        relevant_steps=None,
        dataset_id=PROBE,
        key="k",
        description="d",
        name="Synthetic probe: cue shape, test split",
    )
    trained = LARNNConfig(input_size=3, hidden_size=8, heads=2, window=5, max_window=8)
    choice = KnobChoice(knobs.make_knobs(7, [1], 2, "tanh"), 0, trained)
    model = Loaded(None, "key", "m1", "LARNN")
    context = export.export_context(data, 2, {"LARNN": ModelRun(model, result)}, choice)
    table = export.with_context(export.attention_table(result), context)
    assert list(table.columns[:7]) == ["layer", "t", "head", "slot", "j", "lag", "weight"]
    row = table.iloc[-1]
    assert (row["dataset"], row["sequence_index"], row["larnn_checkpoint"]) == (PROBE, 2, "m1")
    assert (row["window"], row["kv_activation"], row["heads_on"]) == (7, "tanh", "1")
    assert row["data"] == "Synthetic probe: cue shape, test split"
    back = pd.read_csv(io.BytesIO(export.csv_bytes(table)))
    assert back["heads_on"].astype(str).unique().tolist() == ["1"]
