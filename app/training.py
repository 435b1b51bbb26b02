"""The "Train on my data" page's pure parts: the uploads' limits and summary, the progress
words and curves of a training job, and the explorer's widget values that open the result.

Streamlit-free: the page (app/pages/train_on_my_data.py) lays these out; tests call them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from larnn.checkpoint import METADATA_FILE
from larnn.data.labelled import (
    FORMATS,
    FileLimits,
    LabelledFile,
    describe_lengths,
    labelled_datasets,
    read_labelled,
)
from larnn.jobs import ARCHITECTURES, PRESETS, JobStatus
from larnn.tasks import FILE_PREFIX

# What the page reads: Streamlit's own cap (.streamlit/config.toml, 50 MB) on bytes, and caps
# on cases and steps that keep the padded (N, T, C) array and an epoch's time in reason.
UPLOAD_LIMITS = FileLimits(max_bytes=50_000_000, max_cases=50_000, max_length=10_000)
UPLOAD_TYPES = [suffix.lstrip(".") for suffix in FORMATS]  # ["ts", "csv", "npz"]
NAMES = {"larnn": "LARNN", "lstm": "LSTM"}
COLOURS = {"larnn": "#1f77b4", "lstm": "#ff7f0e"}
STATE_WORDS = {
    "running": "Training",
    "done": "Done",
    "cancelled": "Cancelled",
    "failed": "Failed",
}


def read_upload(path: Path) -> LabelledFile:
    """An uploaded labelled file, read within the page's limits (DataError for people)."""
    return read_labelled(path, UPLOAD_LIMITS)


@dataclass(frozen=True)
class DataSummary:
    """What the page says about the uploaded files before training."""

    train_name: str
    test_name: str | None  # None: the test part is a fifth held out of the train file
    train_cases: int
    test_cases: int  # in the test file, or held out of the train file
    channels: tuple[str, ...]
    lengths: str  # "100" or "7..26"
    mean_length: float  # of the train file's cases
    classes: pd.DataFrame  # class, train (cases), test (cases; the file's, if there is one)
    groups: int | None  # groups (e.g. subjects) in the train file, None when it names none

    @property
    def test_note(self) -> str:
        if self.test_name is None:
            return (
                f"No test file: a fifth of {self.train_name} ({self.test_cases} cases, "
                "stratified by class) is held out and scored once at the end."
            )
        return f"{self.test_name} is scored once, at the end; it never picks the model."

    @property
    def validation_note(self) -> str:
        by = f"whole groups ({self.groups} in the file)" if self.groups else "stratified by class"
        return (
            f"Validation: a fifth of the remaining training cases, {by}; each model is kept "
            "at its epoch with the best validation accuracy."
        )


def summarise(train: LabelledFile, test: LabelledFile | None) -> DataSummary:
    """Cases, classes with counts, channels and lengths; DataError where the two files do not
    fit together (other channels, a class only in the test file, a single class)."""
    train_set, test_set = labelled_datasets(train, test, FILE_PREFIX + train.name)
    names = list(train_set.class_names)
    train_counts = np.bincount(train_set.y, minlength=len(names))
    if test_set is not None:
        test_counts = np.bincount(test_set.y, minlength=len(names))
        test_cases = len(test_set)
    else:  # about a fifth of each class, as the stratified hold-out takes it
        test_counts = np.round(train_counts * 0.2).astype(int)
        test_cases = int(test_counts.sum())
    classes = pd.DataFrame(
        {"class": names, "train": train_counts.astype(int), "test": test_counts.astype(int)}
    )
    lengths = train.lengths if test is None else np.concatenate([train.lengths, test.lengths])
    return DataSummary(
        train_name=train.name,
        test_name=None if test is None else test.name,
        train_cases=len(train_set),
        test_cases=test_cases,
        channels=tuple(train.channel_names),
        lengths=describe_lengths(lengths),
        mean_length=float(train.lengths.mean()),
        classes=classes,
        groups=None if train.groups is None else len(set(train.groups.tolist())),
    )


