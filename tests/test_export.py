"""app.export: the tables and the JSON document the Export section hands out."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest
from test_app import APP, PROBE, make_checkpoints, open_sections

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


def _data() -> DataView:
    return DataView(
        X=np.zeros((3, 4, 2)),
        labels=np.zeros(3, dtype=int),
        class_names=("up", "down"),
        channel_names=("x", "y"),
        channel_units=("", ""),
        relevant_steps=None,
        dataset_id=PROBE,
        key="k",
        description="d",
        name="Synthetic probe: cue shape, test split",
    )


def test_the_window_sweep_exports_its_numbers_and_what_they_ran_on():
    trained = LARNNConfig(input_size=2, hidden_size=8, heads=2, window=2, max_window=3)
    choice = KnobChoice(knobs.make_knobs(3, [1], 2, "tanh", [1]), 0, trained)
    sweep = pd.DataFrame({"window": [1, 2, 3], "accuracy": [0.5, 0.75, 0.625]})
    context = export.sweep_context(_data(), {"LARNN": "m1", "LSTM": "m2"}, choice, np.array([0, 2]))
    table = export.sweep_table(sweep, 0.25, trained_window=2)
    assert table.to_dict(orient="list") == {
        "window": [1, 2, 3],
        "larnn_accuracy": [0.5, 0.75, 0.625],
        "trained": ["", "yes", ""],
        "lstm_accuracy": [0.25] * 3,
    }
    assert "lstm_accuracy" not in export.sweep_table(sweep, None, 2).columns  # no LSTM
    csv = pd.read_csv(io.BytesIO(export.csv_bytes(export.with_context(table, context))))
    row = csv.iloc[0]
    assert (row["dataset"], row["sample_size"], row["lstm_checkpoint"]) == (PROBE, 2, "m2")
    assert (row["kv_activation"], str(row["heads_on"]), str(row["hidden_steps"])) == (
        "tanh",
        "1",
        "1",
    )
    assert "sequence_index" not in csv.columns  # many sequences: the sample says which
    document = json.loads(export.json_bytes({**context, "windows": table.to_dict("records")}))
    assert document["sample_indices"] == [0, 2]
    assert document["knobs"] == {"kv_activation": "tanh", "heads_on": [1], "hidden_steps": [1]}
    assert document["windows"][1] == {
        "window": 2,
        "larnn_accuracy": 0.75,
        "trained": "yes",
        "lstm_accuracy": 0.25,
    }


def test_the_attribution_exports_every_cell_of_each_model():
    raw = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])  # (T, C)
    larnn = np.array([[0.1, -0.2], [0.3, 0.0], [0.5, 0.25]])
    lstm = -larnn
    table = export.attribution_table(raw, ("x", "y"), {"LARNN": larnn, "LSTM": lstm})
    assert list(table.columns) == ["t", "channel", "value", "LARNN attribution", "LSTM attribution"]
    assert table.iloc[3].tolist() == [1, "y", 4.0, 0.0, -0.0]  # t = 1, channel y
    assert table.groupby("channel")["LARNN attribution"].sum().to_dict() == pytest.approx(
        {"x": 0.9, "y": 0.05}
    )
    context = {"sequence_index": 2, "true_class": "up"}
    document = json.loads(
        export.json_bytes(
            export.attribution_document(
                context, raw, ("x", "y"), {"LARNN": larnn}, {"LARNN": "down"}
            )
        )
    )
    assert document["sequence_index"] == 2 and document["channels"] == ["x", "y"]
    assert document["input"] == raw.tolist()
    assert document["models"]["LARNN"]["attribution"] == larnn.tolist()
    assert document["models"]["LARNN"]["attributed_class"] == "down"
    assert document["models"]["LARNN"]["sum"] == pytest.approx(0.95)


def test_the_sweep_and_the_attribution_numbers_download_from_the_page(tmp_path, monkeypatch):
    monkeypatch.setenv("LARNN_CHECKPOINT_DIR", str(make_checkpoints(tmp_path)))
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    at = open_sections(at, "sweep", "export")
    at.button(key="run_sweep").click().run()
    assert not at.exception and not at.error
    labels = [b.proto.label for b in at.get("download_button")]
    for name in ("Window sweep", "Attribution"):
        assert f"{name} (CSV)" in labels and f"{name} (JSON)" in labels, labels
