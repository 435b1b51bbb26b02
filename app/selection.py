"""Page state and selection helpers: pure functions behind the app's widgets.

Nothing here imports Streamlit, so tests call these directly: which checkpoints to offer,
the models on the page and their runs, whether a model fits the data, which sequences a
"choose by" mode offers, the knobs a set of widget values means, and how uploaded checkpoint
files become a `load_checkpoint` source.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from larnn.checkpoint import (
    CHECKPOINT_FILES,
    CONFIG_FILE,
    DEFAULT_MAX_BYTES,
    METADATA_FILE,
    WEIGHTS_FILE,
    Checkpoint,
)
from larnn.data import UserSeries, read_user_series
from larnn.errors import CheckpointError, LarnnError
from larnn.inference import SequenceInference
from larnn.model import InferenceKnobs, LARNNConfig
from larnn.tasks import Task, make_split

# --- datasets ------------------------------------------------------------------------------

UPLOAD = "upload"  # the dataset choice "my own series"
DEFAULT_DATASET = "probe:recall"  # the showcase: a LARNN retrieves, a same-size LSTM cannot
DATASET_LABELS = {
    "probe:recall": "Synthetic probe: recall (needs memory)",
    "probe:cue_shape": "Synthetic probe: cue shape",
    "probe:which_first": "Synthetic probe: which first",
    "uci_har": "UCI HAR (smartphone activity)",
    UPLOAD: "My own series (upload)",
}
SPLIT_LABELS = {"test": "test", "val": "validation", "train": "train"}


def dataset_label(dataset_id: str) -> str:
    return DATASET_LABELS.get(dataset_id, dataset_id)


def offered_datasets(shipped: Sequence[ShippedModel]) -> list[str]:
    """The datasets the picker offers: those a shipped checkpoint was trained on, so that no
    choice is a dead end, and always the default (the page's first screen) and the upload."""
    trained_on = {m.dataset_id for m in shipped}
    return [d for d in DATASET_LABELS if d in trained_on or d in (DEFAULT_DATASET, UPLOAD)]


# --- shipped checkpoints -------------------------------------------------------------------


@dataclass(frozen=True)
class ShippedModel:
    """A checkpoint folder, described from its JSON files without loading the weights."""

    name: str
    path: Path
    architecture: str | None  # None when config.json cannot be read
    dataset_id: str | None  # None when metadata.json cannot be read
    channel_names: tuple[str, ...] | None = None  # None when metadata.json cannot be read

    @property
    def label(self) -> str:
        trained_on = dataset_label(self.dataset_id) if self.dataset_id else "unknown data"
        return f"{self.name} (trained on {trained_on})"


def describe_shipped(folders: dict[str, Path]) -> list[ShippedModel]:
    """Architecture and training data of each checkpoint folder (unreadable fields -> None)."""
    return [
        ShippedModel(
            name,
            Path(path),
            _json_field(Path(path) / CONFIG_FILE, "architecture"),
            _json_field(Path(path) / METADATA_FILE, "dataset_id"),
            _json_strings(Path(path) / METADATA_FILE, "channel_names"),
        )
        for name, path in folders.items()
    ]


def _json_value(path: Path, key: str) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8")).get(key)
    except (OSError, ValueError, AttributeError):
        return None


def _json_field(path: Path, key: str) -> str | None:
    value = _json_value(path, key)
    return value if isinstance(value, str) else None


def _json_strings(path: Path, key: str) -> tuple[str, ...] | None:
    value = _json_value(path, key)
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


def models_for(models: list[ShippedModel], architecture: str) -> list[ShippedModel]:
    """Shipped models of one architecture, those of unknown architecture too (they will say)."""
    return [m for m in models if m.architecture in (architecture, None)]


def default_model(
    models: list[ShippedModel], architecture: str, dataset_id: str
) -> ShippedModel | None:
    """The first shipped model of `architecture` trained on `dataset_id`, else None."""
    return next(
        (m for m in models if m.architecture == architecture and m.dataset_id == dataset_id), None
    )


# --- the models on the page ----------------------------------------------------------------

ROLES = {"larnn": "LARNN", "lstm": "LSTM"}  # architecture -> how the page names the model


@dataclass(frozen=True)
class Loaded:
    """A checkpoint on the page: the shared model, its cache key and the name people see."""

    checkpoint: Checkpoint
    key: str  # identifies the checkpoint in caches (folder and mtime, or the upload's hash)
    name: str
    role: str  # "LARNN" or "LSTM"

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.checkpoint.metadata.class_names)


