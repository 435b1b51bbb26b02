"""The "Train on my data" page's pure parts: the uploads' limits and summary, the progress
words and curves of a training job, and the explorer's widget values that open the result.

Streamlit-free: the page (app/pages/train_on_my_data.py) lays these out; tests call them.
"""

from __future__ import annotations

import json
import time
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
from larnn.jobs import ARCHITECTURES, KEEP_FRESH_S, KEEP_UPLOADS, JobSpec, JobStatus
from larnn.protocol import DataShape, plan
from larnn.tasks import FILE_PREFIX, held_out_test

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
UNLEARNED = "Done, but a model did not learn"  # the title's word when a verdict says so


# What the page says of the files it keeps (larnn.jobs, "uploads kept"); {folder}: where.
KEPT_UPLOADS_NOTE = (
    "Files are kept in `{folder}` so that you can pick them again after a reload: every "
    "file a saved model was trained on (the explorer rebuilds its test split from it), the "
    f"running job's, and the {KEEP_UPLOADS} newest others (any from the last "
    f"{KEEP_FRESH_S / 3600:g} hour too); older ones are removed as new ones arrive. A file "
    "the page refuses is removed at once."
)


def upload_label(path: Path) -> str:
    """'mine.npz (12.3 kB, uploaded 2026-12-03 09:28)': a kept upload in the picker."""
    stat = Path(path).stat() if Path(path).exists() else None
    if stat is None:
        return f"{Path(path).name} (removed)"
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(Path(path).parent.stat().st_mtime))
    return f"{Path(path).name} ({stat.st_size / 1000:.1f} kB, uploaded {when})"


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
    max_length: int  # of the train file's cases
    classes: pd.DataFrame  # class, train (cases), test (cases; the file's, if there is one)
    groups: int | None  # groups (e.g. subjects) in the train file, None when it names none

    @property
    def untested_note(self) -> str | None:
        """The warning over classes that no test case will score (a class with one case in
        a train file without a test file: the hold-out leaves it to training), else None."""
        rows = self.classes[(self.classes["train"] > 0) & (self.classes["test"] == 0)]
        if rows.empty:
            return None
        said = ", ".join(
            f"{r['class']!r} ({r['train']} case{'s' * (r['train'] > 1)})"
            for _, r in rows.iterrows()
        )
        where = self.test_name or "the held-out test part"
        return (
            f"No test case of the class(es) {said}: {where} holds none, so the models train on "
            "them but no score says whether they know them (the test accuracy is over the "
            "other classes only), and a single case is in at most one validation fold. Add "
            "cases of these classes, or leave them out of the file."
        )

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
            f"Validation: the training cases are split into folds, {by}; each fold trains "
            "every epoch; the latest epoch count whose mean validation accuracy is within a "
            "standard error of the best is chosen, and each model is refit on all training "
            "cases for that many epochs."
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
    else:  # the cases the hold-out takes (larnn.tasks: a fifth, by group or by class)
        held_out = held_out_test(
            train_set.y, train_set.groups if train.groups is not None else None
        )
        test_counts = np.bincount(train_set.y[held_out], minlength=len(names))
        test_cases = len(held_out)
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
        max_length=int(train.lengths.max()),
        classes=classes,
        groups=None if train.groups is None else len(set(train.groups.tolist())),
    )


def plan_note(summary: DataSummary, spec: JobSpec) -> str:
    """What the default protocol will do with this data, in a sentence or two."""
    cases = summary.train_cases - (0 if summary.test_name else summary.test_cases)
    shape = DataShape(cases, summary.max_length)
    planned = plan(spec.train_config("larnn"), shape, {"readout", "lr"})
    patch = planned.stem["patch"]
    step = "one cell step per sample" if patch == 1 else f"one cell step per {patch} samples"
    if planned.stem.get("residual"):
        step += " (the head reads the encoder's output plus the stem's)"
    return (
        f"Chosen from the data: a convolutional stem with {step}; {planned.folds} validation "
        f"folds of up to {planned.epochs} epochs each (batches of {planned.batch_size}) choose "
        f"the epoch count, then each model is refit on every training case. At most "
        f"{spec.budget_s:.0f} s per model, {spec.seeds} pair(s): about "
        f"{2 * spec.seeds * spec.budget_s / 60:.0f} min at most."
    )


