"""The explorer's sidebar: the pickers for data, models, sequence, knobs and hidden steps.

Widgets only (Streamlit); what they offer and the values they build come from pure modules:
`app.catalog` (datasets, checkpoints), `app.uploads`, `app.sequences`, `app.knobs` (one
`InferenceKnobs`, built here and passed whole), `app.faithfulness` (the steps hidden) and
`app.page_state` (a link to the view: read once per session, each picker seeded from it the
first time it is drawn).
"""

from __future__ import annotations

import hashlib
import time

import numpy as np
import streamlit as st
from streamlit.runtime.uploaded_file_manager import UploadedFile

from app import catalog, downsample, knobs, page_state, resources, sequences, uploads
from app.faithfulness import clicked_steps, hidden_steps, steps_text, toggled
from app.guard import guard
from app.values import ROLES, DataView, KnobChoice, Loaded, ModelRun
from larnn.checkpoint import CHECKPOINT_FILES
from larnn.errors import ConfigError, LarnnError
from larnn.model import ACTIVATIONS, LARNNConfig

UPLOAD_MODEL = "Upload a checkpoint ..."
NO_MODEL = "(none)"
LINKED_MODELS = {page_state.UPLOADED: UPLOAD_MODEL, page_state.NO_MODEL: NO_MODEL}  # a link's words
PREDICTION_CHUNK = 256
LINK_PARTS = "link_parts"  # the link's parts no picker has taken yet: {name: value}
LINK_NOTES = "link_notes"  # what the link could not restore, shown until dismissed
LINK_AREA = "link_area"  # this run's place for them, at the top of the sidebar


# --- a link to the view ---------------------------------------------------------------------------


def open_link() -> None:
    """Read the page's link once per session (its parts wait for their pickers), and show
    at the top of the sidebar what it could not restore."""
    if LINK_PARTS not in st.session_state:
        state, notes = page_state.from_query(st.query_params.to_dict())
        parts = {name: getattr(state, name) for name in page_state.PARAMETERS}
        st.session_state[LINK_PARTS] = {k: v for k, v in parts.items() if v is not None}
        st.session_state[LINK_NOTES] = notes
    # This run's place for the notes, at the top of the sidebar; its parts are made with the
    # first note: empty placeholders left in the sidebar kept its select boxes from opening.
    st.session_state[LINK_AREA] = {"area": st.container()}
    for note in st.session_state[LINK_NOTES]:
        _show_link_note(note)


def _link_part(name: str) -> object | None:
    """The link's value for `name`, once: None when it names none, or it was taken."""
    return st.session_state.get(LINK_PARTS, {}).pop(name, None)


def _link_note(note: str | None) -> None:
    """Keep and show what the link could not restore (None: nothing)."""
    if note:
        st.session_state[LINK_NOTES].append(note)
        _show_link_note(note)


def _show_link_note(note: str) -> None:
    """A note in the link's area: the notes (the pickers add theirs as they read), then one
    Dismiss button under them."""
    area = st.session_state[LINK_AREA]
    if "notes" not in area:
        area["notes"] = area["area"].container()
        area["area"].button("Dismiss", key="link_dismiss", on_click=dismiss_link_notes)
    area["notes"].warning(note)


def dismiss_link_notes() -> None:
    st.session_state[LINK_NOTES] = []


def view_state(
    index: int, runs: dict[str, ModelRun], choice: KnobChoice | None
) -> page_state.PageState:
    """What a link to the view shown names (the sidebar's dataset and split widgets)."""
    dataset = st.session_state.get("dataset", catalog.DEFAULT_DATASET)
    split = None if dataset == catalog.UPLOAD else st.session_state.get("split", "test")
    return page_state.state_of(dataset, split, runs, index, choice)


# --- 1 · data, 2 · models -------------------------------------------------------------------------