@dataclass(frozen=True)
class ModelRun:
    """One model's inference on the sequence shown."""

    model: Loaded
    inference: SequenceInference


# --- uploads: what the app reads, so what the uploaders let through; who reads a series --

# The limits an uploaded series meets, all here: the uploader's help states them, `read_series`
# enforces them (its errors name the one passed), and Streamlit's uploader refuses a larger
# file in the browser. SERIES_MAX_STEPS is what the page can serve: one run of the whole series
# per model and knob setting (100,000 x 9 steps: ~4 s and 115 MB for the UCI HAR LARNN).
SERIES_MAX_BYTES = 20_000_000  # one series file (an .npz: its arrays unpacked, too)
SERIES_MAX_STEPS = 100_000  # time steps per series
SERIES_MAX_CASES = 10_000  # series (cases) per file
CHECKPOINT_MAX_BYTES = DEFAULT_MAX_BYTES  # one checkpoint file or zip, as load_checkpoint reads
SERIES_UPLOAD_HELP = (
    f"A wide CSV/TSV (rows: time steps, one column per channel, optional `time` column), a "
    f"long CSV (`case_id`, `time`, channels) or a NumPy `.npy`/`.npz` array (T, C) or "
    f"(N, T, C). Limits: {SERIES_MAX_BYTES // 1_000_000} MB per file, "
    f"{SERIES_MAX_STEPS:,} time steps per series, {SERIES_MAX_CASES:,} series per file; "
    "every value a finite number."
)


def read_series(contents: bytes, file_name: str, channels: Sequence[str]) -> UserSeries:
    """An uploaded series file read for a model's `channels`, within the upload limits above;
    DataError saying which limit or which row, column or key is wrong."""
    return read_user_series(
        contents,
        file_name,
        channels,
        max_bytes=SERIES_MAX_BYTES,
        max_length=SERIES_MAX_STEPS,
        max_cases=SERIES_MAX_CASES,
    )


def upload_megabytes(max_bytes: int) -> int:
    """An uploader's per-file limit in the megabytes Streamlit's browser side counts (10^6
    bytes), so that it refuses at once what the app would refuse after the upload."""
    return max_bytes // 1_000_000


def models_reading(
    models: Sequence[ShippedModel], contents: bytes, file_name: str
) -> list[ShippedModel]:
    """The shipped models whose channels an uploaded series file can be read for (the series
    reader decides: by column names, else by their count), those trained on the default
    dataset first. Empty when none can, or when the file cannot be read at all."""
    readable: dict[tuple[str, ...], bool] = {}
    for model in models:
        channels = model.channel_names
        if channels is not None and channels not in readable:
            try:
                read_series(contents, file_name, channels)
                readable[channels] = True
            except LarnnError:
                readable[channels] = False
    found = [m for m in models if m.channel_names is not None and readable[m.channel_names]]
    return sorted(found, key=lambda m: m.dataset_id != DEFAULT_DATASET)


# --- uploaded checkpoints ------------------------------------------------------------------


