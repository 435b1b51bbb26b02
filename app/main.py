"""The LARNN explorer: `streamlit run app/main.py` from the repository root.

This file lays out widgets and plots only. What it shows comes from pure functions:
`larnn.inference` (inference and views of attention), `app.selection` (choices, checks and
page state), `app.describe` (words), `app.figures` (Plotly figures) and `app.export`
(downloads); `app.resources` caches them.
Every panel runs inside `guard`, so a failure shows a message for people, never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:  # `streamlit run app/main.py` puts app/, not the root, on the path
    sys.path.insert(0, str(_ROOT))

import hashlib  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from dataclasses import replace  # noqa: E402

import numpy as np  # noqa: E402
import streamlit as st  # noqa: E402

st.set_option("client.showErrorDetails", "none")  # a last guard: never a traceback on the page
st.set_option("client.toolbarMode", "minimal")  # no developer menu or deploy button

# The title first, before the imports below load PyTorch (seconds on a cold start) and the
# page loads models and data: a first visitor sees at once that the page is coming.
st.set_page_config(page_title="LARNN explorer", layout="wide")
st.title("LARNN explorer: what does the cell attend to?")
st.caption(
    "A LARNN is an LSTM that, at every step t, attends over its last k' cell states "
    "(steps j = t−k' … t−1). Pick data, models and a sequence in the sidebar; see where "
    "each step looks, how the knobs change it, and how the LARNN compares with an LSTM."
)
STARTING = st.empty()
if "started" not in st.session_state:  # a session's first run: say what is going on
    STARTING.info(
        "Starting the explorer: loading PyTorch, the models and the data. On a fresh server "
        "this takes up to half a minute (the compiled loops are built once per machine)."
    )

import torch  # noqa: E402
from streamlit.delta_generator import DeltaGenerator  # noqa: E402
from streamlit.elements.lib.mutable_expander_container import ExpanderContainer  # noqa: E402
from streamlit.runtime.uploaded_file_manager import UploadedFile  # noqa: E402

from app import describe, downsample, export, figures, memory_panels, resources  # noqa: E402
from app import selection as sel  # noqa: E402
from app.guard import guard  # noqa: E402
from app.live_chart import live_chart  # noqa: E402
from app.memory import MemoryNumbers, memory_document  # noqa: E402
from app.selection import ROLES, KnobChoice, Loaded, ModelRun  # noqa: E402
from larnn.checkpoint import CHECKPOINT_FILES  # noqa: E402
from larnn.data import download_uci_har, uci_har_available  # noqa: E402
from larnn.data.uci_har import CACHE_NAME, default_data_dir  # noqa: E402
from larnn.errors import ConfigError  # noqa: E402
from larnn.inference import attention_grid, head_weights, step_attention  # noqa: E402
from larnn.model import ACTIVATIONS, LARNNConfig  # noqa: E402

# Torch's intra-op threads, for the whole app process (every session runs in it): one. On the
# 2-core machine, one thread ran a 200-sequence, 3-window UCI HAR sweep in 0.3 s and one
# sequence with attention in 7 ms; two threads took 0.7-7.3 s and 36 ms, contending with each
# other, with other sessions and with other jobs on the same cores.
TORCH_THREADS = 1

# The summary's values wrap (class names break after underscores, see describe.breakable)
# instead of being cut to "WALKING_..." in a narrow column.
SUMMARY_STYLE = """<style>
[data-testid="stMetricValue"] { font-size: 1.75rem; }
[data-testid="stMetricValue"] .stMarkdownEllipsis, [data-testid="stMetricValue"] p {
  white-space: normal; overflow-wrap: anywhere; text-overflow: clip; line-height: 1.25;
}
</style>"""
UPLOAD_MODEL = "Upload a checkpoint ..."
NO_MODEL = "(none)"
PREDICTION_CHUNK = 256

# The sections under the predictions, each run only while it is open: a knob change reruns
# the whole page, and drawn, these four cost each change 50-100 ms of the 2-core machine's
# 300-420 ms (benchmarks/README.md, "The analyses open on demand").
SWEEP = "Window sweep: accuracy against k'"
FAITHFULNESS = "Faithfulness: does what a model attends to decide its prediction?"
EXPORT = "Export: tables, numbers and figures"
MODELS = "Models: configuration, data, classes and recorded metrics"
SECTION_KEYS = {
    SWEEP: "open_sweep",
    FAITHFULNESS: "open_faithfulness",
    EXPORT: "open_export",
    MODELS: "open_models",
}


# --- sidebar: data, models, sequence, knobs ------------------------------------------------


def pick_dataset(shipped: list[sel.ShippedModel]) -> tuple[str, str]:
    st.header("1 · Data")
    options = sel.offered_datasets(shipped) + resources.trained_datasets()  # files trained on
    dataset = st.radio(
        "Dataset",
        options,
        index=options.index(sel.DEFAULT_DATASET),
        format_func=sel.dataset_label,
        key="dataset",
    )
    split = "test"
    if dataset != sel.UPLOAD:
        split = st.radio(
            "Split",
            list(sel.SPLIT_LABELS),
            format_func=sel.SPLIT_LABELS.get,
            horizontal=True,
            key="split",
        )
    return dataset, split


def pick_series_file() -> UploadedFile | None:
    """The series uploader, in section 1: its channels choose the models of section 2."""
    return st.file_uploader(
        "Series file (.csv, .tsv, .npy or .npz)",
        type=["csv", "tsv", "npy", "npz"],
        key="series_upload",
        max_upload_size=sel.upload_megabytes(sel.SERIES_MAX_BYTES),
        help=sel.SERIES_UPLOAD_HELP,
    )


def series_readers(
    file: UploadedFile, shipped: list[sel.ShippedModel]
) -> list[sel.ShippedModel] | None:
    """The shipped models that read the uploaded series' channels, said under section 2;
    None when none does (the pickers then offer their usual defaults)."""
    contents = file.getvalue()
    digest = hashlib.sha256(contents).hexdigest()[:16]
    readers = resources.series_readers(digest, contents, file.name, tuple(shipped))
    if not readers:
        st.caption(
            f"No shipped checkpoint reads the channels of {file.name}: upload one below, or "
            "see the expected channels under the preview."
        )
        return None
    st.caption(
        f"Chosen for the {len(readers[0].channel_names)} channels of {file.name}: the "
        "checkpoints below read them (any other is still yours to pick)."
    )
    return readers


def pick_model(
    architecture: str,
    dataset: str,
    shipped: list[sel.ShippedModel],
    readers: list[sel.ShippedModel] | None = None,
) -> Loaded | None:
    """The checkpoint picker of one architecture. readers: for an uploaded series, the
    shipped models that read its channels; the first of this architecture is the default."""
    role = ROLES[architecture]
    wanted = dataset if dataset != sel.UPLOAD else sel.DEFAULT_DATASET
    offered = sel.models_for(shipped, architecture)
    picker_key = f"model_{architecture}_{dataset}"
    if readers:
        default = next((m for m in readers if m.architecture == architecture), None)
        picker_key += f"_{len(readers[0].channel_names)}ch"  # a new default for new channels
    else:
        default = sel.default_model(shipped, architecture, wanted)
    options = (
        [m.name for m in offered] + [UPLOAD_MODEL] + ([NO_MODEL] if architecture == "lstm" else [])
    )
    labels = {m.name: m.label for m in offered}
    choice = st.selectbox(
        f"{role} checkpoint" if architecture == "larnn" else "LSTM baseline checkpoint",
        options,
        index=options.index(default.name) if default else options.index(UPLOAD_MODEL),
        format_func=lambda name: labels.get(name, name),
        key=picker_key,
    )
    if default is None and readers and choice != NO_MODEL:
        st.caption(f"No shipped {role} checkpoint reads these channels; upload one.")
    elif default is None and choice != NO_MODEL:
        name = f"{wanted.replace(':', '_')}_{architecture}"
        st.caption(
            f"No shipped {role} checkpoint was trained on {sel.dataset_label(wanted)}. Upload "
            f"one, or train one with `larnn train --dataset {wanted} --architecture "
            f"{architecture} --out runs/{name}` and copy `runs/{name}/checkpoint` to "
            f"`checkpoints/{name}`."
        )
    if choice == NO_MODEL:
        return None
    loaded = None
    with guard(f"{role} checkpoint"):
        if choice == UPLOAD_MODEL:
            loaded = upload_model(architecture)
        else:
            path = next(m.path for m in offered if m.name == choice)
            key = resources.folder_key(path)
            loaded = Loaded(resources.load_shipped(key, str(path)), key, choice, role)
    if loaded is not None and loaded.checkpoint.architecture != architecture:
        picker = "LARNN" if loaded.checkpoint.architecture == "larnn" else "LSTM baseline"
        st.error(
            f"{loaded.name} holds a {ROLES[loaded.checkpoint.architecture]} model, not a {role}; "
            f"choose it in the {picker} picker instead."
        )
        return None
    return loaded


def upload_model(architecture: str) -> Loaded | None:
    files = st.file_uploader(
        f"{ROLES[architecture]} checkpoint: a folder as .zip, or its three files",
        type=["zip", "safetensors", "json"],
        accept_multiple_files=True,
        key=f"upload_{architecture}",
        help=f"A checkpoint folder holds {', '.join(CHECKPOINT_FILES)}. Nothing is unpickled.",
        max_upload_size=sel.upload_megabytes(sel.CHECKPOINT_MAX_BYTES),
    )
    if not files:
        st.info("Upload a checkpoint to use it here.")
        return None
    pairs = [(f.name, f.getvalue()) for f in files]
    payload = sel.checkpoint_payload(pairs)
    digest = sel.upload_digest(pairs)
    name = files[0].name if len(files) == 1 else "uploaded files"
    return Loaded(
        resources.load_uploaded(digest, payload), f"upload:{digest}", name, ROLES[architecture]
    )


def pick_sequence(data: sel.DataView, larnn_model: Loaded | None, lstm_model: Loaded | None) -> int:
    st.header("3 · Sequence")
    if data.labels is None:
        names = data.case_names or tuple(str(i) for i in range(len(data)))
        if len(data) == 1:
            st.caption(f"Case: {names[0]}")
            return 0
        return st.selectbox(
            "Case", range(len(data)), format_func=lambda i: names[i], key=f"case_{data.key}"
        )
    modes = sel.choose_modes(larnn_model is not None, lstm_model is not None)
    if st.session_state.get("choose_by") not in modes:
        st.session_state["choose_by"] = "index"  # a mode the models at hand no longer allow
    mode = st.radio("Choose by", modes, format_func=sel.CHOOSE_BY.get, key="choose_by")
    n = len(data)
    if mode == "index":
        return int(
            st.number_input(
                f"Sequence index (0 to {n - 1})",
                min_value=0,
                max_value=n - 1,
                value=0,
                step=1,
                key=f"index_{data.key}",
            )
        )
    larnn_predicted = lstm_predicted = None
    if larnn_model is not None and mode in ("larnn_wrong", "disagree"):
        larnn_predicted = split_predictions(larnn_model, data).argmax(-1)
    if lstm_model is not None and mode in ("lstm_wrong", "disagree"):
        lstm_predicted = split_predictions(lstm_model, data).argmax(-1)
    true_class = None
    if mode == "class":
        true_class = st.selectbox(
            "True class",
            range(len(data.class_names)),
            format_func=lambda k: data.class_names[k],
            key=f"class_{data.key}",
        )
    candidates = sel.candidate_indices(
        mode, data.labels, larnn_predicted, lstm_predicted, true_class
    ).tolist()
    if mode != "class":
        st.caption(
            f"{len(candidates)} of {n} sequences. Predictions over the split use each model's "
            "trained settings (no knobs)."
        )
    if not candidates:
        st.info("No sequence of this split fits this choice; showing sequence #0.")
        return 0

    def caption(i: int) -> str:
        return sel.sequence_caption(
            i, data.labels, data.class_names, larnn_predicted, lstm_predicted
        )

    index = st.selectbox(
        "Sequence", candidates, format_func=caption, key=f"pick_{mode}_{true_class}_{data.key}"
    )
    st.caption(f"Shown: {caption(index)}")  # whole: the box cuts long class names
    return index


def split_predictions(model: Loaded, data: sel.DataView) -> np.ndarray:
    """Class probabilities (N, classes) of the whole split, in cached chunks, with progress."""
    n, parts = len(data), []
    started, bar = time.perf_counter(), st.empty()
    for start in range(0, n, PREDICTION_CHUNK):
        stop = min(start + PREDICTION_CHUNK, n)
        parts.append(
            resources.probabilities_chunk(
                model.key, model.checkpoint, data.key, start, stop, data.X, data.lengths
            )
        )
        if time.perf_counter() - started > 0.3:
            bar.progress(stop / n, text=f"{model.role}: predicting {stop} of {n} sequences")
    bar.empty()
    return np.concatenate(parts)


def pick_knobs(larnn_model: Loaded, length: int) -> KnobChoice:
    st.header("4 · LARNN knobs")
    st.caption("Applied at inference only; the trained weights are not changed.")
    config = larnn_model.checkpoint.config.encoder_config()
    if not isinstance(config, LARNNConfig):
        raise ConfigError(f"{larnn_model.name} is not a LARNN: it has no knobs")
    key = larnn_model.key
    for name, value in sel.trained_widget_values(config).items():
        st.session_state.setdefault(f"{name}_{key}", value)  # the widgets take no default
    layer = 0
    if config.num_layers > 1:
        layer = st.selectbox(
            "Layer shown (the knobs act on every layer)",
            range(config.num_layers),
            format_func=lambda i: f"layer {i}",
            key=f"layer_{key}",
        )
    window = 1
    if config.queue_size > 1:
        window = st.slider(
            "Window k': past steps each step may attend to",
            min_value=1,
            max_value=config.queue_size,
            key=f"window_{key}",
            help=f"Trained with k = {config.window}; the queue holds {config.queue_size} "
            "steps, the most any k' can reach (a model trained with a larger max_window "
            "can look further back).",
        )
    activation = st.selectbox(
        "Activation on keys/values",
        ACTIVATIONS,
        format_func=lambda a: f"{a} (trained)" if a == config.kv_activation else a,
        key=f"activation_{key}",
    )
    heads_on = st.pills(
        "Heads switched on (click to switch off)",
        list(range(config.heads)),
        selection_mode="multi",
        format_func=lambda h: f"head {h}",
        key=f"heads_{key}",
    )
    st.button("Reset knobs", on_click=reset_knobs, args=(key, config))
    hidden = memory_panels.pick_hidden_steps(key, length)
    knobs = sel.make_knobs(window, heads_on or (), config.heads, activation, hidden)
    return KnobChoice(knobs, layer, config)


def reset_knobs(key: str, trained: LARNNConfig) -> None:
    """Set the knob widgets to the trained settings. Setting their values (not deleting their
    keys) is what makes the browser show them and send them back on the next interaction."""
    for name, value in sel.trained_widget_values(trained).items():
        st.session_state[f"{name}_{key}"] = value
    memory_panels.show_every_step(key)


# --- data ----------------------------------------------------------------------------------


def load_data(
    dataset: str,
    split: str,
    models: list[Loaded],
    series_file: UploadedFile | None,
    preview: DeltaGenerator,
) -> sel.DataView | None:
    if dataset == sel.UPLOAD:
        return uploaded_series(models, series_file, preview)
    if dataset == "uci_har" and not uci_har_available():
        uci_har_missing()
        return None
    recorded = [(m.name, m.checkpoint.metadata.to_dict()) for m in models]
    definition, origin = sel.split_definition(dataset, recorded)
    split_json = json.dumps(definition, sort_keys=True)
    task = resources.task(dataset, split_json, resources.data_dir())
    return sel.split_view(task, split, split_json, origin)


def uci_har_missing() -> None:
    st.subheader("UCI HAR is not on this machine yet")
    st.write(
        "The smartphone activity data (UCI HAR, about 60 MB from archive.ics.uci.edu) is "
        f"downloaded once, checked and cached in `{default_data_dir()}`."
    )
    if st.button("Download UCI HAR", type="primary"):
        bar = st.progress(0.0, text="Connecting to archive.ics.uci.edu ...")
        shown = [-1]

        def progress(done: int, total: int | None) -> None:
            percent = int(100 * done / total) if total else -1
            if percent != shown[0]:
                shown[0] = percent
                text = (
                    f"{done / 1e6:.1f} of {total / 1e6:.1f} MB" if total else f"{done / 1e6:.1f} MB"
                )
                bar.progress(max(percent, 0) / 100, text=text)

        with guard("Download of UCI HAR"):
            download_uci_har(progress=False, progress_callback=progress)
            bar.progress(1.0, text="Downloaded and verified.")
            st.rerun()
    st.info(
        "**Offline?** Copy `uci_har.npz` (or the UCI zip, or the extracted `UCI HAR Dataset` "
        "folder) into a folder on this machine and start the app with "
        "`LARNN_DATA_DIR=/that/folder streamlit run app/main.py`. "
        f"After one successful load the folder holds a fast `{CACHE_NAME}`."
    )


def uploaded_series(
    models: list[Loaded], file: UploadedFile | None, preview: DeltaGenerator
) -> sel.DataView | None:
    if not models:
        preview.warning("Choose a model first: its checkpoint says which channels a series needs.")
        return None
    reference = models[0].checkpoint.metadata
    channels, units = tuple(reference.channel_names), tuple(reference.channel_units)
    with preview:
        left, right = st.columns([2, 3])
        left.markdown(
            f"**Your series.** Channels expected by {models[0].name}: "
            f"{', '.join(f'`{c}`' for c in channels)}. A wide CSV has one column per channel "
            "(by name, or in this order) and an optional `time` column; a long CSV adds a "
            "`case_id` column; `.npy`/`.npz` hold an array (T, C) or (N, T, C)."
        )
        left.download_button(
            "Example CSV for this model",
            sel.example_csv(sel.example_series(reference.normalizer), channels),
            file_name="example_series.csv",
            mime="text/csv",
            on_click="ignore",
        )
        if file is None:
            left.info("Upload a series in the sidebar (section 1 · Data) to see it here.")
            return None
        contents = file.getvalue()
        digest = hashlib.sha256(contents).hexdigest()[:16]
        series = resources.user_series(digest, contents, file.name, channels)
        view = sel.upload_view(series, file.name, digest, units)
        n, length, _ = series.X.shape  # (N, T, C)
        left.success(f"Read {file.name}: {n} case(s) of {length} steps. {series.mapping_note}")
        right.caption(f"Preview: the first steps of case {series.case_ids[0]}")
        right.dataframe(sel.series_preview(series.X[0], channels), height=210, hide_index=True)
    return view


# --- main area -----------------------------------------------------------------------------


def model_notes(
    models: list[Loaded], data: sel.DataView
) -> tuple[list[Loaded], dict[str, sel.Fit]]:
    """Show whether each model fits the data; return the usable ones and every fit."""
    usable, fits = [], {}
    for model in models:
        md = model.checkpoint.metadata
        fit = sel.model_fit(
            model.role,
            md.channel_names,
            md.class_names,
            md.dataset_id,
            data.channel_names,
            data.class_names,
            data.dataset_id,
        )
        fits[model.role] = fit
        for problem in fit.problems:
            st.error(problem)
        for note in fit.notes:
            st.warning(note)
        if fit.usable:
            usable.append(model)
            far = sel.distribution_note(model.role, data.X, md.normalizer, data.channel_names)
            if far is not None:
                st.warning(far)
    return usable, fits


def summary_row(
    data: sel.DataView,
    index: int,
    runs: dict[str, ModelRun],
    fits: dict[str, sel.Fit],
    choice: KnobChoice | None,
) -> None:
    """One row of metrics: the sequence, both predictions, attention on truth, the knobs."""
    metrics = describe.summary_metrics(data, index, runs, fits, choice)
    st.html(SUMMARY_STYLE)
    for column, metric in zip(st.columns(5), metrics, strict=False):
        column.metric(**metric)


def pick_span(T: int) -> tuple[int, int]:
    """(first, stop): the steps the heatmaps and the timeline draw. All of a short series; of a
    long one a stretch of VIEW_STEPS chosen here, while the models run the whole series."""
    if T <= sel.VIEW_STEPS:
        return 0, T
    st.session_state.setdefault(sel.span_key(T), T - sel.VIEW_STEPS)  # widgets take no default
    first = st.slider(
        f"First of the {sel.VIEW_STEPS} steps drawn (the models ran all {T:,} steps)",
        min_value=0,
        max_value=T - sel.VIEW_STEPS,
        step=1,
        key=sel.span_key(T),
        help="A long series is drawn a stretch at a time: the heatmaps and the timeline show "
        "these steps, the overview below shows the whole series, thinned to its peaks.",
    )
    return sel.drawn_span(T, first)


def attention_sections(
    data: sel.DataView,
    index: int,
    runs: dict[str, ModelRun],
    choice: KnobChoice | None,
) -> dict[str, object]:
    """Heatmap, timeline (with its time-step slider) and head grid; returns the figures drawn."""
    drawn: dict[str, object] = {}
    x = data.sequence(index)  # (T, C), without padding
    T = len(x)
    relevant = None if data.relevant_steps is None else data.relevant_steps[index, :T]  # (T,)
    truth_steps = None if relevant is None else np.flatnonzero(relevant)
    larnn_run = runs.get("LARNN") if choice is not None else None
    true_class = None if data.labels is None else int(data.labels[index])
    context = describe.context_line(data, index, runs, choice)

    st.subheader("Signal, attention and running predictions")
    first, stop = pick_span(T)
    left, right = st.columns(2)
    axis = left.radio(
        "Past steps on the heatmaps' vertical axis",
        ["lag", "time"],
        format_func={"lag": "lag t − j (steps back)", "time": "absolute time j"}.get,
        horizontal=True,
        key="axis",
    )
    standardise = right.toggle(
        "Show the inputs standardised, as the models see them",
        key="standardise",
        help="Each channel minus its training mean, divided by its training std "
        "(the normaliser stored in the checkpoint). Hover values stay raw.",
    )
    shown_x, shown_units, value_label = x, data.channel_units, "value"
    if standardise and runs:
        first_model = next(iter(runs.values())).model
        shown_x = resources.normalizer(first_model.checkpoint).apply(x)
        shown_units, value_label = ("std",) * len(data.channel_names), "standardised"
    span = (first, stop)
    # Each section with a live chart sits in its own container, so that lines which come and
    # go above it (with k', say) do not move it: a moved chart is a new iframe, loaded anew.
    if larnn_run is not None and choice is not None:
        with st.container(), guard("Attention heatmap"):
            if choice.heads_on:
                grid = attention_grid(
                    larnn_run.inference, choice.layer, choice.heads_on, axis, span
                )
                fig = figures.attention_heatmap(
                    grid,
                    describe.heatmap_title(choice),
                    truth_steps=truth_steps,
                    X=x,
                    channel_names=data.channel_names,
                    channel_units=data.channel_units,
                )
                figures.titled(fig, context)
                memory_panels.heatmap_chart(fig, choice.knobs.hidden_steps, larnn_run.model.key)
                drawn["attention_heatmap"] = fig
                st.caption(
                    "Colour: attention weight (the scale tops out at the 99th percentile, so "
                    "the first steps, with only one or two past steps to share it, do not wash "
                    "out the rest). White: no such past step (before the start, or beyond k'). "
                    "Hover a cell for t, j, lag, weight and the inputs at j; click it to hide "
                    "or show step j (x: hidden)."
                )
                memory_panels.attention_notes(larnn_run, choice, relevant, span)
            else:
                st.warning("Every head is switched off: there is no attention to show.")
    with st.container(), guard("Signal and running predictions"):
        steps = None
        if larnn_run is not None and choice is not None and choice.heads_on:
            weights = head_weights(larnn_run.inference, choice.layer, choice.heads_on, span)
            steps = figures.StepAttention(weights, larnn_run.inference.slot_time[first:stop])
        running = {role: run.inference.step_probabilities[first:stop] for role, run in runs.items()}
        class_names = next(reversed(runs.values())).model.class_names if runs else ()
        same_classes = data.class_names is None or class_names == data.class_names
        fig = figures.timeline_figure(
            shown_x[first:stop],
            stop - 1,
            channel_names=data.channel_names,
            channel_units=shown_units,
            start=first,
            step_attention=steps,
            window=choice.window if larnn_run is not None and choice is not None else None,
            relevant_steps=None if relevant is None else relevant[first:stop],
            running=running,
            class_names=class_names,
            true_class=true_class if same_classes else None,
            value_label=value_label,
        )
        figures.titled(fig, context, "Signal, where step t looks, running predictions")
        live_chart(fig, key="timeline")
        drawn["timeline"] = fig
        st.caption(
            (
                "Drag the slider under the plot to move the time step t (the red dotted line); "
                "it moves in your browser, without rerunning the models. Top: the input. "
                "Middle: how step t spreads its attention over the past steps j in its window"
                + (" (red bars: ground-truth steps)" if relevant is not None else "")
                + ", on one scale for every t, so a step that looks at one place stands taller"
                " than one that spreads its attention. Bottom: each model's class probabilities if "
                "the sequence ended at that step."
                if steps is not None
                else "Drag the slider under the plot to move the time step t (the red dotted "
                "line). Top: the input. Bottom: each model's class probabilities if the "
                "sequence ended at that step."
            )
            + " The models were trained to classify whole sequences after their last step, "
            "not mid-way: earlier values show what they say there, not what they learned to say."
        )
        if steps is not None:  # the step that makes the prediction
            last = step_attention(larnn_run.inference, choice.layer, T - 1, choice.heads_on)
            if len(last):
                st.markdown(
                    describe.most_attended(last, T - 1)
                    + describe.prediction_step(larnn_run.model.checkpoint.config.readout)
                )
    if T > sel.VIEW_STEPS:
        with guard("Overview of the whole series"):
            drawn["overview"] = overview_section(shown_x, runs, span, context, value_label, data)
    if larnn_run is not None and choice is not None and choice.heads_on:
        with st.container(), guard("Per-head heatmaps"):
            heads = choice.trained.heads
            if heads > 1:
                st.subheader(f"Each head of layer {choice.layer}")
                grids = [
                    attention_grid(larnn_run.inference, choice.layer, [h], axis, span)
                    for h in range(heads)
                ]
                titles = describe.head_titles(larnn_run, choice, relevant)
                fig = figures.head_grid_figure(grids, titles, truth_steps=truth_steps)
                figures.titled(fig, context, "One heatmap per head, on one colour scale")
                live_chart(fig, key="head_grid")
                drawn["head_grid"] = fig
                st.caption(
                    "One colour scale for all heads. A head switched off attends nowhere. "
                    "'truth 2.0×': twice the attention on ground-truth steps that chance gives."
                    if relevant is not None
                    else "One colour scale for all heads. A head switched off attends nowhere."
                )
    return drawn


def overview_section(
    x: np.ndarray,
    runs: dict[str, ModelRun],
    span: tuple[int, int],
    context: str,
    value_label: str,
    data: sel.DataView,
) -> object:
    """The whole of a long series, thinned to each stretch's extremes, the drawn stretch shaded."""
    st.subheader("The whole series")
    class_names = next(reversed(runs.values())).model.class_names if runs else ()
    running = {
        role: downsample.min_max(run.inference.step_probabilities) for role, run in runs.items()
    }
    fig = figures.overview_figure(
        downsample.min_max(x),
        running,
        span,
        len(x),
        channel_names=data.channel_names,
        class_names=class_names,
        value_label=value_label,
    )
    figures.titled(fig, context, f"All {len(x):,} steps; shaded: the steps drawn above")
    st.plotly_chart(fig, key="overview")
    st.caption(
        f"Each line keeps its lowest and highest value in every stretch of "
        f"{-(-len(x) // (downsample.MAX_POINTS // 2)):,} steps, so short spikes stay visible. "
        f"Move the 'First of the {sel.VIEW_STEPS} steps drawn' slider above to draw another "
        "stretch in full."
    )
    return fig


