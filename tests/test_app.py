"""The Streamlit app: the page under AppTest, and the views and caches it runs on. The pure
modules under it are tested in their own files (tests/test_app_figures.py, test_uploads.py, ...).

The page tests run on tiny untrained checkpoints written to a tmp folder (the app reads
$LARNN_CHECKPOINT_DIR), so they do not depend on the shipped ones being trained yet.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
import torch
from streamlit.testing.v1 import AppTest

from app import catalog, describe, figures, knobs, uploads
from app.live_chart import figure_of
from app.values import DataView
from larnn import __version__
from larnn.baseline import LSTMConfig
from larnn.checkpoint import (
    CheckpointMetadata,
    checkpoint_to_zip_bytes,
    load_checkpoint,
    save_checkpoint,
)
from larnn.classifier import ClassifierConfig, SequenceClassifier
from larnn.data import Normalizer, attention_on_truth, make_probe, uci_har_available
from larnn.data.uci_har import CHANNELS, CLASS_NAMES, ENV_VAR
from larnn.inference import (
    attention_frame,
    attention_grid,
    infer_sequence,
    predict_probabilities,
    step_attention,
    truth_score,
    window_sweep,
)
from larnn.model import InferenceKnobs, LARNNConfig
from larnn.scan import compiled as compiled_scan
from larnn.tasks import UCI_HAR_UNITS, load_task, make_split

REPO_ROOT = Path(__file__).resolve().parents[1]
APP = REPO_ROOT / "app" / "main.py"
SHARED_UCI_HAR = REPO_ROOT.parent / "shared" / "data" / "uci_har"
PROBE = "probe:cue_shape"
PROBE_SPLIT = make_split(PROBE, probe_sizes=(48, 40, 40), probe_length=32)
RECALL = "probe:recall"  # the app's default dataset (tests/test_app_faithfulness.py)
RECALL_SPLIT = make_split(RECALL, probe_sizes=(48, 40, 40), probe_length=32)
UCI_SPLIT = make_split("uci_har")


# --- tiny checkpoints -----------------------------------------------------------------------------


def _save(
    folder: Path,
    encoder,
    dataset_id,
    split,
    channels,
    units,
    classes,
    normalizer,
    readout="last",
    asinh_scale=0.0,
    train_config=None,
) -> None:
    torch.manual_seed(0)
    config = ClassifierConfig.build(encoder, len(classes), readout, asinh_scale)
    model = SequenceClassifier(config).eval()
    metadata = CheckpointMetadata(
        dataset_id=dataset_id,
        split=split,
        channel_names=list(channels),
        channel_units=list(units),
        class_names=list(classes),
        normalizer=normalizer.to_dict(),
        metrics=(
            {"test": {"accuracy": 0.5}}
            if (train_config or {}).get("refit")
            else {"val": {"accuracy": 0.5, "macro_f1": 0.4}, "test": {"accuracy": 0.5}}
        ),
        seed=0,
        training_seconds=0.0,
        code_version=__version__,
        torch_version=torch.__version__,
        created="2025-01-01T00:00:00+00:00",
        train_config=train_config or {},
    )
    save_checkpoint(folder, model, metadata)


def make_checkpoints(root: Path) -> Path:
    """Untrained LARNN and LSTM checkpoints for the cue-shape and recall probes and UCI HAR."""
    probe = load_task(PROBE, PROBE_SPLIT)
    probe_norm = Normalizer.fit(probe.train.X)
    probe_args = (
        PROBE,
        PROBE_SPLIT,
        probe.train.channel_names,
        probe.channel_units,
        probe.train.class_names,
        probe_norm,
    )
    larnn = {"hidden_size": 8, "heads": 2, "window": 6, "max_window": 10, "batch_first": True}
    _save(root / "probe_cue_shape_larnn", LARNNConfig(input_size=3, **larnn), *probe_args)
    _save(root / "probe_cue_shape_lstm", LSTMConfig(3, 8, batch_first=True), *probe_args)
    recall = load_task(RECALL, RECALL_SPLIT)
    recall_args = (
        RECALL,
        RECALL_SPLIT,
        recall.train.channel_names,
        recall.channel_units,
        recall.train.class_names,
        Normalizer.fit(recall.train.X),
    )
    _save(root / "probe_recall_larnn", LARNNConfig(input_size=13, **larnn), *recall_args)
    _save(root / "probe_recall_lstm", LSTMConfig(13, 8, batch_first=True), *recall_args)
    uci_norm = Normalizer((0.0,) * 9, (0.3,) * 9)
    uci_args = ("uci_har", UCI_SPLIT, CHANNELS, UCI_HAR_UNITS, CLASS_NAMES, uci_norm)
    uci_larnn = LARNNConfig(input_size=9, num_layers=2, **larnn)
    _save(root / "uci_har_larnn", uci_larnn, *uci_args)
    _save(root / "uci_har_lstm", LSTMConfig(9, 8, batch_first=True), *uci_args)
    return root


@pytest.fixture
def app(checkpoints, monkeypatch) -> AppTest:
    """The page on the cue-shape probe's tiny checkpoints: these tests take it as the default
    dataset (the real default, probe:recall, is tested in tests/test_app_faithfulness.py)."""
    monkeypatch.setenv("LARNN_CHECKPOINT_DIR", str(checkpoints))
    monkeypatch.setattr(catalog, "DEFAULT_DATASET", PROBE)
    return AppTest.from_file(str(APP), default_timeout=60)


def _no_failure(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _metric(at: AppTest, label: str) -> str:
    """A metric's value as a person reads it (class names are Markdown that may wrap after an
    underscore: an escaped underscore and a zero-width space, see describe.breakable)."""
    value = next(m.value for m in at.metric if m.label.startswith(label))
    return value.replace("\\_", "_").replace("\u200b", "")


def _probabilities(at: AppTest) -> pd.DataFrame:
    return next(d.value for d in at.dataframe if "class" in d.value.columns)


def _attends(at: AppTest) -> str:
    return next(m.value for m in at.markdown if "attends most to" in m.value)


def _shown(at: AppTest) -> tuple:
    return (_metric(at, "LARNN predicts"), _probabilities(at).to_json(), _attends(at))


def chart_nodes(at: AppTest) -> list:
    """The page's charts in page order: st.plotly_chart's and app.live_chart's elements."""
    return [
        node
        for node in at.main
        if node.type == "plotly_chart"
        or (node.type == "component_instance" and node.proto.component_name.endswith(".live_chart"))
    ]