def checkpoint_payload(files: Sequence[tuple[str, bytes]]) -> bytes | dict[str, bytes]:
    """What `load_checkpoint` reads from uploaded files: one zip's bytes, or the three files.

    files: (file name, contents) pairs as uploaded. A `.safetensors` file of any name counts
    as the weights; the JSON files must be named config.json and metadata.json.
    """
    if not files:
        raise CheckpointError("no file uploaded: upload a checkpoint .zip or its three files")
    zips = [name for name, _ in files if name.lower().endswith(".zip")]
    if zips:
        if len(files) > 1:
            raise CheckpointError(
                f"upload either one .zip or the three files {', '.join(CHECKPOINT_FILES)}, "
                f"not both: got {', '.join(name for name, _ in files)}"
            )
        return files[0][1]
    payload: dict[str, bytes] = {}
    for name, data in files:
        base = Path(name).name
        key = WEIGHTS_FILE if base.lower().endswith(".safetensors") else base
        if key not in CHECKPOINT_FILES:
            raise CheckpointError(
                f"{base}: not a checkpoint file; expected {', '.join(CHECKPOINT_FILES)} "
                "(or a .zip of the checkpoint folder)"
            )
        if key in payload:
            raise CheckpointError(f"two files were uploaded as {key}; upload one of each")
        payload[key] = data
    missing = [name for name in CHECKPOINT_FILES if name not in payload]
    if missing:
        raise CheckpointError(
            f"missing {', '.join(missing)}: a checkpoint needs all of "
            f"{', '.join(CHECKPOINT_FILES)}; add the missing file(s) or upload the folder as .zip"
        )
    return payload


def upload_digest(files: Sequence[tuple[str, bytes]]) -> str:
    """A short content hash of uploaded files: the cache key of the model they hold."""
    digest = hashlib.sha256()
    for name, data in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return digest.hexdigest()[:16]


# --- does a model fit the data? ------------------------------------------------------------


@dataclass(frozen=True)
class Fit:
    """Whether a checkpoint can run on a dataset, and what a person should know if so."""

    usable: bool  # False: the channel count differs, the model cannot read this data
    problems: tuple[str, ...]  # why it cannot run
    notes: tuple[str, ...]  # it runs, but ...
    labels_comparable: bool  # its classes are the data's classes, in the same order


def model_fit(
    role: str,
    metadata_channels: Sequence[str],
    metadata_classes: Sequence[str],
    metadata_dataset: str,
    channel_names: Sequence[str],
    class_names: Sequence[str] | None,
    dataset_id: str | None,
) -> Fit:
    """Compare a checkpoint's recorded channels, classes and dataset with the data shown.

    role: how the page names the model ("LARNN", "LSTM baseline"). class_names and
    dataset_id are None for an uploaded series (no labels, no known source).
    """
    model_ch, data_ch = list(metadata_channels), list(channel_names)
    if len(model_ch) != len(data_ch):
        return Fit(
            False,
            (
                f"The {role} checkpoint reads {len(model_ch)} channels ({', '.join(model_ch)}) "
                f"but this data has {len(data_ch)} ({', '.join(data_ch)}), so it cannot run on "
                f"it. Choose a checkpoint trained on {_data_name(dataset_id)} or other data.",
            ),
            (),
            False,
        )
    notes = []
    if dataset_id is not None and metadata_dataset != dataset_id:
        notes.append(
            f"The {role} was trained on {dataset_label(metadata_dataset)}, not on "
            f"{dataset_label(dataset_id)}: its predictions here say little."
        )
    if [c.casefold() for c in model_ch] != [c.casefold() for c in data_ch]:
        notes.append(
            f"The {role} names its channels {', '.join(model_ch)}; the data's are "
            f"{', '.join(data_ch)}. They are matched by position."
        )
    comparable = class_names is not None and list(metadata_classes) == list(class_names)
    if class_names is not None and not comparable:
        notes.append(
            f"The {role}'s classes ({', '.join(metadata_classes)}) are not the data's "
            f"({', '.join(class_names)}): right or wrong cannot be judged."
        )
    return Fit(True, (), tuple(notes), comparable)


def _data_name(dataset_id: str | None) -> str:
    return "this data" if dataset_id is None else dataset_label(dataset_id)


