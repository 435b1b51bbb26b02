"""Streamlit caches around the pure functions: models loaded once, results reused.

Checkpoints and datasets are cached with `st.cache_resource` (one shared, never-mutated
object per key); results with `st.cache_data`, keyed by everything they depend on: the
model's key (folder and modification time, or the upload's hash), the data's key, the
sequence itself and the knobs (an `InferenceKnobs`, hashed whole). An argument whose name
starts with `_` is not hashed: the key argument next to it stands for it.

Results that grow with a series' length (a 100,000-step inference holds 115 MB) live instead
in `RESULTS`, one `app.result_cache.ResultCache` for every session, bounded in bytes
($LARNN_APP_CACHE_MB, default 1024): `infer`, `attribution` and the uploaded `user_series`.
Same keys and the same promise, kept another way: a hit is the stored object itself, its
arrays read-only, instead of `st.cache_data`'s fresh copy.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st
import torch

from app.catalog import ShippedModel
from app.result_cache import ResultCache, budget_bytes, cached
from app.uploads import models_reading, read_series
from larnn import faithfulness, inference, jobs, split_attention
from larnn.checkpoint import (
    METADATA_FILE,
    WEIGHTS_FILE,
    Checkpoint,
    load_checkpoint,
    shipped_checkpoints,
)
from larnn.data import Normalizer, UserSeries
from larnn.data.uci_har import ENV_VAR as DATA_DIR_ENV
from larnn.faithfulness import ErasureCurve
from larnn.inference import (
    SequenceInference,
    infer_sequence,
    normalised_tensor,
    predict_probabilities,
)
from larnn.model import InferenceKnobs
from larnn.scan import compiled as compiled_scan
from larnn.split_attention import ChannelImportance, SplitAttention
from larnn.tasks import FILE_PREFIX, Task, load_task

CHECKPOINT_DIR_ENV = "LARNN_CHECKPOINT_DIR"  # a folder of checkpoint folders, for the pickers

# Per-step results of every session, least recently used out past $LARNN_APP_CACHE_MB.
RESULTS = ResultCache(budget_bytes())


def checkpoint_root() -> Path | None:
    """$LARNN_CHECKPOINT_DIR when set, else None (the repository's `checkpoints/`)."""
    value = os.environ.get(CHECKPOINT_DIR_ENV)
    return Path(value) if value else None


def shipped_folders() -> dict[str, Path]:
    """The pickers' checkpoints: the shipped ones (or $LARNN_CHECKPOINT_DIR's), then those
    trained on the "Train on my data" page (`larnn.jobs.checkpoints_dir()`), by name."""
    folders = shipped_checkpoints(checkpoint_root())
    for name, path in shipped_checkpoints(jobs.checkpoints_dir()).items():
        folders.setdefault(name, path)
    return folders


def trained_datasets() -> list[str]:
    """The labelled files ("file:NAME") that listed checkpoints were trained on, each once,
    for the dataset picker beside UCI HAR and the probes."""
    found: list[str] = []
    for path in shipped_folders().values():
        try:
            dataset_id = json.loads((path / METADATA_FILE).read_text()).get("dataset_id")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(dataset_id, str) and dataset_id.startswith(FILE_PREFIX):
            if dataset_id not in found:
                found.append(dataset_id)
    return found


def folder_key(path: Path) -> str:
    """A cache key that changes when the checkpoint is rewritten."""
    weights = Path(path) / WEIGHTS_FILE
    stamp = weights.stat().st_mtime_ns if weights.is_file() else 0
    return f"{Path(path).resolve()}@{stamp}"


@st.cache_resource(
    show_spinner="Building LARNN's compiled CPU loops (once per machine, about 15 s) ..."
)
def compiled_loops() -> str | None:
    """Builds the compiled scan before the first inference needs it; why not, if it failed."""
    if compiled_scan.enabled():
        return None
    return compiled_scan.build_error() or f"switched off by {compiled_scan.ENV_SWITCH}=0"


@st.cache_resource(show_spinner="Loading checkpoint ...", max_entries=16)
def load_shipped(key: str, path: str) -> Checkpoint:
    """The checkpoint in folder `path`; `key` (see `folder_key`) reloads it when rewritten."""
    return load_checkpoint(Path(path))


@st.cache_resource(show_spinner="Loading uploaded checkpoint ...", max_entries=8)
def load_uploaded(digest: str, _payload: bytes | dict[str, bytes]) -> Checkpoint:
    """An uploaded checkpoint, cached under the hash of its files."""
    return load_checkpoint(_payload)


@st.cache_resource(show_spinner="Building the dataset ...", max_entries=6)
def task(dataset_id: str, split_json: str, data_dir: str | None) -> Task:
    """A dataset's three parts; `data_dir` ($LARNN_DATA_DIR) is part of the key."""
    return load_task(dataset_id, json.loads(split_json), Path(data_dir) if data_dir else None)


def data_dir() -> str | None:
    return os.environ.get(DATA_DIR_ENV) or None


def normalizer(checkpoint: Checkpoint) -> Normalizer:
    return Normalizer.from_dict(checkpoint.metadata.normalizer)


@st.cache_data(show_spinner="Reading your series file ...", max_entries=16)
def series_readers(
    digest: str, _contents: bytes, file_name: str, shipped: tuple[ShippedModel, ...]
) -> list[ShippedModel]:
    """`models_reading` of an uploaded series file, cached under the hash of its contents."""
    return models_reading(shipped, _contents, file_name)


@cached(RESULTS)
def user_series(
    digest: str, _contents: bytes, file_name: str, channels: tuple[str, ...] | None
) -> UserSeries:
    """`uploads.read_series` of an uploaded series file for a model's `channels` (None: the
    file's own), cached under the hash of its contents (parsing a 9 MB CSV took seconds on
    every rerun). Read-only: its X is shared by every session that uploads the same file."""
    return read_series(_contents, file_name, channels)


@cached(RESULTS)
def infer(
    model_key: str, _checkpoint: Checkpoint, raw: np.ndarray, knobs: InferenceKnobs | None = None
) -> SequenceInference:
    """`infer_sequence` of one raw (T, C) sequence, cached per model, sequence (by content)
    and knobs, in `RESULTS`. The result is shared and read-only: never change it.

    knobs: the LARNN's knobs, whole (the frozen dataclass is hashed by value); None for the
    LSTM baseline or a LARNN as trained.
    """
    return infer_sequence(_checkpoint.model, raw, normalizer(_checkpoint), knobs)


@st.cache_data(show_spinner=False, max_entries=1024)
def probabilities_chunk(
    model_key: str,
    _checkpoint: Checkpoint,
    data_key: str,
    start: int,
    stop: int,
    _X: np.ndarray,
    _lengths: np.ndarray | None = None,
) -> np.ndarray:
    """Class probabilities of sequences start..stop of the data `data_key` names, as trained
    (each read at its last real step where `_lengths` says the series are padded)."""
    lengths = None if _lengths is None else _lengths[start:stop]
    return predict_probabilities(
        _checkpoint.model, _X[start:stop], normalizer(_checkpoint), lengths=lengths
    )


@st.cache_data(show_spinner="Running the window sweep ...", max_entries=64)
def window_sweep(
    model_key: str,
    _checkpoint: Checkpoint,
    data_key: str,
    _X: np.ndarray,
    _labels: np.ndarray,
    windows: tuple[int, ...],
    knobs: InferenceKnobs,
    _lengths: np.ndarray | None = None,
) -> pd.DataFrame:
    """`larnn.inference.window_sweep` on the labelled sequences `data_key` names."""
    return inference.window_sweep(
        _checkpoint.model, _X, _labels, normalizer(_checkpoint), windows, knobs, _lengths
    )


@st.cache_data(show_spinner=False, max_entries=64)
def accuracy(
    model_key: str,
    _checkpoint: Checkpoint,
    data_key: str,
    _X: np.ndarray,
    _labels: np.ndarray,
    _lengths: np.ndarray | None = None,
) -> float:
    """A model's accuracy as trained on the labelled sequences `data_key` names."""
    return inference.accuracy(
        _checkpoint.model, _X, _labels, normalizer(_checkpoint), lengths=_lengths
    )


# --- faithfulness tests (issue 13): as trained, keyed on the model and the sequence(s) ------------


@st.cache_data(show_spinner="Measuring the erasure curves ...", max_entries=256)
def erasure_curves(
    model_key: str, _checkpoint: Checkpoint, raw: np.ndarray, ns: tuple[int, ...]
) -> list[ErasureCurve]:
    """`larnn.faithfulness.erasure_curves` of raw (N, T, C) sequences, the model as trained."""
    x = normalised_tensor(raw, normalizer(_checkpoint))
    return faithfulness.erasure_curves(_checkpoint.model, x, ns)


@st.cache_data(show_spinner=False, max_entries=1024)
def erasure_chunk(
    model_key: str,
    _checkpoint: Checkpoint,
    data_key: str,
    indices: tuple[int, ...],
    _X: np.ndarray,
    ns: tuple[int, ...],
    _lengths: np.ndarray | None = None,
) -> list[ErasureCurve]:
    """The erasure curves of sequences `indices` of the data `data_key` names, as trained,
    each series at its own length where `_lengths` (of all the data's series) says so."""
    lengths = None if _lengths is None else _lengths[list(indices)]
    x = normalised_tensor(_X[list(indices)], normalizer(_checkpoint), lengths)
    ends = None if lengths is None else torch.as_tensor(lengths)
    return faithfulness.erasure_curves(_checkpoint.model, x, ns, lengths=ends)


@st.cache_data(show_spinner=False, max_entries=64)
def head_importance(
    model_key: str,
    _checkpoint: Checkpoint,
    data_key: str,
    _X: np.ndarray,
    _labels: np.ndarray,
    knobs: InferenceKnobs | None = None,
    _lengths: np.ndarray | None = None,
) -> pd.DataFrame:
    """`larnn.faithfulness.head_importance` on the labelled sequences `data_key` names (each
    read at its end where `_lengths` says they are padded), with the LARNN's `knobs`."""
    x = normalised_tensor(_X, normalizer(_checkpoint), _lengths)
    lengths = None if _lengths is None else torch.as_tensor(_lengths)
    return faithfulness.head_importance(
        _checkpoint.model, x, np.asarray(_labels), knobs, lengths=lengths
    )


@cached(RESULTS)
def attribution(model_key: str, _checkpoint: Checkpoint, raw: np.ndarray) -> np.ndarray:
    """(T, C) Integrated Gradients (Captum) of one raw (T, C) sequence for the class the
    model predicts, as trained; shared and read-only, in `RESULTS`."""
    x = normalised_tensor(raw, normalizer(_checkpoint))
    return faithfulness.attribution(_checkpoint.model, x, "integrated_gradients")[0].numpy()


# --- attention over the whole split (issue 29) ---------------------------------------------------

# Threads running its batches side by side, one a core (each on torch's single intra-op thread,
# app.main.TORCH_THREADS): on the 2-core machine UCI HAR's test split with the k = 16 LARNN took
# 0.85-0.9 s of LARNN passes instead of 1.6 s (benchmarks/README.md, "Attention over the split").
SPLIT_WORKERS = os.cpu_count() or 1


@st.cache_data(show_spinner=False, max_entries=64)
def split_attention_of(
    model_key: str,
    _checkpoint: Checkpoint,
    data_key: str,
    _X: np.ndarray,
    _labels: np.ndarray | None,
    knobs: InferenceKnobs,
    _lengths: np.ndarray | None = None,
) -> SplitAttention:
    """`larnn.split_attention.split_attention` of the sequences `data_key` names (labels in
    the model's class order, or None) with the LARNN's `knobs`."""
    return split_attention.split_attention(
        _checkpoint.model,
        _X,
        normalizer(_checkpoint),
        knobs,
        _labels,
        _lengths,
        workers=SPLIT_WORKERS,
    )


@st.cache_data(show_spinner=False, max_entries=1024)
def channel_importance_chunk(
    model_key: str,
    _checkpoint: Checkpoint,
    data_key: str,
    indices: tuple[int, ...],
    _X: np.ndarray,
    knobs: InferenceKnobs | None,
    _lengths: np.ndarray | None = None,
) -> ChannelImportance:
    """`larnn.split_attention.channel_importance` of sequences `indices` of the data
    `data_key` names (knobs: the LARNN's, None for the LSTM)."""
    rows = list(indices)
    lengths = None if _lengths is None else _lengths[rows]
    return split_attention.channel_importance(
        _checkpoint.model, _X[rows], normalizer(_checkpoint), knobs, lengths
    )
