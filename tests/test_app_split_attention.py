"""The "Attention over the whole split" section (issue 29) under AppTest, on the tiny probe
checkpoints and on a ragged labelled file, and its figures validated against Plotly in full.
The numbers themselves are checked in tests/test_split_attention.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest
from streamlit.testing.v1 import AppTest
from test_app import APP, PROBE, chart_specs, open_sections
from test_train_files import grouped_csv

from app import catalog, split_figures
from larnn.split_attention import head_table
from larnn.train import TrainConfig, train

LAGS_TITLE = "Where each head looks over the split"


@pytest.fixture
def app(checkpoints, monkeypatch) -> AppTest:
    monkeypatch.setenv("LARNN_CHECKPOINT_DIR", str(checkpoints))
    monkeypatch.setattr(catalog, "DEFAULT_DATASET", PROBE)
    return AppTest.from_file(str(APP), default_timeout=120)


def _no_failure(at: AppTest) -> None:
    """No exception, and no error but the warning over a model that did not learn (one epoch)."""
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error if "did not learn" not in e.value]
    assert not errors, errors


def _titled(at: AppTest, start: str) -> list[dict]:
    return [c for c in chart_specs(at) if c["layout"]["title"]["text"].startswith(start)]


def test_the_section_is_closed_by_default_and_shows_the_split_when_opened(app):
    at = app.run()
    _no_failure(at)
    assert not _titled(at, LAGS_TITLE)  # closed: it does not run
    open_sections(at, "split")
    _no_failure(at)
    (lags,) = _titled(at, LAGS_TITLE)
    subtitle = lags["layout"]["title"]["subtitle"]["text"]
    assert "LARNN probe_cue_shape_larnn (k' = 6" in subtitle and "all 40 sequences" in subtitle
    assert "test split" in subtitle
    assert len(lags["data"][0]["z"]) == 2 and len(lags["data"][0]["z"][0]) == 6  # heads x lags
    heads = next(d.value for d in at.dataframe if "entropy (normalised)" in d.value.columns)
    assert len(heads) == 2 and heads["accuracy drop when off (points)"].isna().all()
    labels = [b.proto.label for b in at.get("download_button")]
    assert {"lags (CSV)", "heads (CSV)", "all (JSON)"} <= set(labels)
    # one true class: its count in the title, other numbers than the whole split's
    at.selectbox(key="split_class").set_value(1).run()
    (of_class,) = _titled(at, LAGS_TITLE)
    assert "true class" in of_class["layout"]["title"]["subtitle"]["text"]
    assert of_class["data"][0]["z"] != lags["data"][0]["z"]
    # the caption under it counts that class's sequences, not the whole split's
    caption = next(c.value for c in at.caption if c.value.startswith("Mean attention weight"))
    assert "sequences of" in caption and "of 40 sequences" not in caption, caption


def test_head_and_channel_importance_run_on_request(app):
    at = open_sections(app.run(), "split")
    at.selectbox(key="split_ig_size").set_value(25).run()
    at.button(key="run_split_importance").click().run()
    _no_failure(at)
    heads = next(d.value for d in at.dataframe if "entropy (normalised)" in d.value.columns)
    drops = heads["accuracy drop when off (points)"]  # in points, as the chart beside it
    assert drops.notna().all() and drops.abs().max() <= 100
    (channels,) = _titled(at, "Channel importance")
    assert [trace["name"] for trace in channels["data"]] == ["LARNN", "LSTM"]
    for trace in channels["data"]:
        assert sum(trace["x"]) == pytest.approx(1.0)
    assert (
        "a fixed random sample of 25 sequences" in channels["layout"]["title"]["subtitle"]["text"]
    )
    assert "channels (CSV)" in [b.proto.label for b in at.get("download_button")]


def test_a_knob_change_is_what_the_view_shows(app):
    at = open_sections(app.run(), "split")
    key = next(s.key for s in at.slider if s.key and s.key.startswith("window_"))
    at.slider(key=key).set_value(3).run()
    _no_failure(at)
    (lags,) = _titled(at, LAGS_TITLE)
    assert "window k' = 3" in lags["layout"]["title"]["text"]
    assert len(lags["data"][0]["z"][0]) == 3


@pytest.fixture(scope="module")
def ragged_checkpoints(tmp_path_factory) -> Path:
    """A tiny LARNN and LSTM trained for one epoch on a labelled CSV of series 5..9 steps long."""
    root = tmp_path_factory.mktemp("ragged")
    data = grouped_csv(root / "grouped.csv")
    folder = root / "checkpoints"
    for architecture in ("larnn", "lstm"):
        model = {"hidden_size": 4}
        if architecture == "larnn":
            model.update(heads=2, window=3, kv_norm="layer")
        config = TrainConfig(architecture=architecture, dataset=str(data), model=model, epochs=1)
        result = train(config, root / architecture, progress=False)
        shutil.copytree(result.checkpoint, folder / f"grouped_{architecture}")
    return folder


def test_ragged_split_attention_and_erasure_over_the_split(ragged_checkpoints, monkeypatch):
    """Series of different lengths: the whole-split view counts real steps only, and the
    erasure test over the split is computed (it said "not computed" before)."""
    monkeypatch.setenv("LARNN_CHECKPOINT_DIR", str(ragged_checkpoints))
    at = AppTest.from_file(str(APP), default_timeout=120).run()
    at.sidebar.radio(key="dataset").set_value("file:grouped.csv").run()
    _no_failure(at)
    open_sections(at, "split", "faithfulness")
    _no_failure(at)
    (lags,) = _titled(at, LAGS_TITLE)
    caption = next(c.value for c in at.caption if "padding never counts" in c.value)
    lengths = [5 + case % 5 for case in range(12)]  # grouped_csv's lengths
    shown = int(caption.split(" sequences (")[1].split(" steps")[0].replace(",", ""))
    assert shown < max(lengths) * len(lengths) // 2  # the test part's real steps, not padded
    at.button(key="run_faithfulness").click().run()
    _no_failure(at)
    assert not any("not computed" in i.value for i in at.info)
    assert _titled(at, "Erasure test over")


# --- the figures ----------------------------------------------------------------------------------


def test_figures_are_valid_plotly():
    by_lag = np.array([[[0.5, 0.3, 0.2], [np.nan] * 3], [[0.1, 0.2, 0.7], [0.3, 0.3, 0.4]]])
    fig = split_figures.lag_figure(by_lag, "t")
    go.Figure(fig.to_dict())  # raises on any invalid property
    assert list(fig.data[0].z[1]) == [None, None, None]  # a switched-off head is blank
    assert fig.data[1].zmax == pytest.approx(0.7)  # one colour scale for every layer

    class Split:
        entropy = np.array([[0.5, np.nan], [0.9, 0.7]])
        oldest_share = np.array([[0.2, np.nan], [0.4, 0.5]])

    table = head_table(Split())
    fig = split_figures.heads_figure(table, 0.34, "t")
    go.Figure(fig.to_dict())
    assert list(fig.data[0].x) == ["L0 h0", "L0 h1", "L1 h0", "L1 h1"]
    assert any(a.text == "not measured yet" for a in fig.layout.annotations)
    fig = split_figures.channel_figure(
        {"LARNN": np.array([0.7, 0.3]), "LSTM": np.array([0.5, 0.5])}, ["a", "b"], "t"
    )
    go.Figure(fig.to_dict())
    assert json.loads(fig.to_json())["data"][0]["text"] == ["70%", "30%"]
