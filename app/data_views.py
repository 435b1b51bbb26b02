"""The data a page shows, as one `DataView`: a split of a dataset or an uploaded series (pure)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from app.catalog import SPLIT_LABELS, dataset_label
from app.uploads import names_every_channel
from app.values import DataView
from larnn.data import UserSeries
from larnn.tasks import Task, make_split


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
            f"sequences of {steps_text(part.series_lengths)} steps, {part.X.shape[2]} channels "
            f"({source_text(task.split, split)}split {origin})."
        ),
    )


def steps_text(lengths: np.ndarray) -> str:
    """'324', or '37–324' where the sequences' lengths differ."""
    low, high = int(lengths.min()), int(lengths.max())
    return str(high) if low == high else f"{low}–{high}"


def source_text(definition: dict, split: str) -> str:
    """Which labelled file a split's sequences come from, 'from X_TEST.ts; ' or 'held out of
    X_TRAIN.ts; ' (a file task's definition records them); '' for other datasets."""
    files = definition.get("files")
    if not isinstance(files, dict) or "train" not in files:
        return ""
    train = files["train"].get("name", "the train file")
    if split != "test":
        return f"from {train}; "
    if files.get("test"):
        return f"from {files['test'].get('name', 'the test file')}; "
    return f"held out of {train}, never trained on; "


def upload_view(
    series: UserSeries,
    file_channels: Sequence[str],
    file_name: str,
    digest: str,
    channel_units: Sequence[str],
) -> DataView:
    """A user's uploaded series as the page shows it, read for a model's channels in that
    model's units; `digest` (of the file) keys it in caches. Its channels keep the file's
    names (`file_channels`, the file read on its own) where the file was read by position,
    so that the page can say when they are not the model's."""
    n, length, _ = series.X.shape
    return DataView(
        X=series.X,
        labels=None,
        class_names=None,
        channel_names=upload_channels(series.channel_names, file_channels),
        channel_units=tuple(channel_units),
        relevant_steps=None,
        dataset_id=None,
        key=f"upload|{digest}",
        description=f"Uploaded {file_name}: {n} case(s) of {length} steps.",
        name=f"uploaded {file_name}",
        case_names=tuple(series.case_ids),
    )


def upload_channels(model_channels: Sequence[str], file_channels: Sequence[str]) -> tuple:
    """The channels of an upload read for a model: the model's names where the file names
    every one of them (matched by name), else the file's own, in order (matched by position:
    a file read by position has as many value columns as the model has channels)."""
    if names_every_channel(file_channels, model_channels):
        return tuple(model_channels)
    return tuple(file_channels)


def split_definition(dataset_id: str, recorded: Sequence[tuple[str, dict]]) -> tuple[dict, str]:
    """The split to rebuild: the first checkpoint's recorded one for this dataset, else default.

    recorded: (checkpoint name, metadata) pairs, LARNN first. Returns (definition, where from).
    """
    for name, metadata in recorded:
        if metadata.get("dataset_id") == dataset_id and isinstance(metadata.get("split"), dict):
            return metadata["split"], f"as recorded in checkpoint {name}"
    return make_split(dataset_id), "the default split (no checkpoint here records one)"
