"""Evaluate a checkpoint on the split it names: accuracy, macro-F1, per-class, confusion."""

from __future__ import annotations

from pathlib import Path

from larnn.checkpoint import Checkpoint, load_checkpoint
from larnn.data import Normalizer
from larnn.metrics import ClassificationReport
from larnn.tasks import load_task
from larnn.train import evaluate_model


def evaluate_checkpoint(
    checkpoint: Checkpoint | Path | str, split: str = "test", data_dir: Path | None = None
) -> ClassificationReport:
    """Rebuild the checkpoint's task from its metadata and score the model on `split`."""
    if not isinstance(checkpoint, Checkpoint):
        checkpoint = load_checkpoint(checkpoint)
    meta = checkpoint.metadata
    task = load_task(meta.dataset_id, meta.split, data_dir)
    normalizer = Normalizer.from_dict(meta.normalizer)
    return evaluate_model(checkpoint.model, task.part(split), normalizer)