def predictions_section(
    data: sel.DataView, index: int, runs: dict[str, ModelRun], choice: KnobChoice | None
) -> dict[str, object]:
    st.subheader("Predictions for this sequence")
    if not runs:
        st.info("No model runs on this data; choose or upload a checkpoint in the sidebar.")
        return {}
    names = {run.model.class_names for run in runs.values()}
    if len(names) > 1:
        st.warning("The two models predict different classes; they are shown one by one.")
    class_names = next(iter(runs.values())).model.class_names
    true_class = None
    if data.labels is not None and data.class_names == class_names:
        true_class = int(data.labels[index])
    shown = {role: run for role, run in runs.items() if run.model.class_names == class_names}
    probabilities = {role: run.inference.probabilities for role, run in shown.items()}
    left, right = st.columns([3, 2])
    fig = figures.probabilities_figure(
        probabilities,
        class_names,
        true_class=true_class,
        model_names={role: run.model.name for role, run in shown.items()},
    )
    context = describe.context_line(data, index, runs, choice)
    figures.titled(fig, context, "Probabilities after the last step", line_chars=90)
    with left:
        live_chart(fig, key="probabilities")
    right.dataframe(
        export.probability_table(probabilities, class_names, true_class), hide_index=True
    )
    right.caption("Probabilities after the last step; the running values are on the timeline.")
    return {"probabilities": fig}