def chart_specs(at: AppTest) -> list[dict]:
    """The Plotly figure of every chart on the page, in page order."""
    return [
        figure_of(node.proto.json_args)
        if node.type == "component_instance"
        else json.loads(node.proto.spec)
        for node in chart_nodes(at)
    ]


def open_sections(at: AppTest, *names: str) -> AppTest:
    """Open the on-demand sections (sweep, faithfulness, export, models) as a click would."""
    for name in names:
        at.session_state[f"open_{name}"] = True
    return at.run()


def _chart(at: AppTest, index: int = 0) -> dict:
    """The Plotly spec of the index-th chart on the page (0: the attention heatmap)."""
    return chart_specs(at)[index]


def _key(at: AppTest, widgets, prefix: str) -> str:
    return next(w.key for w in widgets if w.key and w.key.startswith(prefix))


# --- the page -------------------------------------------------------------------------------------


def test_default_screen_shows_the_probe_with_both_models_and_attention(app):
    at = app.run()
    _no_failure(at)
    assert at.sidebar.radio(key="dataset").value == PROBE
    assert _metric(at, "True class") in ("up", "down", "up_down", "down_up")
    assert "LARNN" in _probabilities(at).columns and "LSTM" in _probabilities(at).columns
    assert _metric(at, "Attention on truth").endswith("×")
    assert "j = " in _attends(at)
    timeline = next(c for c in chart_specs(at) if "sliders" in c["layout"])
    slider = timeline["layout"]["sliders"][0]
    assert len(slider["steps"]) == 32 and slider["active"] == 31  # the last step is marked
    heatmap = _chart(at, 0)
    assert heatmap["data"][0]["type"] == "heatmap"
    assert "window k' = 6" in heatmap["layout"]["title"]["text"]  # the trained window


def test_the_page_says_when_the_slower_python_loop_runs(app, monkeypatch):
    from app import resources

    def loop_captions(at: AppTest) -> list[str]:
        return [c.value for c in at.caption if "slower Python loop" in c.value]

    resources.compiled_loops.clear()
    if compiled_scan.enabled():  # built here: nothing to say
        assert loop_captions(app.run()) == []
    monkeypatch.setenv("LARNN_COMPILED_SCAN", "0")
    resources.compiled_loops.clear()
    try:
        at = app.run()
        _no_failure(at)
        assert loop_captions(at) == [
            "Running LARNN's slower Python loop: switched off by LARNN_COMPILED_SCAN=0"
        ]
    finally:
        resources.compiled_loops.clear()


def test_each_knob_changes_what_the_page_shows(app):
    at = app.run()
    window_key = _key(at, at.slider, "window_")
    shown = _shown(at)
    at.slider(key=window_key).set_value(2).run()
    _no_failure(at)
    after_window = _shown(at)
    assert after_window != shown
    assert "lag 3" not in after_window[2]  # with k' = 2 no step looks 3 back
    assert "window k' = 2" in _chart(at, 0)["layout"]["title"]["text"]

    heads_key = _key(at, at.button_group, "heads_")
    at.button_group(key=heads_key).set_value([1]).run()  # switch head 0 off
    _no_failure(at)
    after_heads = _shown(at)
    assert after_heads != after_window
    assert "mean over heads 1" in _chart(at, 0)["layout"]["title"]["text"]

    activation_key = _key(at, at.selectbox, "activation_")
    at.selectbox(key=activation_key).set_value("tanh").run()
    _no_failure(at)
    assert _shown(at) != after_heads

    reset = next(b for b in at.button if b.label == "Reset knobs")
    reset.click().run()
    _no_failure(at)
    assert _shown(at) == shown


def test_a_knob_change_redraws_the_charts_it_changes_in_place(app):
    """Issue 11 (a knob change < 400 ms): st.plotly_chart names its element by the figure, so
    each figure a knob changed was a new element, taken off the page, put back and drawn twice.
    The charts a knob changes are app.live_chart elements named by their keys alone."""

    def live(at: AppTest) -> dict[str, tuple[str, dict]]:
        """{chart: (element id, figure)}; the heatmap's key ends with the model's key."""
        return {
            "heatmap_" if node.key.startswith("heatmap_") else node.key: (
                node.proto.id,
                figure_of(node.proto.json_args),
            )
            for node in chart_nodes(at)
            if node.type == "component_instance"
        }

    at = app.run()
    before = live(at)
    assert set(before) == {"heatmap_", "timeline", "head_grid", "probabilities"}
    at.slider(key=_key(at, at.slider, "window_")).set_value(2).run()
    _no_failure(at)
    after = live(at)
    assert {key: element for key, (element, _) in after.items()} == {
        key: element for key, (element, _) in before.items()
    }
    for key in ("heatmap_", "timeline", "head_grid", "probabilities"):
        assert after[key][1] != before[key][1], key  # the same element, a new figure
    assert "window k' = 2" in after["heatmap_"][1]["layout"]["title"]["text"]