def pick_dataset(shipped: list[catalog.ShippedModel]) -> tuple[str, str]:
    open_link()
    st.header("1 · Data")
    options = catalog.offered_datasets(shipped) + resources.trained_datasets()  # files trained on
    linked = _link_part("dataset")
    if linked is not None:
        linked, note = page_state.checked_choice(
            linked, options, "dataset", catalog.dataset_label(catalog.DEFAULT_DATASET)
        )
        _link_note(note)
    dataset = st.radio(
        "Dataset",
        options,
        index=default_index(options, linked or catalog.DEFAULT_DATASET, "dataset"),
        format_func=catalog.dataset_label,
        key="dataset",
    )
    split = "test"
    linked_split = _link_part("split")
    if dataset != catalog.UPLOAD:
        splits = list(catalog.SPLIT_LABELS)
        split = st.radio(
            "Split",
            splits,
            index=default_index(splits, linked_split or splits[0], "split"),
            format_func=catalog.SPLIT_LABELS.get,
            horizontal=True,
            key="split",
        )
    return dataset, split


def default_index(options: list[str], default: str, key: str) -> int:
    """The index of a picker's default: the value another page chose for it (the training
    page's "Open in the explorer", under `catalog.CHOSEN`, used once), else `default` (a
    link's checked value, or the page's own default).
    Handed over so, not written to the widget's key: a widget given a default and a value
    set through the Session State API logs a warning on the server."""
    chosen = st.session_state.get(catalog.CHOSEN, {}).pop(key, None)
    return options.index(chosen if chosen in options else default)


def pick_series_file() -> UploadedFile | None:
    """The series uploader, in section 1: its channels choose the models of section 2."""
    return st.file_uploader(
        "Series file (.csv, .tsv, .npy or .npz)",
        type=uploads.SERIES_UPLOAD_TYPES,
        key="series_upload",
        max_upload_size=uploads.upload_megabytes(uploads.SERIES_MAX_BYTES),
        help=uploads.SERIES_UPLOAD_HELP,
    )


def series_readers(
    file: UploadedFile, shipped: list[catalog.ShippedModel]
) -> list[catalog.ShippedModel] | None:
    """The shipped models that read the uploaded series' channels, said under section 2;
    None when none does, or the file cannot be read (the pickers then offer their usual
    defaults; the page says what is wrong with the file)."""
    contents = file.getvalue()
    digest = hashlib.sha256(contents).hexdigest()[:16]
    try:
        readers = resources.series_readers(digest, contents, file.name, tuple(shipped))
    except LarnnError:
        st.caption(f"{file.name} cannot be read (the page says why): the usual models below.")
        return None
    if not readers:
        st.caption(
            f"No shipped checkpoint reads the channels of {file.name}: upload one below, or "
            "see the expected channels under the preview."
        )
        return None
    own = resources.user_series(digest, contents, file.name, None).channel_names
    how = (
        "read them by name"
        if uploads.names_every_channel(own, readers[0].channel_names)
        else "have as many channels, but other names: read by position only (see the warnings)"
    )
    st.caption(
        f"Chosen for the {len(readers[0].channel_names)} channels of {file.name}: the "
        f"checkpoints below {how} (any other is still yours to pick)."
    )
    return readers