def sweep_section(
    data: sel.DataView,
    larnn_model: Loaded | None,
    lstm_model: Loaded | None,
    fits: dict[str, sel.Fit],
    choice: KnobChoice | None,
) -> dict[str, object]:
    if (
        larnn_model is None
        or choice is None
        or data.labels is None
        or not fits["LARNN"].labels_comparable
    ):
        st.info("The sweep needs a LARNN and labelled data with the LARNN's classes.")
        return {}
    windows = sel.sweep_windows(choice.trained.queue_size, choice.trained.window)
    left, right = st.columns([1, 3])
    size = memory_panels.sample_size(left, "sweep_size")
    sample = sel.sweep_sample(len(data), size)
    request = (larnn_model.key, data.key, size, replace(choice.knobs, window=None))
    requested = st.session_state.setdefault("sweeps", set())
    if left.button("Run the sweep", type="primary", key="run_sweep"):
        requested.add(request)
    right.caption(
        f"Runs the LARNN on {len(sample)} sequences of this split (a fixed random sample) for "
        f"each k' in {windows}, with the heads and activation chosen in the sidebar, and the "
        "LSTM once on the same sample. Results are kept for this model and sample."
    )
    if request not in requested:
        return {}
    with guard("Window sweep"):
        X, y = data.X[sample], data.labels[sample]  # (S, T, C), (S,)
        lengths = data.sample_lengths(sample)
        sample_key = f"{data.key}|sample{size}"
        sweep = resources.window_sweep(
            larnn_model.key,
            larnn_model.checkpoint,
            sample_key,
            X,
            y,
            tuple(windows),
            choice.knobs,
            lengths,
        )
        baseline = None
        if lstm_model is not None and fits.get("LSTM") and fits["LSTM"].labels_comparable:
            baseline = resources.accuracy(
                lstm_model.key, lstm_model.checkpoint, sample_key, X, y, lengths
            )
        fig = figures.window_sweep_figure(
            sweep,
            baseline_accuracy=baseline,
            trained_window=choice.trained.window,
            current_window=choice.window,
            sample_size=len(sample),
        )
        lstm_name = lstm_model.name if baseline is not None else None
        context = describe.sweep_context(data, larnn_model.name, lstm_name, choice, len(sample))
        figures.titled(fig, context)
        st.plotly_chart(fig, key="sweep")
        return {"window_sweep": fig}
    return {}