def test_every_chart_and_export_says_what_it_shows(app, checkpoints):
    """Issue 11.5: each chart's title names the models, the knobs and the sequence; the sweep
    names the heads and activation it ran with; CSVs carry them as columns, HTML a <title>."""
    at = app.run()
    at.button_group(key=_key(at, at.button_group, "heads_")).set_value([1]).run()
    at.selectbox(key=_key(at, at.selectbox, "activation_")).set_value("tanh").run()
    open_sections(at, "sweep", "faithfulness")
    at.selectbox(key="sweep_size").set_value(50).run()
    at.button(key="run_sweep").click().run()
    _no_failure(at)
    charts = chart_specs(at)
    as_trained = [c for c in charts if "(as trained)" in c["layout"]["title"]["subtitle"]["text"]]
    assert (
        len(as_trained) == 2
    )  # attribution and erasure test: no knobs (tests/test_app_faithfulness)
    charts = [c for c in charts if c not in as_trained]
    assert len(charts) == 5  # heatmap, timeline, head grid, probabilities, sweep
    for chart in charts:
        title = chart["layout"]["title"]
        assert title["text"]
        words = title["subtitle"]["text"].replace("<br>", " · ")
        assert "LARNN probe_cue_shape_larnn (" in words and "heads 1 of 2 on" in words, words
        assert "tanh" in words and "Synthetic probe: cue shape, test split" in words, words
    *one_sequence, sweep = charts
    for chart in one_sequence:
        words = chart["layout"]["title"]["subtitle"]["text"].replace("<br>", " · ")
        assert "k' = 6, tanh, heads 1 of 2 on" in words and "sequence #0" in words, words
        assert "LSTM probe_cue_shape_lstm" in words
    assert "a fixed sample of 40 sequences" in sweep["layout"]["title"]["subtitle"]["text"]
    html = figures.figure_html(go.Figure(sweep), offline=False)
    assert "<title>Accuracy on 40 sequences against the window k' · LARNN" in html


def test_the_app_runs_torch_on_one_thread(app, monkeypatch):
    """Issue 11 (interaction speed): the app sets torch's threads (per script-run thread, as
    OpenMP keeps them) rather than leaving the machine's count (see TORCH_THREADS)."""
    from app import resources

    seen = []

    def counted(*args, **kwargs):
        seen.append(torch.get_num_threads())  # in the thread that runs the page
        return infer_sequence(*args, **kwargs)

    monkeypatch.setattr(resources, "infer_sequence", counted)
    resources.infer.clear()
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # what a 2-core machine starts with (conftest sets 1 for tests)
    try:
        _no_failure(app.run())
    finally:
        torch.set_num_threads(before)
        resources.infer.clear()
    assert seen and set(seen) == {1}


def test_sequence_choice_modes(app):
    at = app.run()
    at.sidebar.radio(key="choose_by").set_value("disagree").run()
    _no_failure(at)
    # The picker's label names three classes and gets cut in the sidebar: it is also written
    # out whole under the box.
    picked = at.sidebar.selectbox(key=_key(at, at.sidebar.selectbox, "pick_disagree"))
    whole = next(c.value for c in at.sidebar.caption if c.value.startswith("Shown: #"))
    assert whole == f"Shown: {picked.format_func(picked.value)}" and " · LSTM " in whole
    at.sidebar.radio(key="choose_by").set_value("class").run()
    _no_failure(at)
    class_key = _key(at, at.selectbox, "class_")
    at.selectbox(key=class_key).set_value(2).run()
    _no_failure(at)
    assert _metric(at, "True class") == "up_down"


def test_a_mean_readout_model_is_not_said_to_predict_from_the_last_step(tmp_path, monkeypatch):
    """A LARNN trained with readout 'mean' predicts from every step's hidden state: the line
    under the timeline and the model details say so (the last step's attention alone does not
    make its prediction)."""
    probe = load_task(PROBE, PROBE_SPLIT)
    args = (PROBE, PROBE_SPLIT, probe.train.channel_names, probe.channel_units)
    args += (probe.train.class_names, Normalizer.fit(probe.train.X))
    encoder = LARNNConfig(input_size=3, hidden_size=8, heads=2, window=6, batch_first=True)
    _save(tmp_path / "probe_cue_shape_larnn", encoder, *args, readout="mean")
    monkeypatch.setenv("LARNN_CHECKPOINT_DIR", str(tmp_path))
    monkeypatch.setattr(catalog, "DEFAULT_DATASET", PROBE)
    at = open_sections(AppTest.from_file(str(APP), default_timeout=60).run(), "models")
    _no_failure(at)
    line = next(m.value for m in at.markdown if "attends most to" in m.value)
    assert "the mean of every step's hidden state" in line and "makes the prediction" not in line
    assert any("Reads out: **the mean" in m.value for m in at.markdown)


def test_a_model_reading_asinh_channels_runs_and_says_so(tmp_path, monkeypatch):
    """A LARNN whose encoder reads each channel and its asinh (asinh_scale) takes the
    dataset's 3 channels in the app, draws its attention, and its details say what it reads."""
    probe = load_task(PROBE, PROBE_SPLIT)
    args = (PROBE, PROBE_SPLIT, probe.train.channel_names, probe.channel_units)
    args += (probe.train.class_names, Normalizer.fit(probe.train.X))
    encoder = LARNNConfig(input_size=3, hidden_size=8, heads=2, window=6, batch_first=True)
    _save(tmp_path / "probe_cue_shape_larnn", encoder, *args, asinh_scale=0.05)
    monkeypatch.setenv("LARNN_CHECKPOINT_DIR", str(tmp_path))
    monkeypatch.setattr(catalog, "DEFAULT_DATASET", PROBE)
    at = open_sections(AppTest.from_file(str(APP), default_timeout=60).run(), "models")
    _no_failure(at)
    assert any("attends most to" in m.value for m in at.markdown)
    reads = [m.value for m in at.markdown if m.value.startswith("Reads: ")]
    assert reads and all("each normalised channel x and asinh(x / 0.05)" in r for r in reads)