def pick_model(
    architecture: str,
    dataset: str,
    shipped: list[catalog.ShippedModel],
    readers: list[catalog.ShippedModel] | None = None,
) -> Loaded | None:
    """The checkpoint picker of one architecture. readers: for an uploaded series, the
    shipped models that read its channels; the first of this architecture is the default."""
    role = ROLES[architecture]
    wanted = dataset if dataset != catalog.UPLOAD else catalog.DEFAULT_DATASET
    offered = catalog.models_for(shipped, architecture)
    picker_key = f"model_{architecture}_{dataset}"
    if readers:
        default = next((m for m in readers if m.architecture == architecture), None)
        picker_key += f"_{len(readers[0].channel_names)}ch"  # a new default for new channels
    else:
        default = catalog.default_model(shipped, architecture, wanted)
    options = (
        [m.name for m in offered] + [UPLOAD_MODEL] + ([NO_MODEL] if architecture == "lstm" else [])
    )
    labels = {m.name: m.label for m in offered}
    linked = _link_part(architecture)
    if linked is not None:
        linked, note = page_state.checked_choice(
            LINKED_MODELS.get(linked, linked),
            options,
            f"{role} checkpoint",
            default.name if default else f"'{UPLOAD_MODEL}'",
        )
        _link_note(note)
    choice = st.selectbox(
        f"{role} checkpoint" if architecture == "larnn" else "LSTM baseline checkpoint",
        options,
        index=default_index(
            options, linked or (default.name if default else UPLOAD_MODEL), picker_key
        ),
        format_func=lambda name: labels.get(name, name),
        key=picker_key,
    )
    if default is None and readers and choice != NO_MODEL:
        st.caption(f"No shipped {role} checkpoint reads these channels; upload one.")
    elif default is None and choice != NO_MODEL:
        name = f"{wanted.replace(':', '_')}_{architecture}"
        st.caption(
            f"No shipped {role} checkpoint was trained on {catalog.dataset_label(wanted)}. Upload "
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
        max_upload_size=uploads.upload_megabytes(uploads.CHECKPOINT_MAX_BYTES),
    )
    if not files:
        st.info("Upload a checkpoint to use it here.")
        return None
    pairs = [(f.name, f.getvalue()) for f in files]
    payload = uploads.checkpoint_payload(pairs)
    digest = uploads.upload_digest(pairs)
    name = files[0].name if len(files) == 1 else "uploaded files"
    return Loaded(
        resources.load_uploaded(digest, payload), f"upload:{digest}", name, ROLES[architecture]
    )


# --- 3 · sequence ---------------------------------------------------------------------------------