def progress_line(status: JobStatus) -> str:
    """'LARNN (seed 1 of 2): fold 2/5, epoch 12 of 80, ...' (running), or how it ended; a
    model that did not learn is named, never hidden behind "Done"."""
    if status.state == "done":
        names = ", ".join(status.all_checkpoints or status.checkpoints.values())
        unlearned = status.unlearned
        if unlearned:
            said = "; ".join(f"{name} {reason}" for name, reason in unlearned.items())
            return f"{UNLEARNED}: {said}. Saved: {names}."
        return f"Done: {names} are saved and listed in the explorer."
    if status.state == "cancelled":
        return "Cancelled: nothing was saved."
    if status.state == "failed":
        return f"Failed: {status.message}"
    model = status.model or ARCHITECTURES[0]
    rows = [r for r in status.history if r.model == model]
    if not rows:
        return f"{NAMES[model]}: starting (MiniRocket's reference first) ..."
    last = rows[-1]
    score = (
        f"training-set accuracy {100 * last.val_accuracy:.1f}%"
        if last.stage == "refit"
        else f"validation accuracy {100 * last.val_accuracy:.1f}%"
    )
    return (
        f"{NAMES[model]} (seed {last.seed}): {last.stage}, epoch {last.epoch} of {last.epochs}, "
        f"training loss {last.loss:.3f}, {score}"
    )


def curves_figure(status: JobStatus) -> go.Figure:
    """Training loss and validation accuracy per epoch of each fold, both models (seed 0)."""
    figure = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=("Training loss (cross-entropy)", "Validation accuracy of each fold"),
        horizontal_spacing=0.1,
    )
    for architecture in ARCHITECTURES:
        rows = [r for r in status.history if r.model == architecture and r.seed == 0]
        stages = list(dict.fromkeys(r.stage for r in rows))
        for index, stage in enumerate(stages):
            part = [r for r in rows if r.stage == stage]
            epochs = [r.epoch for r in part]
            name = NAMES[architecture]
            style = {"color": COLOURS[architecture], "dash": "dot" if stage == "refit" else None}
            common = {"name": name, "legendgroup": name, "line": style, "hovertext": stage}
            figure.add_trace(
                go.Scatter(x=epochs, y=[r.loss for r in part], showlegend=index == 0, **common),
                row=1,
                col=1,
            )
            if stage != "refit":  # a refit has no validation part
                figure.add_trace(
                    go.Scatter(
                        x=epochs, y=[r.val_accuracy for r in part], showlegend=False, **common
                    ),
                    row=1,
                    col=2,
                )
    longest = max((r.epochs for r in status.history), default=1)
    figure.update_xaxes(
        title_text="epoch (of each fold; dotted: the refit)", range=[0, longest + 0.5]
    )
    figure.update_yaxes(rangemode="tozero", row=1, col=1)
    figure.update_yaxes(range=[0, 1.02], tickformat=".0%", row=1, col=2)
    word = (
        UNLEARNED
        if status.state == "done" and status.unlearned
        else STATE_WORDS.get(status.state, status.state)
    )
    figure.update_layout(
        height=320,
        margin={"l": 50, "r": 20, "t": 60, "b": 40},
        title={"text": f"{word}: {status.dataset_id}"},
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


def results_table(folders: list[Path]) -> pd.DataFrame:
    """Each finished checkpoint, from its metadata.json: test accuracy, whether it learned,
    how its epochs were chosen, MiniRocket's score and the majority class's on the same test
    part."""
    rows = []
    for folder in folders:
        try:
            metadata = json.loads((Path(folder) / METADATA_FILE).read_text())
        except (OSError, ValueError):
            continue
        metrics = metadata.get("metrics", {})
        train_config = metadata.get("train_config", {})
        learning = metrics.get("learning", {})
        rows.append(
            {
                "model": NAMES.get(train_config.get("architecture"), "?"),
                "seed": metadata.get("seed"),
                "test accuracy": metrics.get("test", {}).get("accuracy"),
                "learned": "yes"
                if learning.get("learned")
                else "NO: " + learning.get("reason", "not judged"),
                "epochs (how chosen)": train_config.get("choices", {}).get("epochs", ""),
                "MiniRocket": metrics.get("reference", {}).get("accuracy"),
                "majority class": metrics.get("majority", {}).get("accuracy"),
                "seconds": metadata.get("training_seconds"),
                "checkpoint": Path(folder).name,
            }
        )
    return pd.DataFrame(rows)