def test_model_details_say_how_each_model_was_chosen(tmp_path, monkeypatch):
    """A refit (trained on training + validation, no validation score) says so; a selected
    run says it was selected on validation; a checkpoint without a training record says
    nothing about it."""
    probe = load_task(PROBE, PROBE_SPLIT)
    args = (PROBE, PROBE_SPLIT, probe.train.channel_names, probe.channel_units)
    args += (probe.train.class_names, Normalizer.fit(probe.train.X))
    larnn = LARNNConfig(input_size=3, hidden_size=8, heads=2, window=6, batch_first=True)
    refit = {"refit": True, "epochs": 38}
    _save(tmp_path / "probe_cue_shape_larnn", larnn, *args, train_config=refit)
    lstm = LSTMConfig(3, 8, batch_first=True)
    _save(tmp_path / "probe_cue_shape_lstm", lstm, *args, train_config={"refit": False})
    monkeypatch.setenv("LARNN_CHECKPOINT_DIR", str(tmp_path))
    monkeypatch.setattr(catalog, "DEFAULT_DATASET", PROBE)
    at = open_sections(AppTest.from_file(str(APP), default_timeout=60).run(), "models")
    _no_failure(at)
    said = [m.value for m in at.markdown]
    assert (
        sum(
            m.startswith(
                "Refit: trained on the training and validation parts together for 38 epochs"
            )
            for m in said
        )
        == 1
    )
    assert sum(m.startswith("Selected on the validation part") for m in said) == 1
    splits = [list(t.value["split"]) for t in at.dataframe if "split" in t.value.columns]
    assert ["test"] in splits and ["test", "validation"] in splits
    assert describe.training_protocol({}) == ""


def test_window_sweep_runs_on_request(app):
    at = app.run()
    with pytest.raises(KeyError):
        at.selectbox(key="sweep_size")  # closed: its section does not run
    open_sections(at, "sweep")
    at.selectbox(key="sweep_size").set_value(50).run()
    at.button(key="run_sweep").click().run()
    _no_failure(at)
    assert any("Results are kept" in c.value for c in at.caption)
    assert any("against the window k'" in c["layout"]["title"]["text"] for c in chart_specs(at))


def test_closed_sections_run_nothing_and_keep_their_results(app):
    """The sections under the predictions run only while open (a knob change reruns the page:
    issue 11's interaction speed); a sweep run before closing is there again on opening."""
    at = app.run()
    _no_failure(at)
    labels = [e.label for e in at.expander]
    assert labels[-5:] == [
        "Attention over the whole split: by lag, per head, per class; channel importance",
        "Window sweep: accuracy against k'",
        "Faithfulness: does what a model attends to decide its prediction?",
        "Export: tables, numbers and figures",
        "Models: configuration, data, classes and recorded metrics",
    ]
    assert all(len(e.children) == 0 for e in at.expander[-5:])
    assert not at.get("download_button")
    open_sections(at, "sweep", "export", "models")
    at.selectbox(key="sweep_size").set_value(50).run()
    at.button(key="run_sweep").click().run()
    _no_failure(at)
    labels = [b.proto.label for b in at.get("download_button")]
    assert "window sweep (HTML)" in labels and "Attention (CSV)" in labels
    assert "erasure (HTML)" not in labels  # faithfulness is closed: not drawn, not offered
    assert any(m.value.startswith("Trained on **") for m in at.markdown)  # models' details
    at.session_state["open_sweep"] = False
    at.run()
    assert "window sweep (HTML)" not in [b.proto.label for b in at.get("download_button")]
    open_sections(at, "sweep")
    assert "window sweep (HTML)" in [b.proto.label for b in at.get("download_button")]


def test_uci_har_with_the_data_present(app, monkeypatch):
    if not uci_har_available(SHARED_UCI_HAR):
        pytest.skip(f"UCI HAR not found in {SHARED_UCI_HAR}")
    monkeypatch.setenv(ENV_VAR, str(SHARED_UCI_HAR))
    at = app.run()
    at.sidebar.radio(key="dataset").set_value("uci_har").run()
    _no_failure(at)
    assert _metric(at, "True class") in CLASS_NAMES
    assert any("128 steps" in c.value for c in at.caption)
    assert "layer" in " ".join(s.label.lower() for s in at.selectbox)  # two layers: a picker