OFFSET_LIMIT = 3.0  # |channel mean - training mean| in training stds
SPREAD_LIMITS = (0.01, 5.0)  # channel std / training std: flat (a padded channel) .. 5x


MAX_STEPS_LOOKED_AT = 4096  # of each sampled sequence, evenly spaced: enough for a mean and std


def distribution_note(
    role: str, X: np.ndarray, normalizer: dict, channel_names: Sequence[str], sample: int = 64
) -> str | None:
    """A warning when the inputs lie far outside the model's training distribution, per the
    normaliser's statistics stored in its checkpoint; None when every channel is in range.

    X: (N, T, C) raw inputs, of which `sample` evenly spaced sequences are looked at (the
    warning is about the data, not one sequence; the sample keeps it cheap on every rerun,
    and evenly spaced, it is not one subject or class of a sorted split). A channel
    is out of range when its mean sits more than OFFSET_LIMIT training stds from the training
    mean, or its spread is outside SPREAD_LIMITS times the training spread.
    """
    mean = np.asarray(normalizer["mean"], dtype=np.float64)  # (C,)
    std = np.asarray(normalizer["std"], dtype=np.float64)  # (C,)
    spaced = X[:: max(1, len(X) // sample)][:sample]  # (S, T, C)
    spaced = spaced[:, :: max(1, spaced.shape[1] // MAX_STEPS_LOOKED_AT)]  # a long one thinned
    values = np.asarray(spaced, dtype=np.float64).reshape(-1, len(mean))  # (S*T', C)
    values = values[np.isfinite(values).all(axis=1)]
    if not len(values):
        return None
    offset = np.abs(values.mean(axis=0) - mean) / std  # (C,)
    spread = values.std(axis=0) / std  # (C,)
    low, high = SPREAD_LIMITS
    far = []
    for c, name in enumerate(channel_names):
        if offset[c] > OFFSET_LIMIT:
            far.append(f"{name} is centred {offset[c]:.1f} training stds from its training mean")
        elif not low <= spread[c] <= high:
            far.append(f"{name} spreads {spread[c]:.2g}× as widely as in training")
    if not far:
        return None
    return (
        f"These inputs lie far outside what the {role} was trained on: {'; '.join(far)}. "
        "Its predictions, and how sure they look, say little here."
    )


# --- choosing a sequence -------------------------------------------------------------------

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


# --- knobs ---------------------------------------------------------------------------------


def make_knobs(
    window: int,
    heads_on: Sequence[int],
    heads: int,
    kv_activation: str,
    hidden_steps: Sequence[int] = (),
) -> InferenceKnobs:
    """The knobs a set of widget values means; no head mask when every head is on, no
    hidden steps when none is hidden."""
    on = set(int(h) for h in heads_on)
    mask = None if on == set(range(heads)) else tuple(1.0 if h in on else 0.0 for h in range(heads))
    return InferenceKnobs(
        window=int(window),
        head_mask=mask,
        kv_activation=kv_activation,
        hidden_steps=tuple(int(s) for s in hidden_steps) or None,
    )


def trained_widget_values(trained: LARNNConfig) -> dict[str, object]:
    """The knob widgets' values that mean "as trained", by widget name (the page adds the
    model's key): layer shown, window, activation on keys/values, heads switched on."""
    return {
        "layer": 0,
        "window": trained.window,
        "activation": trained.kv_activation,
        "heads": list(range(trained.heads)),
    }


# The most steps the heatmaps, the timeline and the memory-edit figure draw at once. A head grid
# over 256 steps on the time axis is 8 x 272 x 256 cells; a longer series is drawn a stretch at
# a time (the page's "First of the 256 steps drawn" slider), with a thinned overview of the whole.
VIEW_STEPS = 256


def span_key(length: int) -> str:
    """The session-state key of the first step drawn of a series of `length` steps."""
    return f"span_{length}"


def drawn_span(length: int, first: int | None) -> tuple[int, int]:
    """(first, stop): the steps drawn of a series of `length` steps. All of a short one; of a
    long one VIEW_STEPS from `first` (None: the last VIEW_STEPS), kept inside the series."""
    if length <= VIEW_STEPS:
        return 0, length
    first = length - VIEW_STEPS if first is None else min(max(int(first), 0), length - VIEW_STEPS)
    return first, first + VIEW_STEPS


@dataclass(frozen=True)
class KnobChoice:
    """What the sidebar's knob widgets set: the knobs, the layer shown, the trained settings."""

    knobs: InferenceKnobs  # built once by `make_knobs`, passed whole down to the model
    layer: int  # the layer whose attention is shown; the knobs act on every layer
    trained: LARNNConfig  # the checkpoint's settings: window, heads, kv_activation, queue_size

    @property
    def heads_on(self) -> tuple[int, ...]:
        """The heads switched on, ascending."""
        mask = self.knobs.head_mask
        if mask is None:
            return tuple(range(self.trained.heads))
        return tuple(h for h, keep in enumerate(mask) if keep)

    @property
    def window(self) -> int:
        """The window k' in use (the trained one when the knobs leave it unset)."""
        return self.trained.window if self.knobs.window is None else self.knobs.window

    @property
    def kv_activation(self) -> str:
        """The activation on keys/values in use (the trained one when left unset)."""
        return self.knobs.kv_activation or self.trained.kv_activation

    @property
    def changed(self) -> bool:
        """Whether any knob differs from the trained settings."""
        return (
            self.window != self.trained.window
            or self.knobs.head_mask is not None
            or self.kv_activation != self.trained.kv_activation
            or self.knobs.hidden_steps is not None
        )


def sweep_windows(queue_size: int, trained: int, max_points: int = 12) -> list[int]:
    """Windows k' for the sweep: all of 1..queue_size if few, else a spread holding `trained`."""
    if queue_size <= max_points:
        return list(range(1, queue_size + 1))
    spread = np.unique(np.round(np.geomspace(1, queue_size, max_points - 1)).astype(int))
    return sorted({*spread.tolist(), trained, queue_size})


def sweep_sample(n: int, size: int, seed: int = 0) -> np.ndarray:
    """A fixed random sample of `size` of n indices (all when n <= size), ascending."""
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))


# --- an example file for the series upload -------------------------------------------------


def example_csv(X: np.ndarray, channel_names: Sequence[str]) -> bytes:
    """A wide CSV of one (T, C) series with a time column: what the series upload reads."""
    frame = pd.DataFrame(np.asarray(X), columns=list(channel_names))
    frame.insert(0, "time", np.arange(len(frame)))
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, float_format="%.6g")
    return buffer.getvalue().encode()


# --- the data a page shows -----------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class DataView:
    """The sequences on the page: a split of a dataset, or a user's uploaded series.

    X: (N, T, C) raw, right-padded where series differ in length; lengths: (N,) real
    steps of each, None when all have T. labels, class_names, relevant_steps: None for
    uploads (no labels). key: identifies the data in caches; case_names: names to pick cases
    by (uploads).
    """

    X: np.ndarray
    labels: np.ndarray | None
    class_names: tuple[str, ...] | None
    channel_names: tuple[str, ...]
    channel_units: tuple[str, ...]
    relevant_steps: np.ndarray | None
    dataset_id: str | None
    key: str
    description: str  # a sentence for the page: what, how many, how long
    name: str  # a few words for titles: "UCI HAR (smartphone activity), test split"
    case_names: tuple[str, ...] | None = None
    lengths: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.X)

    def sequence(self, index: int) -> np.ndarray:
        """Sequence `index` without its padding: (T_i, C)."""
        end = None if self.lengths is None else int(self.lengths[index])
        return self.X[index, :end]

    def sample_lengths(self, indices: np.ndarray) -> np.ndarray | None:
        """The real lengths of sequences `indices`, or None where no series is padded."""
        return None if self.lengths is None else self.lengths[indices]

    @property
    def length(self) -> int:
        return int(self.X.shape[1])

    def sequence_name(self, index: int) -> str:
        """'UCI HAR (smartphone activity), test split, sequence #12' (uploads: 'case ...')."""
        if self.case_names is not None:
            return f"{self.name}, case {self.case_names[index]}"
        return f"{self.name}, sequence #{index}"