def export_section(
    data: sel.DataView,
    index: int,
    runs: dict[str, ModelRun],
    choice: KnobChoice | None,
    drawn: dict[str, object],
    numbers: MemoryNumbers,
) -> None:
    if not runs:
        st.info("Nothing to export yet.")
        return
    stem = export.file_stem(data, index)
    context = export.export_context(data, index, runs, choice)
    inferences = export.with_class_names(runs)
    columns = st.columns(4)
    if "LARNN" in runs:
        larnn_inference = runs["LARNN"].inference
        columns[0].download_button(
            "Attention (CSV)",
            lambda: export.csv_bytes(
                export.with_context(export.attention_table(larnn_inference), context)
            ),
            file_name=f"{stem}_attention.csv",
            mime="text/csv",
            on_click="ignore",
        )
    columns[1].download_button(
        "Predictions (CSV)",
        lambda: export.csv_bytes(
            export.with_context(
                export.predictions_table(inferences, context["true_class"]), context
            )
        ),
        file_name=f"{stem}_predictions.csv",
        mime="text/csv",
        on_click="ignore",
    )
    columns[2].download_button(
        "Attention and predictions (JSON)",
        lambda: export.json_bytes(
            {**export.export_document(context, inferences), **memory_document(numbers)}
        ),
        file_name=f"{stem}.json",
        mime="application/json",
        on_click="ignore",
    )
    memory_panels.export_buttons(numbers, context, stem)
    st.caption(
        "Figures drawn on the page now, as standalone HTML pages (plotly.js included, they "
        "open offline). Open the window sweep or the faithfulness section above to add "
        "their figures and numbers:"
    )
    row = st.container(horizontal=True)  # buttons as wide as their names, wrapped
    for name, fig in drawn.items():
        row.download_button(
            f"{name.replace('_', ' ')} (HTML)",
            lambda fig=fig: figures.figure_html(fig),
            file_name=f"{stem}_{name}.html",
            mime="text/html",
            on_click="ignore",
            key=f"html_{name}",
        )


