"""Evaluation: a model's predictions on a dataset, and a checkpoint scored on the split it names
(accuracy, macro-F1, per-class, confusion). Training validates and reports with the same
functions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from larnn.checkpoint import Checkpoint, load_checkpoint
from larnn.classifier import SequenceClassifier
from larnn.data import Normalizer, SequenceDataset
from larnn.metrics import ClassificationReport, classification_report
from larnn.tasks import load_task


def as_tensors(data: SequenceDataset, normalizer: Normalizer, device) -> tuple:
    """Normalised x (N, T, C) with padding left at zero, labels y (N,), lengths (N,)."""
    x = torch.from_numpy(normalizer.apply(data.X, data.lengths)).to(device)  # (N, T, C)
    lengths = torch.from_numpy(data.series_lengths).to(device)  # (N,)
    return x, torch.from_numpy(data.y).to(device), lengths


@torch.no_grad()
def predict_logits(
    model: SequenceClassifier,
    x: torch.Tensor,
    lengths: torch.Tensor | None = None,
    batch_size: int = 512,
) -> torch.Tensor:
    """Class logits (N, classes) on the CPU, each sequence read at its last real step, in eval
    mode."""
    model.eval()
    if lengths is None:
        lengths = torch.full((len(x),), x.shape[1], dtype=torch.int64, device=x.device)
    parts = [
        model(*cropped(chunk, chunk_lengths)).logits.cpu()
        for chunk, chunk_lengths in zip(x.split(batch_size), lengths.split(batch_size), strict=True)
    ]
    return torch.cat(parts)


def predict(
    model: SequenceClassifier,
    x: torch.Tensor,
    lengths: torch.Tensor | None = None,
    batch_size: int = 512,
) -> np.ndarray:
    """Predicted class per sequence, read at its last real step, in eval mode."""
    return predict_logits(model, x, lengths, batch_size).argmax(-1).numpy()


def cropped(x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch without the padded steps that no series in it reaches (causal: same outputs)."""
    return x[:, : int(lengths.max())], lengths  # (B, max length, C)


def evaluate_model(
    model: SequenceClassifier, data: SequenceDataset, normalizer: Normalizer
) -> ClassificationReport:
    device = next(model.parameters()).device
    x, _, lengths = as_tensors(data, normalizer, device)
    return classification_report(data.y, predict(model, x, lengths), data.class_names)


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