def split_view(task: Task, split: str, split_json: str, origin: str) -> DataView:
    """One split of a dataset as the page shows it; split_json and origin say which split
    definition built `task` and where it came from (see `split_definition`)."""
    part = task.part(split)
    return DataView(
        X=part.X,
        labels=part.y,
        class_names=tuple(part.class_names),
        channel_names=tuple(part.channel_names),
        channel_units=tuple(task.channel_units),
        relevant_steps=part.relevant_steps,
        dataset_id=task.dataset_id,
        lengths=part.lengths if part.is_ragged else None,
        key=f"{task.dataset_id}|{split}|{split_json}",
        name=f"{dataset_label(task.dataset_id)}, {SPLIT_LABELS[split]} split",
        description=(
            f"{dataset_label(task.dataset_id)}, {SPLIT_LABELS[split]} split: {len(part)} "
            f"sequences of {part.X.shape[1]} steps, {part.X.shape[2]} channels "
            f"(split {origin})."
        ),
    )


def upload_view(
    series: UserSeries, file_name: str, digest: str, channel_units: Sequence[str]
) -> DataView:
    """A user's uploaded series as the page shows it, read for a model's channels (the
    series' own names) in that model's units; `digest` (of the file) keys it in caches."""
    n, length, _ = series.X.shape
    return DataView(
        X=series.X,
        labels=None,
        class_names=None,
        channel_names=tuple(series.channel_names),
        channel_units=tuple(channel_units),
        relevant_steps=None,
        dataset_id=None,
        key=f"upload|{digest}",
        description=f"Uploaded {file_name}: {n} case(s) of {length} steps.",
        name=f"uploaded {file_name}",
        case_names=tuple(series.case_ids),
    )