def model_details(models: list[Loaded]) -> None:
    with on_demand(MODELS) as section:
        if not section.open:
            return
        if not models:
            st.write("No model loaded.")
            return
        for column, model in zip(st.columns(len(models)), models, strict=True):
            md = model.checkpoint.metadata
            with column:
                st.markdown(f"**{model.role}: {model.name}**  \n`{model.checkpoint.source}`")
                st.markdown(
                    f"Trained on **{sel.dataset_label(md.dataset_id)}**; seed {md.seed}, "
                    f"{md.training_seconds:.0f} s, {md.created}, larnn {md.code_version}."
                )
                st.markdown(
                    "Channels: "
                    + ", ".join(
                        f"`{n}` ({u})"
                        for n, u in zip(md.channel_names, md.channel_units, strict=True)
                    )
                )
                st.markdown("Classes: " + ", ".join(f"`{c}`" for c in md.class_names))
                st.markdown(f"Reads out: **{describe.READOUTS[model.checkpoint.config.readout]}**.")
                st.markdown(
                    f"Reads: {describe.encoder_inputs(model.checkpoint.config.asinh_scale)}."
                )
                protocol = describe.training_protocol(md.train_config)
                if protocol:
                    st.markdown(protocol)
                st.dataframe(sel.metrics_table(md.metrics), hide_index=True)
                st.caption("Full configuration (click to unfold):")
                st.json(model.checkpoint.config.to_dict(), expanded=False)


