"""What the app reads from uploads (pure, no Streamlit): the limits an uploaded series meets,
which shipped checkpoints read an uploaded series, uploaded checkpoint files as a
`load_checkpoint` source, and the example file and preview of the series upload.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from app import catalog
from larnn.checkpoint import CHECKPOINT_FILES, DEFAULT_MAX_BYTES, WEIGHTS_FILE
from larnn.data import UserSeries, read_user_series
from larnn.errors import CheckpointError, DataError, LarnnError

# --- uploads: what the app reads, so what the uploaders let through; who reads a series -----------

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


# What the explorer's uploader takes: the series formats, and .ts only to say where it belongs.
SERIES_UPLOAD_TYPES = ["csv", "tsv", "npy", "npz", "ts"]
LABELLED_TS = (
    "{name} is a labelled .ts set (UEA/UCR): this page runs trained models on an unlabelled "
    "series (.csv, .tsv, .npy or .npz). To train a LARNN and its LSTM baseline on a labelled "
    "set, open the page **Train on my data** (in the page list at the top of the sidebar); "
    "the pair it trains then appears here with the file as a dataset."
)


def read_series(contents: bytes, file_name: str, channels: Sequence[str] | None) -> UserSeries:
    """An uploaded series file read for a model's `channels` (None: the file's own), within
    the upload limits above; DataError saying which limit or which row, column or key is
    wrong, and where a labelled .ts set belongs."""
    if Path(file_name).suffix.lower() == ".ts":
        raise DataError(LABELLED_TS.format(name=file_name))
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
    models: Sequence[catalog.ShippedModel], contents: bytes, file_name: str
) -> list[catalog.ShippedModel]:
    """The shipped models whose channels an uploaded series file can be read for (the series
    reader decides: by column names, else by their count): those whose channels the file
    names first (a model that only has as many channels is no better than a guess), then
    those trained on the default dataset; empty when none can. The file is read on its own
    first: its own faults (a cell that is no number, a cut-off row, too many steps) raise
    DataError, not a mismatch with some model's channels."""
    own = read_series(contents, file_name, None).channel_names
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
    return sorted(
        found,
        key=lambda m: (
            not names_every_channel(own, m.channel_names or ()),
            m.dataset_id != catalog.DEFAULT_DATASET,
        ),
    )


def names_every_channel(file_channels: Sequence[str], model_channels: Sequence[str]) -> bool:
    """Whether a file's own columns name every channel of a model (case-insensitive): the
    series reader then matches them by name, else (as many columns) only by position."""
    named = {c.casefold() for c in file_channels}
    return all(c.casefold() in named for c in model_channels)


# --- uploaded checkpoints -------------------------------------------------------------------------


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


# --- an example file for the series upload --------------------------------------------------------


def example_csv(X: np.ndarray, channel_names: Sequence[str]) -> bytes:
    """A wide CSV of one (T, C) series with a time column: what the series upload reads."""
    frame = pd.DataFrame(np.asarray(X), columns=list(channel_names))
    frame.insert(0, "time", np.arange(len(frame)))
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, float_format="%.6g")
    return buffer.getvalue().encode()


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