def split_definition(dataset_id: str, recorded: Sequence[tuple[str, dict]]) -> tuple[dict, str]:
    """The split to rebuild: the first checkpoint's recorded one for this dataset, else default.

    recorded: (checkpoint name, metadata) pairs, LARNN first. Returns (definition, where from).
    """
    for name, metadata in recorded:
        if metadata.get("dataset_id") == dataset_id and isinstance(metadata.get("split"), dict):
            return metadata["split"], f"as recorded in checkpoint {name}"
    return make_split(dataset_id), "the default split (no checkpoint here records one)"


def metrics_table(metrics: dict) -> pd.DataFrame:
    """Recorded metrics as rows per split: accuracy and macro-F1 (missing values left empty)."""
    rows = [
        {
            "split": SPLIT_LABELS.get(split, split),
            "accuracy": values.get("accuracy"),
            "macro-F1": values.get("macro_f1"),
        }
        for split, values in metrics.items()
        if isinstance(values, dict)
    ]
    return pd.DataFrame(rows, columns=["split", "accuracy", "macro-F1"])


def example_series(normalizer: dict, length: int = 64, seed: int = 0) -> np.ndarray:
    """A (T, C) random series at a model's typical scale (its normaliser's mean and std)."""
    mean = np.asarray(normalizer["mean"], dtype=np.float64)
    std = np.asarray(normalizer["std"], dtype=np.float64)
    noise = np.random.default_rng(seed).normal(size=(length, len(mean)))
    return (mean + std * noise).astype(np.float32)


def series_preview(X: np.ndarray, channel_names: Sequence[str], rows: int = 50) -> pd.DataFrame:
    """The first `rows` steps of one (T, C) series as a table with a step column."""
    frame = pd.DataFrame(np.asarray(X)[:rows], columns=list(channel_names))
    frame.insert(0, "step", np.arange(len(frame)))
    return frame