# --- the page ------------------------------------------------------------------------------


def on_demand(label: str) -> ExpanderContainer:
    """A closed expander whose contents run only while it is open (its `.open`); opening or
    closing it reruns the page."""
    return st.expander(label, key=SECTION_KEYS[label], on_change="rerun")


def main() -> None:
    torch.set_num_threads(TORCH_THREADS)
    shipped = sel.describe_shipped(resources.shipped_folders())
    with st.sidebar:
        dataset, split = pick_dataset(shipped)
        series_file = pick_series_file() if dataset == sel.UPLOAD else None
        st.header("2 · Models")
        readers = None
        if series_file is not None:
            with guard("Reading the series file"):
                readers = series_readers(series_file, shipped)
        picked = [pick_model(architecture, dataset, shipped, readers) for architecture in ROLES]
    models = [m for m in picked if m is not None]
    preview = st.container()
    data = None
    with guard("Loading the data"):
        data = load_data(dataset, split, models, series_file, preview)
    if data is None:
        model_details(models)
        return
    if data.dataset_id is not None:  # an upload is described above, with its preview
        st.caption(data.description)
    usable, fits = model_notes(models, data)
    larnn_model = next((m for m in usable if m.role == "LARNN"), None)
    lstm_model = next((m for m in usable if m.role == "LSTM"), None)
    if larnn_model is None:
        st.info(
            "No LARNN runs on this data, so there is no attention to show: choose or upload a "
            "LARNN checkpoint trained on it."
        )
    index = 0
    choice = None
    with st.sidebar:
        with guard("Choosing the sequence"):
            index = pick_sequence(
                data,
                larnn_model if larnn_model and fits["LARNN"].labels_comparable else None,
                lstm_model if lstm_model and fits["LSTM"].labels_comparable else None,
            )
        if larnn_model is not None:
            with guard("LARNN knobs"):
                choice = pick_knobs(larnn_model, len(data.sequence(index)))
    runs: dict[str, ModelRun] = {}  # by role, LARNN first
    with guard("Running the models"):
        not_compiled = resources.compiled_loops()
        if not_compiled:
            st.caption(f"Running LARNN's slower Python loop: {not_compiled}")
        x = data.sequence(index)  # (T, C), without padding
        if larnn_model is not None and choice is not None:
            inference = resources.infer(larnn_model.key, larnn_model.checkpoint, x, choice.knobs)
            runs["LARNN"] = ModelRun(larnn_model, inference)
        if lstm_model is not None:
            inference = resources.infer(lstm_model.key, lstm_model.checkpoint, x)
            runs["LSTM"] = ModelRun(lstm_model, inference)
    with guard("Summary"):
        summary_row(data, index, runs, fits, choice)
    STARTING.empty()  # the first results are up
    drawn = attention_sections(data, index, runs, choice)
    numbers = MemoryNumbers()
    # Containers: the predictions' live chart keeps its place (see attention_sections).
    with st.container(), guard("Memory edits and attribution"):
        edit_drawn, numbers = memory_panels.edit_sections(data, index, runs, choice)
        drawn.update(edit_drawn)
    with st.container(), guard("Predictions"):
        drawn.update(predictions_section(data, index, runs, choice))
    st.subheader("Analyses on demand")
    st.caption("Each section runs while it is open; closed, a knob change does not redraw it.")
    with on_demand(SWEEP) as section:
        if section.open:
            drawn.update(sweep_section(data, larnn_model, lstm_model, fits, choice))
    with on_demand(FAITHFULNESS) as section, guard("Faithfulness"):
        if section.open:
            faith_drawn, numbers = memory_panels.faithfulness_section(
                data, index, runs, fits, numbers
            )
            drawn.update(faith_drawn)
    with on_demand(EXPORT) as section, guard("Export"):
        if section.open:
            export_section(data, index, runs, choice, drawn, numbers)
    model_details(models)


try:
    main()
except Exception as error:  # the last net: a message, never a traceback
    st.error(
        f"The page failed: {type(error).__name__}: {error}. Reload the page; if it keeps "
        "happening, report this message."
    )
finally:
    STARTING.empty()
    st.session_state["started"] = True