def test_uci_har_missing_offers_a_download_and_the_offline_way(app, monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    if uci_har_available():
        pytest.skip("a UCI HAR copy is in the per-user cache; cannot test its absence")
    at = app.run()
    at.sidebar.radio(key="dataset").set_value("uci_har").run()
    assert not at.exception
    assert any(b.label == "Download UCI HAR" for b in at.button)
    assert any("LARNN_DATA_DIR" in i.value for i in at.info)


def test_failed_download_says_why_and_what_to_do(app, monkeypatch, tmp_path):
    import larnn.data.uci_har as uci_har
    from larnn.errors import DownloadError

    def offline(url, dest, **kwargs):
        kwargs["progress_callback"](0, 1000)
        raise DownloadError(f"Could not reach {url} (no network); is this machine offline?")

    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    if uci_har_available():
        pytest.skip("a UCI HAR copy is in the per-user cache; cannot test its absence")
    monkeypatch.setattr(uci_har, "download_file", offline)
    at = app.run()
    at.sidebar.radio(key="dataset").set_value("uci_har").run()
    next(b for b in at.button if b.label == "Download UCI HAR").click().run()
    assert not at.exception
    message = " ".join(e.value for e in at.error)
    assert "offline" in message and "LARNN_DATA_DIR" in message


def test_missing_shipped_checkpoints_are_explained(tmp_path, monkeypatch):
    monkeypatch.setenv("LARNN_CHECKPOINT_DIR", str(tmp_path))  # no checkpoint at all
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    _no_failure(at)
    assert any("No shipped LARNN checkpoint" in c.value for c in at.caption)
    assert any("No LARNN runs on this data" in i.value for i in at.info)
    assert chart_specs(at)  # the signal is still drawn


def test_a_dataset_without_shipped_checkpoints_is_not_offered(app):
    """Issue 11.9: "Synthetic probe: which first" shipped no model, a dead end."""
    at = app.run()
    offered = at.sidebar.radio(key="dataset").options
    assert "Synthetic probe: which first" not in offered
    assert "Synthetic probe: cue shape" in offered and "My own series (upload)" in offered


def test_a_probe_without_its_own_checkpoint(checkpoints, tmp_path, monkeypatch):
    """which_first is offered once some checkpoint was trained on it (here: an LSTM only)."""
    for folder in checkpoints.iterdir():
        (tmp_path / folder.name).symlink_to(folder)
    which_first = "probe:which_first"
    split = make_split(which_first, probe_sizes=(48, 40, 40), probe_length=64)
    task = load_task(which_first, split)
    channels = task.train.channel_names
    _save(
        tmp_path / "probe_which_first_lstm",
        LSTMConfig(len(channels), 8, batch_first=True),
        *(which_first, split, channels, task.channel_units, task.train.class_names),
        Normalizer.fit(task.train.X),
    )
    monkeypatch.setenv("LARNN_CHECKPOINT_DIR", str(tmp_path))
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    at.sidebar.radio(key="dataset").set_value("probe:which_first").run()
    _no_failure(at)
    assert any("No shipped LARNN checkpoint" in c.value for c in at.caption)
    picker = _key(at, at.selectbox, "model_larnn_probe:which_first")
    at.selectbox(key=picker).set_value("probe_cue_shape_larnn").run()  # same channel count
    assert not at.exception and not at.error
    notes = " ".join(w.value for w in at.warning)
    assert "trained on Synthetic probe: cue shape" in notes and "matched by position" in notes
    assert "j = " in _attends(at)


def test_upload_limits_are_what_the_app_accepts(app):
    """Issue 11.7: the uploader said 200 MB per file; the app refuses series over 20 MB."""
    import tomllib

    from larnn.checkpoint import DEFAULT_MAX_BYTES

    at = app.run()
    at.sidebar.radio(key="dataset").set_value("upload").run()
    at.selectbox(key=_key(at, at.selectbox, "model_larnn_")).set_value(
        "Upload a checkpoint ..."
    ).run()
    limits = {u.key: u.proto.max_upload_size_mb for u in at.get("file_uploader")}
    at.selectbox(key=_key(at, at.selectbox, "model_larnn_")).set_value(
        "probe_cue_shape_larnn"
    ).run()
    limits.update({u.key: u.proto.max_upload_size_mb for u in at.get("file_uploader")})
    assert limits["upload_larnn"] == DEFAULT_MAX_BYTES // 10**6 and limits["series_upload"] == 20
    config = tomllib.loads((REPO_ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] == max(limits.values())
    too_big = b"time,x,y,z\n" + b"0,1,2,3\n" * 2_500_001  # 20,000,011 bytes
    at.file_uploader(key="series_upload").set_value(("big.csv", too_big, "text/csv")).run()
    assert any("the limit is 20,000,000" in e.value for e in at.error)


def test_upload_mode_picks_the_models_that_read_the_file(app):
    """Issue 11.8: a 9-channel CSV failed under the 3-channel probe models until both pickers
    were changed by hand, and the hint pointed to section 1 while the uploader sat in 2."""
    at = app.run()
    at.sidebar.radio(key="dataset").set_value("upload").run()
    sidebar = [(type(e).__name__, getattr(e, "value", None)) for e in at.sidebar.children.values()]
    models_header = sidebar.index(("Header", "2 · Models"))
    assert [kind for kind, _ in sidebar[:models_header]].count("FileUploader") == 1
    assert any("(section 1 · Data)" in i.value for i in at.info)
    rows = "\n".join(f"{t}," + ",".join("0.1" for _ in CHANNELS) for t in range(30))
    csv = ("time," + ",".join(CHANNELS) + "\n" + rows + "\n").encode()
    at.file_uploader(key="series_upload").set_value(("uci.csv", csv, "text/csv")).run()
    _no_failure(at)
    pickers = {s.key: s.value for s in at.selectbox if s.key.startswith("model_")}
    assert pickers == {
        "model_larnn_upload_9ch": "uci_har_larnn",
        "model_lstm_upload_9ch": "uci_har_lstm",
    }
    assert any("Chosen for the 9 channels of uci.csv" in c.value for c in at.caption)
    assert "j = " in _attends(at)


def test_invalid_checkpoint_upload_says_what_is_wrong(app):
    at = app.run()
    picker = _key(at, at.selectbox, "model_larnn_")
    at.selectbox(key=picker).set_value("Upload a checkpoint ...").run()
    at.file_uploader(key="upload_larnn").set_value(("model.zip", b"not a zip", "application/zip"))
    at.run()
    assert not at.exception
    assert any("not a zip archive" in e.value for e in at.error)


def test_uploaded_checkpoint_zip_is_used(app, checkpoints):
    at = app.run()
    picker = _key(at, at.selectbox, "model_larnn_")
    at.selectbox(key=picker).set_value("Upload a checkpoint ...").run()
    data = checkpoint_to_zip_bytes(checkpoints / "probe_cue_shape_larnn")
    at.file_uploader(key="upload_larnn").set_value(("larnn.zip", data, "application/zip")).run()
    _no_failure(at)
    assert "j = " in _attends(at)


def test_checkpoint_for_other_channels_says_so(app):
    at = app.run()
    picker = _key(at, at.selectbox, "model_larnn_")
    at.selectbox(key=picker).set_value("uci_har_larnn").run()
    assert not at.exception
    assert any("reads 9 channels" in e.value for e in at.error)


def test_series_upload_good_and_bad(app):
    at = app.run()
    at.sidebar.radio(key="dataset").set_value("upload").run()
    assert not at.exception
    rows = "\n".join(f"{t},{0.1 * t},{-0.1 * t},0" for t in range(20))
    good = f"time,x,y,z\n{rows}\n".encode()
    at.file_uploader(key="series_upload").set_value(("mine.csv", good, "text/csv")).run()
    _no_failure(at)
    # Read, but in no green box: the probe's models never belong with an upload (issue 29).
    assert any("Read mine.csv" in i.value for i in at.info) and not at.success
    assert "j = " in _attends(at)
    bad = b"time,x,y,z\n0,1,2,3\n1,1,oops,3\n"
    at.file_uploader(key="series_upload").set_value(("bad.csv", bad, "text/csv")).run()
    assert not at.exception
    assert any("row 2" in e.value and "'y'" in e.value for e in at.error)


def test_a_bad_series_file_is_told_its_own_fault_under_the_default_models(app):
    """Issue 29: a 9-channel CSV with a `?` cell, under the default (3-channel) models, was
    told "expected the 3 channels ..."; the `?` was named only once matching models were
    picked by hand."""
    at = app.run()
    at.sidebar.radio(key="dataset").set_value("upload").run()
    rows = [f"{t}," + ",".join("0.1" for _ in CHANNELS) for t in range(20)]
    rows[7] = "7," + ",".join("?" if c == 4 else "0.1" for c in range(len(CHANNELS)))
    csv = ("time," + ",".join(CHANNELS) + "\n" + "\n".join(rows) + "\n").encode()
    at.file_uploader(key="series_upload").set_value(("question.csv", csv, "text/csv")).run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any("row 8 below the header" in e and "is not a number: '?'" in e for e in errors)
    assert not any("expected the" in e for e in errors), errors


def test_a_ts_file_on_the_upload_page_points_to_the_training_page(app):
    """Issue 29: a .ts file got only Streamlit's "files are not allowed"."""
    at = app.run()
    at.sidebar.radio(key="dataset").set_value("upload").run()
    uploader = at.file_uploader(key="series_upload")
    assert "ts" in uploader.proto.type or ".ts" in uploader.proto.type
    at.file_uploader(key="series_upload").set_value(
        ("BasicMotions_TRAIN.ts", b"@problemName BasicMotions\n", "application/octet-stream")
    ).run()
    assert not at.exception
    assert any("Train on my data" in e.value for e in at.error)


def test_an_upload_unlike_the_models_training_data_gets_no_green_box(app):
    """Issue 29: a real 3-channel accelerometer CSV mapped by position onto the synthetic
    probe's models was shown as "p = 0.99" under a green box with no warning."""
    at = app.run()
    at.sidebar.radio(key="dataset").set_value("upload").run()
    rng = np.random.default_rng(0)
    rows = "\n".join(
        f"{t}," + ",".join(f"{v:.4f}" for v in rng.normal(0, 0.17, 3)) for t in range(60)
    )
    csv = f"time,acc_x,acc_y,acc_z\n{rows}\n".encode()
    at.file_uploader(key="series_upload").set_value(("walk.csv", csv, "text/csv")).run()
    _no_failure(at)
    assert not at.success
    warnings = " ".join(w.value for w in at.warning)
    assert "trained on synthetic signals" in warnings and "matched by position only" in warnings
    # One box per model, its two reasons listed in it
    boxes = [w.value for w in at.warning if "synthetic signals" in w.value]
    assert len(boxes) == 2 and all(box.count("\n- ") == 1 for box in boxes), boxes
    predicts = next(m for m in at.metric if m.label == "LARNN predicts")
    assert "not its kind of data" in predicts.proto.delta


def test_inputs_far_from_the_training_data_are_warned_about(app, checkpoints):
    """Issue 11 (also): a series at a scale far from the model's training data ran under a
    green box and predicted with p = 1.00; mid-sequence predictions get one sentence."""
    at = app.run()
    at.sidebar.radio(key="dataset").set_value("upload").run()
    at.selectbox(key=_key(at, at.selectbox, "model_larnn_")).set_value(
        "probe_cue_shape_larnn"
    ).run()
    normalizer = load_checkpoint(checkpoints / "probe_cue_shape_larnn").metadata.normalizer
    usual = uploads.example_csv(
        uploads.example_series(normalizer, length=40), "xyz"
    )  # its own scale
    at.file_uploader(key="series_upload").set_value(("usual.csv", usual, "text/csv")).run()
    _no_failure(at)
    assert not any("far outside" in w.value for w in at.warning)
    assert any("not mid-way" in c.value for c in at.caption)
    scaled = "\n".join(f"{t},{300 + 50 * (t % 3)},0,-0.1" for t in range(40))
    at.file_uploader(key="series_upload").set_value(
        ("scaled.csv", f"time,x,y,z\n{scaled}\n".encode(), "text/csv")
    ).run()
    _no_failure(at)
    warned = [w.value for w in at.warning if "far outside" in w.value]
    assert warned and "x is centred" in warned[0] and "LARNN" in warned[0], warned


# --- pure helpers: inference views, checked against the long attention table ----------------------


@pytest.mark.parametrize("axis", ["lag", "time"])
def test_attention_grid_matches_the_long_table(inference, axis):
    result, _ = inference
    frame = attention_frame(result, 0)
    mean = frame.groupby(["t", "j", "lag"], as_index=False)["weight"].mean()
    grid = attention_grid(result, 0, None, axis)
    T = result.step_probabilities.shape[0]
    assert grid.z.shape == ((7, T) if axis == "lag" else (T, T))
    rows = mean["lag"] - 1 if axis == "lag" else mean["j"]
    np.testing.assert_allclose(grid.z[rows, mean["t"]], mean["weight"], rtol=1e-6)
    np.testing.assert_array_equal(grid.j[rows, mean["t"]], mean["j"])
    np.testing.assert_array_equal(grid.lag[rows, mean["t"]], mean["lag"])
    assert np.isnan(grid.z).sum() == grid.z.size - len(mean)  # every other cell is empty
    assert (grid.y == (np.arange(1, 8) if axis == "lag" else np.arange(T))).all()


def test_step_attention_and_truth_score(inference):
    result, relevant = inference
    frame = attention_frame(result, 0)
    at_t = frame[(frame.t == 20) & (frame["head"] == 1)]
    step = step_attention(result, 0, 20, [1])
    np.testing.assert_array_equal(step["j"], at_t["j"])
    np.testing.assert_allclose(step["weight"], at_t["weight"])
    expected = attention_on_truth(
        result.attention[0][None][:, :, [1]], result.slot_time, relevant[None]
    )
    assert truth_score(result, 0, relevant, [1]) == pytest.approx(expected)
    assert math.isnan(truth_score(result, 0, relevant, []))


# --- the caches and padded series ----------------------------------------------------------------


def test_cached_inference_keys_on_the_knobs_value(checkpoints, monkeypatch):
    """st.cache_data hashes the frozen InferenceKnobs field by field: an equal value built
    anew is a hit, any other knob a miss."""
    from app import resources

    calls = []

    def counted(model, raw, normalizer, knobs=None):
        calls.append(knobs)
        return infer_sequence(model, raw, normalizer, knobs)

    monkeypatch.setattr(resources, "infer_sequence", counted)
    resources.infer.clear()
    checkpoint = load_checkpoint(checkpoints / "probe_cue_shape_larnn")
    x = np.zeros((12, 3), dtype=np.float32)
    try:
        first = resources.infer("m", checkpoint, x, knobs.make_knobs(3, [1], 2, "tanh"))
        again = resources.infer("m", checkpoint, x, InferenceKnobs(3, [0, 1.0], "tanh"))
        assert len(calls) == 1 and again is not None
        np.testing.assert_array_equal(first.attention[0], again.attention[0])
        resources.infer("m", checkpoint, x, InferenceKnobs(3, (1.0, 1.0), "tanh"))
        resources.infer("m", checkpoint, x, InferenceKnobs(4, (0.0, 1.0), "tanh"))
        resources.infer("m", checkpoint, x, InferenceKnobs(3, (0.0, 1.0), "relu"))
        assert len(calls) == 4
    finally:
        resources.infer.clear()


def test_window_sweep_is_the_accuracy_at_each_window(checkpoints):
    checkpoint = load_checkpoint(checkpoints / "probe_cue_shape_larnn")
    norm = Normalizer.from_dict(checkpoint.metadata.normalizer)
    data = make_probe("cue_shape", 16, seed=5, length=32)
    knobs = InferenceKnobs(None, (1.0, 0.0), "tanh")
    sweep = window_sweep(checkpoint.model, data.X, data.y, norm, [1, 4, 10], knobs)
    assert list(sweep.columns) == ["window", "accuracy"] and sweep["window"].tolist() == [1, 4, 10]
    for window, accuracy in zip(sweep["window"], sweep["accuracy"], strict=True):
        chosen = InferenceKnobs(int(window), (1.0, 0.0), "tanh")
        p = predict_probabilities(checkpoint.model, data.X, norm, chosen)
        assert accuracy == pytest.approx(float((p.argmax(-1) == data.y).mean()))


def test_padded_series_are_read_at_their_own_end(checkpoints):
    """Right-padded series of different lengths: each is predicted (and swept) at its last
    real step, as if run alone; reading them at the padded end would differ."""
    checkpoint = load_checkpoint(checkpoints / "probe_cue_shape_larnn")
    norm = Normalizer.from_dict(checkpoint.metadata.normalizer)
    data = make_probe("cue_shape", 12, seed=6, length=40)
    lengths = np.random.default_rng(0).integers(33, 41, size=12)
    X = data.X.copy()
    for i, n in enumerate(lengths):
        X[i, n:] = 0.0
    padded = predict_probabilities(checkpoint.model, X, norm, lengths=lengths, batch_size=5)
    alone = np.concatenate(
        [
            predict_probabilities(checkpoint.model, X[i, :n][None], norm)
            for i, n in enumerate(lengths)
        ]
    )
    np.testing.assert_allclose(padded, alone, atol=1e-5)
    assert not np.allclose(predict_probabilities(checkpoint.model, X, norm), alone, atol=1e-3)
    sweep = window_sweep(checkpoint.model, X, data.y, norm, [2, 8], None, lengths)
    for window, accuracy in zip(sweep["window"], sweep["accuracy"], strict=True):
        p = np.concatenate(
            [
                predict_probabilities(
                    checkpoint.model, X[i, :n][None], norm, InferenceKnobs(int(window))
                )
                for i, n in enumerate(lengths)
            ]
        )
        assert accuracy == pytest.approx(float((p.argmax(-1) == data.y).mean()))
    view = DataView(
        X=X,
        labels=data.y,
        class_names=data.class_names,
        channel_names=data.channel_names,
        channel_units=("a.u.",) * 3,
        relevant_steps=None,
        dataset_id="probe:cue_shape",
        key="k",
        description="d",
        name="n",
        lengths=lengths,
    )
    assert view.sequence(3).shape == (lengths[3], 3)
    assert (view.sample_lengths(np.array([1, 2])) == lengths[[1, 2]]).all()


@pytest.mark.parametrize("axis", ["lag", "time"])
def test_attention_grid_over_a_span_is_that_stretch_of_the_whole_grid(inference, axis):
    """A long series is drawn a stretch at a time: the span's grid holds the same cells as the
    whole grid's columns first .. stop - 1."""
    result, _ = inference
    whole = attention_grid(result, 0, [0, 1], axis)
    first, stop = 11, 27
    part = attention_grid(result, 0, [0, 1], axis, span=(first, stop))
    assert list(part.t) == list(range(first, stop))
    rows = np.searchsorted(whole.y, part.y)
    assert list(whole.y[rows]) == list(part.y)
    np.testing.assert_array_equal(part.z, whole.z[rows, first:stop])
    np.testing.assert_array_equal(part.j, whole.j[rows, first:stop])
    if axis == "time":  # the rows start at the oldest step the span's queries reach
        assert part.y[0] == part.j[part.j >= 0].min() and part.y[-1] == stop - 1
    with pytest.raises(ValueError, match="span"):
        attention_grid(result, 0, None, axis, span=(5, len(result.slot_time) + 1))


def test_a_long_upload_is_drawn_a_stretch_at_a_time(app):
    """Issue 11.3: a 100,000-step upload crashed the tab (every step drawn, hover included)
    and ran Integrated Gradients over the whole series. Now the models run the whole series,
    the heatmaps and the timeline draw VIEW_STEPS of it, chosen with a slider, and the
    per-sequence attribution and erasure test say they need a shorter sequence."""
    from app.downsample import VIEW_STEPS
    from app.faithfulness import ANALYSIS_MAX_STEPS

    T = ANALYSIS_MAX_STEPS + 500
    at = app.run()
    at.sidebar.radio(key="dataset").set_value("upload").run()
    rng = np.random.default_rng(0)
    rows = "\n".join(f"{t}," + ",".join(f"{v:.3f}" for v in rng.normal(size=3)) for t in range(T))
    csv = f"time,x,y,z\n{rows}\n".encode()
    at.file_uploader(key="series_upload").set_value(("long.csv", csv, "text/csv")).run()
    _no_failure(at)
    span = at.slider(key=f"span_{T}")
    assert (span.min, span.max, span.value) == (0, T - VIEW_STEPS, T - VIEW_STEPS)
    heatmap, timeline = _chart(at, 0), _chart(at, 1)
    assert heatmap["layout"]["xaxis"]["range"] == [T - VIEW_STEPS - 0.5, T - 0.5]
    assert len(timeline["layout"]["sliders"][0]["steps"]) == VIEW_STEPS
    span.set_value(100).run()
    _no_failure(at)
    heatmap, timeline = _chart(at, 0), _chart(at, 1)
    assert heatmap["layout"]["xaxis"]["range"] == [99.5, 100 + VIEW_STEPS - 0.5]
    assert timeline["layout"]["sliders"][0]["steps"][0]["label"].startswith("100 · ")
    overview = next(c for c in at.get("plotly_chart") if c.proto.id and "overview" in c.key)
    shaded = json.loads(overview.proto.spec)["layout"]["shapes"][0]
    assert (shaded["x0"], shaded["x1"]) == (99.5, 100 + VIEW_STEPS - 0.5)
    open_sections(at, "faithfulness")
    too_long = [i.value for i in at.info if f"up to {ANALYSIS_MAX_STEPS:,} steps" in i.value]
    assert len(too_long) == 2  # Integrated Gradients and the erasure test
    # Hiding steps: the sidebar's range is picked inside the stretch drawn, and the memory-edit
    # figure draws that stretch, not the whole series.
    model_key = next(k.key for k in at.sidebar.toggle if k.key.startswith("hide_on_"))[8:]
    at.sidebar.toggle(key=f"hide_on_{model_key}").set_value(True).run()
    hide = at.sidebar.slider(key=f"hide_range_{model_key}_{T}_100")
    assert (hide.min, hide.max, hide.value) == (100, 100 + VIEW_STEPS - 1, (348, 355))
    _no_failure(at)
    edits = next(c for c in at.get("plotly_chart") if c.proto.id and "memory_edits" in c.key)
    edits = json.loads(edits.proto.spec)
    assert edits["layout"]["xaxis"]["range"] == [99.5, 100 + VIEW_STEPS - 0.5]
    last_drawn = 100 + VIEW_STEPS - 1  # the bars show where a step inside the stretch looks
    bars = [d for d in edits["data"] if d["type"] == "bar"]
    assert bars and all(d["name"].startswith(f"attention of t = {last_drawn},") for d in bars)
    assert len(edits["data"][0]["x"]["bdata"]) < 4 * 2 * VIEW_STEPS  # not T steps