def progress_line(status: JobStatus) -> str:
    """'LARNN: epoch 12 of 80, validation accuracy 87.5%' (running), or how it ended."""
    if status.state == "done":
        names = " and ".join(status.checkpoints.values())
        return f"Done: {names} are saved and listed in the explorer."
    if status.state == "cancelled":
        return "Cancelled: nothing was saved."
    if status.state == "failed":
        return f"Failed: {status.message}"
    model = status.model or ARCHITECTURES[0]
    rows = [r for r in status.history if r.model == model]
    step = f"{ARCHITECTURES.index(model) + 1} of {len(ARCHITECTURES)}"
    if not rows:
        return f"{NAMES[model]} (model {step}): starting ..."
    last = rows[-1]
    return (
        f"{NAMES[model]} (model {step}): epoch {last.epoch} of {status.epochs}, training loss "
        f"{last.loss:.3f}, validation accuracy {100 * last.val_accuracy:.1f}%"
    )


def curves_figure(status: JobStatus) -> go.Figure:
    """Training loss and validation accuracy per epoch, both models."""
    figure = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=("Training loss (cross-entropy)", "Validation accuracy"),
        horizontal_spacing=0.1,
    )
    for architecture in ARCHITECTURES:
        rows = [r for r in status.history if r.model == architecture]
        if not rows:
            continue
        epochs = [r.epoch for r in rows]
        style = {"color": COLOURS[architecture]}
        name = NAMES[architecture]
        figure.add_trace(
            go.Scatter(x=epochs, y=[r.loss for r in rows], name=name, line=style, legendgroup=name),
            row=1,
            col=1,
        )
        figure.add_trace(
            go.Scatter(
                x=epochs,
                y=[r.val_accuracy for r in rows],
                name=name,
                line=style,
                legendgroup=name,
                showlegend=False,
            ),
            row=1,
            col=2,
        )
    figure.update_xaxes(title_text="epoch", range=[0, max(status.epochs, 1) + 0.5])
    figure.update_yaxes(rangemode="tozero", row=1, col=1)
    figure.update_yaxes(range=[0, 1.02], tickformat=".0%", row=1, col=2)
    figure.update_layout(
        height=320,
        margin={"l": 50, "r": 20, "t": 60, "b": 40},
        title={"text": f"{STATE_WORDS.get(status.state, status.state)}: {status.dataset_id}"},
        legend={"orientation": "h", "y": 1.22, "x": 1, "xanchor": "right"},
    )
    return figure


def explorer_state(status: JobStatus) -> dict[str, str]:
    """The explorer's widget values (app/main.py's keys) that show a finished job's pair on
    its data's test split."""
    dataset = status.dataset_id
    state = {"dataset": dataset, "split": "test"}
    for architecture, name in status.checkpoints.items():
        state[f"model_{architecture}_{dataset}"] = name
    return state


def preset_label(name: str) -> str:
    """'tiny: 16 units x 1 layer (LARNN: 2 heads, window 8)'."""
    larnn = PRESETS[name]["larnn"]
    layers = larnn["num_layers"]
    return (
        f"{name}: {larnn['hidden_size']} units x {layers} layer{'s' if layers > 1 else ''} "
        f"(LARNN: {larnn['heads']} heads, window {larnn['window']})"
    )


def results_table(folders: dict[str, Path]) -> pd.DataFrame:
    """Validation and test accuracy of each finished checkpoint, from its metadata.json."""
    rows = []
    for architecture, folder in folders.items():
        try:
            metadata = json.loads((Path(folder) / METADATA_FILE).read_text())
        except (OSError, ValueError):
            continue
        metrics = metadata.get("metrics", {})
        rows.append(
            {
                "model": NAMES.get(architecture, architecture),
                "checkpoint": Path(folder).name,
                "validation accuracy": metrics.get("val", {}).get("accuracy"),
                "test accuracy": metrics.get("test", {}).get("accuracy"),
                "best epoch": metadata.get("train_config", {}).get("best_epoch"),
                "seconds": metadata.get("training_seconds"),
            }
        )
    return pd.DataFrame(rows)
