"""What the pickers offer: the datasets and the checkpoint folders, described from their JSON.

Pure (no Streamlit): dataset names and labels, which shipped checkpoint was trained on what,
the default model of an architecture for a dataset, and a checkpoint's recorded metrics as a
table.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from larnn.checkpoint import CONFIG_FILE, METADATA_FILE
from larnn.tasks import FILE_PREFIX

# --- datasets -------------------------------------------------------------------------------------

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
CHOSEN = "explorer_chosen"  # session state: picker values another page chose, by widget key
# Other scores a checkpoint records (larnn.rocket, larnn.verdict), by the metrics table's row.
SCORE_LABELS = {"reference": "MiniRocket (test)", "majority": "most frequent class (test)"}


def dataset_label(dataset_id: str) -> str:
    """How the page names a dataset: 'UCI HAR (smartphone activity)'; a labelled file trained
    on as 'My data: BasicMotions (.ts)', its name without the _TRAIN its test split is not."""
    if dataset_id.startswith(FILE_PREFIX):
        name = Path(dataset_id.removeprefix(FILE_PREFIX))
        stem = re.sub(r"[_-]?train$", "", name.stem, flags=re.IGNORECASE) or name.stem
        return f"My data: {stem} ({name.suffix or 'file'})"
    return DATASET_LABELS.get(dataset_id, dataset_id)


def offered_datasets(shipped: Sequence[ShippedModel]) -> list[str]:
    """The datasets the picker offers: those a shipped checkpoint was trained on, so that no
    choice is a dead end, and always the default (the page's first screen) and the upload."""
    trained_on = {m.dataset_id for m in shipped}
    return [d for d in DATASET_LABELS if d in trained_on or d in (DEFAULT_DATASET, UPLOAD)]


# --- shipped checkpoints --------------------------------------------------------------------------


@dataclass(frozen=True)
class ShippedModel:
    """A checkpoint folder, described from its JSON files without loading the weights."""

    name: str
    path: Path
    architecture: str | None  # None when config.json cannot be read
    dataset_id: str | None  # None when metadata.json cannot be read
    channel_names: tuple[str, ...] | None = None  # None when metadata.json cannot be read
    record: str = ""  # its test accuracy, how it was chosen, whether it learned (`record`)
    created: str = ""  # when it was trained (ISO 8601, UTC), "" when not recorded

    @property
    def label(self) -> str:
        trained_on = dataset_label(self.dataset_id) if self.dataset_id else "unknown data"
        return f"{self.name} (trained on {trained_on}{'; ' if self.record else ''}{self.record})"


def record(metadata: dict) -> str:
    """'test 96.2%, refit 30 epochs chosen over 5 folds, trained 2026-12-03 09:28 UTC in
    298 s', with 'DID NOT LEARN' first where the checkpoint's verdict (larnn.verdict) says
    so; '' when nothing is recorded. Two pairs trained on one file differ here, not only in
    their names' time stamps."""
    metrics = metadata.get("metrics") if isinstance(metadata.get("metrics"), dict) else {}
    train_config = metadata.get("train_config")
    train_config = train_config if isinstance(train_config, dict) else {}
    words = []
    learning = metrics.get("learning")
    if isinstance(learning, dict) and learning.get("learned") is False:
        words.append("DID NOT LEARN")
    test = metrics.get("test")
    if isinstance(test, dict) and isinstance(test.get("accuracy"), (int, float)):
        words.append(f"test {100 * test['accuracy']:.1f}%")
    epochs, folds = train_config.get("epochs"), train_config.get("folds")
    if train_config.get("refit") and folds:
        words.append(f"refit {epochs} epochs chosen over {folds} folds")
    elif train_config.get("refit"):
        words.append(f"refit {epochs} epochs")
    elif isinstance(train_config.get("best_epoch"), int):
        words.append(f"epoch {train_config['best_epoch']} chosen on validation")
    created, seconds = metadata.get("created"), metadata.get("training_seconds")
    when = ""
    if isinstance(created, str) and len(created) >= 16:
        when = f"trained {created[:10]} {created[11:16]} UTC"
    if isinstance(seconds, (int, float)) and seconds > 0:
        when = f"{when or 'trained'} in {seconds:.0f} s"
    if when:
        words.append(when)
    return ", ".join(words)


def describe_shipped(folders: dict[str, Path]) -> list[ShippedModel]:
    """Architecture and training data of each checkpoint folder (unreadable fields -> None)."""
    return [
        ShippedModel(
            name,
            Path(path),
            _json_field(Path(path) / CONFIG_FILE, "architecture"),
            _json_field(Path(path) / METADATA_FILE, "dataset_id"),
            _json_strings(Path(path) / METADATA_FILE, "channel_names"),
            record(_json_object(Path(path) / METADATA_FILE)),
            _json_field(Path(path) / METADATA_FILE, "created") or "",
        )
        for name, path in folders.items()
    ]


def _json_object(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


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
    """The newest model of `architecture` trained on `dataset_id` (by its recorded time; the
    first listed among equals), else None."""
    found = [m for m in models if m.architecture == architecture and m.dataset_id == dataset_id]
    return max(found, key=lambda m: m.created, default=None)


def metrics_table(metrics: dict) -> pd.DataFrame:
    """Recorded metrics as rows per split: accuracy and macro-F1 (missing values left empty)."""
    rows = [
        {
            "split": SPLIT_LABELS.get(split) or SCORE_LABELS.get(split, split),
            "accuracy": values.get("accuracy"),
            "macro-F1": values.get("macro_f1"),
        }
        for split, values in metrics.items()
        if isinstance(values, dict) and "accuracy" in values
    ]
    return pd.DataFrame(rows, columns=["split", "accuracy", "macro-F1"])