def pick_sequence(data: DataView, larnn_model: Loaded | None, lstm_model: Loaded | None) -> int:
    st.header("3 · Sequence")
    n = len(data)
    linked = _link_part("sequence")
    if linked is not None:
        linked, note = page_state.checked_sequence(linked, n)
        _link_note(note)
    if data.labels is None:
        names = data.case_names or tuple(str(i) for i in range(n))
        if n == 1:
            st.caption(f"Case: {names[0]}")
            return 0
        return st.selectbox(
            "Case",
            range(n),
            index=linked or 0,  # the link's case as the default: the widget's key holds it after
            format_func=lambda i: names[i],
            key=f"case_{data.key}",
        )
    modes = sequences.choose_modes(larnn_model is not None, lstm_model is not None)
    if st.session_state.get("choose_by") not in modes or linked is not None:
        st.session_state["choose_by"] = "index"  # a link's sequence, or a mode the models at
        # hand no longer allow
    mode = st.radio("Choose by", modes, format_func=sequences.CHOOSE_BY.get, key="choose_by")
    if mode == "index":
        return int(
            st.number_input(
                f"Sequence index (0 to {n - 1})",
                min_value=0,
                max_value=n - 1,
                value=linked or 0,  # the link's sequence as the default, as the pickers above
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
    candidates = sequences.candidate_indices(
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
        return sequences.sequence_caption(
            i, data.labels, data.class_names, larnn_predicted, lstm_predicted
        )

    index = st.selectbox(
        "Sequence", candidates, format_func=caption, key=f"pick_{mode}_{true_class}_{data.key}"
    )
    st.caption(f"Shown: {caption(index)}")  # whole: the box cuts long class names
    return index


def split_predictions(model: Loaded, data: DataView) -> np.ndarray:
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


# --- 4 · knobs ------------------------------------------------------------------------------------


def pick_knobs(larnn_model: Loaded, length: int) -> KnobChoice:
    st.header("4 · LARNN knobs")
    st.caption("Applied at inference only; the trained weights are not changed.")
    config = larnn_model.checkpoint.config.encoder_config()
    if not isinstance(config, LARNNConfig):
        raise ConfigError(f"{larnn_model.name} is not a LARNN: it has no knobs")
    key = larnn_model.key
    linked = page_state.PageState(
        **{n: _link_part(n) for n in ("window", "heads", "activation", "layer")}
    )
    linked_values, notes = page_state.checked_knobs(linked, config)
    for note in notes:
        _link_note(note)
    for name, value in (knobs.trained_widget_values(config) | linked_values).items():
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
    hidden = pick_hidden_steps(key, length)
    chosen = knobs.make_knobs(window, heads_on or (), config.heads, activation, hidden)
    return KnobChoice(chosen, layer, config)


def reset_knobs(key: str, trained: LARNNConfig) -> None:
    """Set the knob widgets to the trained settings. Setting their values (not deleting their
    keys) is what makes the browser show them and send them back on the next interaction."""
    for name, value in knobs.trained_widget_values(trained).items():
        st.session_state[f"{name}_{key}"] = value
    show_every_step(key)


# --- 5 · hidden steps: a range here, or clicks on the attention heatmap ---------------------------


def _clicked_key(model_key: str) -> str:
    return f"hidden_clicked_{model_key}"


def pick_hidden_steps(model_key: str, length: int) -> tuple[int, ...]:
    """Sidebar widgets for the steps to hide; returns them (the heatmap's clicks included)."""
    st.header("5 · Memory edits")
    st.caption(
        "Hide past steps from attention in every layer: a hidden step's slot is treated as "
        "empty. The LSTM baseline gets the same steps' input occluded instead."
    )
    last = max(length - 2, 0)  # step T - 1 is in no query step's window
    hide_range = None
    if st.toggle("Hide a range of past steps", key=f"hide_on_{model_key}"):
        # A long series: the range is picked inside the stretch drawn (a slider over 100,000
        # steps moves hundreds of steps a pixel), and starts afresh when that stretch moves.
        first, stop = span_drawn(length)
        low, high = min(first, last), min(stop - 1, last)
        label, key = "Past steps j hidden (from, to)", f"hide_range_{model_key}_{length}"
        if length > downsample.VIEW_STEPS:
            label += f", inside the steps drawn ({low}-{high}; moving them resets it)"
            key += f"_{first}"
        hide_range = st.slider(
            label,
            min_value=low,
            max_value=high,
            value=(max(high - 7, low), high),
            key=key,
        )
    linked = _link_part("hidden")
    if linked is not None:
        kept, note = page_state.checked_hidden(linked, length)
        _link_note(note)
        st.session_state[_clicked_key(model_key)] = kept
    clicked = st.session_state.get(_clicked_key(model_key), frozenset())
    hidden = hidden_steps(hide_range, (s for s in clicked if s <= last))
    st.caption(
        f"Hidden: j = {steps_text(hidden)}. A click on a cell of the attention heatmap "
        "hides its step j (a second click shows it again) while 'A click on a heatmap cell', "
        "over the heatmap, is set to 'hides or shows its past step j'."
    )
    if hidden:
        st.button("Show every step again", on_click=show_every_step, args=(model_key,))
    return hidden


def span_drawn(length: int) -> tuple[int, int]:
    """(first, stop): the stretch the page's span slider draws (it is set further down)."""
    return downsample.drawn_span(length, st.session_state.get(downsample.span_key(length)))


def show_every_step(model_key: str) -> None:
    """Forget the clicked steps and switch the range off (a button's callback)."""
    st.session_state[_clicked_key(model_key)] = frozenset()
    st.session_state[f"hide_on_{model_key}"] = False


def toggle_clicked(chart_key: str, model_key: str) -> None:
    """Hide or show the steps of the heatmap cells clicked (the heatmap's click callback)."""
    steps = clicked_steps(st.session_state[chart_key]["points"])
    if steps:
        clicked = st.session_state.get(_clicked_key(model_key), frozenset())
        st.session_state[_clicked_key(model_key)] = toggled(clicked, steps)
