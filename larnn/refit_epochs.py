"""How many epochs a refit should train: chosen on validation, over several held-out splits.

A single run's best epoch is picked on its own few validation subjects, so it is noisy: a
split whose accuracy peaks at epoch 2 keeps an undertrained model. Here the epoch count is
chosen on the mean validation curve of several runs of one configuration that differ only in
their seed (each seed holds out other subjects or cases: repeated holdout), then the model is
refit on training + validation for that many epochs (`larnn train --set refit=true`).

Every run must have trained all its epochs (patience >= epochs): an early-stopped curve lacks
exactly the late epochs it would be compared on.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shlex
import statistics
from dataclasses import dataclass
from pathlib import Path

from larnn.errors import ConfigError
from larnn.train import TrainConfig

# Fields the runs may differ in: the seed and the fold (they pick the split), and what cannot
# change a curve that covers every epoch (when to stop; where it ran).
NOT_COMPARED = {"seed": 0, "fold": 0, "patience": 1, "device": "auto"}


@dataclass(frozen=True)
class RefitChoice:
    epochs: int  # the chosen count (`choose_refit_epochs`'s rule)
    mean_val_accuracy: list[float]  # (E,) per epoch, over the runs
    mean_val_loss: list[float]  # (E,)
    runs: list[Path]
    seeds: list[int]  # (R,) one per run
    best_epochs: int  # the highest mean validation accuracy, ties to lower loss
    standard_error: float  # of the mean accuracy at best_epochs, over the runs

    def refit_command(self, seed: int, out: str) -> str:
        """The `larnn train` line that refits the configuration for the chosen epochs."""
        config = shlex.quote(str(self.runs[0] / "train_config.json"))
        return (
            f"larnn train --config {config} --set refit=true --set epochs={self.epochs} "
            f"--seed {seed} --out {shlex.quote(out)}"
        )


def _read_run(folder: Path) -> tuple[TrainConfig, list[tuple[float, float]]]:
    """A finished run's configuration and its (validation accuracy, loss) per epoch."""
    paths = [folder / "train_config.json", folder / "history.json"]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise ConfigError(f"{folder}: no {' or '.join(missing)}; is it a finished run folder?")
    config = TrainConfig.from_json(paths[0].read_text())
    try:
        rows = json.loads(paths[1].read_text())
        epochs = [int(row["epoch"]) for row in rows]
        curve = [(float(row["val_accuracy"]), float(row["val_loss"])) for row in rows]
    except (json.JSONDecodeError, TypeError, KeyError, ValueError) as error:
        raise ConfigError(f"{paths[1]}: not a training history ({error!r})") from None
    if config.refit:
        raise ConfigError(f"{folder}: a refit run trains on its validation part; it has no curve")
    if epochs != list(range(1, config.epochs + 1)):
        raise ConfigError(
            f"{folder}: trained {len(epochs)} of its {config.epochs} epochs (stopped early?); "
            f"rerun it with --set patience={config.epochs} so its curve covers every epoch"
        )
    return config, curve


def choose_refit_epochs(runs: list[Path], latest_within_error: bool = False) -> RefitChoice:
    """The epoch count with the best mean validation accuracy over `runs` (ties: lower loss);
    with `latest_within_error`, the latest count whose mean accuracy is within one standard
    error (over the runs, at the best count) of the best: on a plateau of noisy folds the best
    count is an early accident (docs/byod_study.md).

    The runs must share one configuration (but for NOT_COMPARED), and each hold out another
    split: another seed, or another fold of a k-fold.
    """
    if len(runs) < 2:
        raise ConfigError(f"choosing epochs over splits needs at least 2 runs, got {len(runs)}")
    runs = [Path(run) for run in runs]
    read = [_read_run(run) for run in runs]
    configs = [config for config, _ in read]
    seeds = [config.seed for config in configs]
    splits = [(config.seed, config.fold) for config in configs]
    if len(set(splits)) != len(splits):
        raise ConfigError(
            f"the runs repeat a seed and fold ({splits}): each must hold out another split"
        )
    first = dataclasses.replace(configs[0], **NOT_COMPARED)
    for run, config in zip(runs[1:], configs[1:], strict=True):
        other = dataclasses.replace(config, **NOT_COMPARED)
        if other != first:
            fields = [
                name for name in first.to_dict() if getattr(first, name) != getattr(other, name)
            ]
            raise ConfigError(f"{run} differs from {runs[0]} in more than its seed: {fields}")
    epochs = range(configs[0].epochs)
    mean_accuracy = [math.fsum(curve[e][0] for _, curve in read) / len(read) for e in epochs]
    mean_loss = [math.fsum(curve[e][1] for _, curve in read) / len(read) for e in epochs]
    best = max(epochs, key=lambda e: (mean_accuracy[e], -mean_loss[e]))
    at_best = [curve[best][0] for _, curve in read]  # (R,)
    error = statistics.stdev(at_best) / math.sqrt(len(at_best))
    chosen = best
    if latest_within_error:
        chosen = max(e for e in epochs if mean_accuracy[e] >= mean_accuracy[best] - error)
    return RefitChoice(chosen + 1, mean_accuracy, mean_loss, runs, seeds, best + 1, error)
