"""Summaries over several runs: mean and standard deviation of the recorded metrics."""

from __future__ import annotations

import statistics
from pathlib import Path

from larnn.checkpoint import load_checkpoint
from larnn.errors import ConfigError


def summarize_runs(checkpoints: list[Path]) -> dict[str, float | int | str]:
    """Mean and sample std of test accuracy / macro-F1 (and validation accuracy) over runs.

    Every checkpoint must come from the same dataset and architecture; the numbers are the
    ones recorded at the end of training (the test split scored once per run).
    """
    if not checkpoints:
        raise ConfigError("summarize needs at least one checkpoint")
    loaded = [load_checkpoint(path) for path in checkpoints]
    kinds = {(c.metadata.dataset_id, c.architecture) for c in loaded}
    if len(kinds) != 1:
        raise ConfigError(f"runs mix datasets/architectures: {sorted(kinds)}")
    dataset_id, architecture = kinds.pop()
    row: dict[str, float | int | str] = {
        "dataset": dataset_id,
        "architecture": architecture,
        "runs": len(loaded),
        "seeds": ",".join(str(c.metadata.seed) for c in loaded),
    }
    for split, metric in (("test", "accuracy"), ("test", "macro_f1"), ("val", "accuracy")):
        if not all(split in c.metadata.metrics for c in loaded):
            continue  # refit runs train on the validation part and record no score for it
        values = [c.metadata.metrics[split][metric] for c in loaded]
        row[f"{split}_{metric}_mean"] = statistics.fmean(values)
        row[f"{split}_{metric}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
    row["training_minutes_mean"] = statistics.fmean(
        c.metadata.training_seconds / 60 for c in loaded
    )
    return row


def format_row(row: dict[str, float | int | str]) -> str:
    """One markdown table row: accuracy and macro-F1 in percent, mean +- std."""

    def pct(name: str) -> str:
        if name + "_mean" not in row:
            return "-"
        return f"{100 * row[name + '_mean']:.2f} ± {100 * row[name + '_std']:.2f}"

    return (
        f"| {row['architecture']} | {row['runs']} ({row['seeds']}) | {pct('test_accuracy')} "
        f"| {pct('test_macro_f1')} | {pct('val_accuracy')} | {row['training_minutes_mean']:.1f} |"
    )
