"""The default protocol for a labelled file, the same from `larnn train --dataset PATH` and
from the app's training page.

1. Settings are read from the data (`plan`): a convolutional stem that gives the cell at most
   `TARGET_STEPS` steps (larnn.stem; pooled early on long series, and with a residual around
   the encoder), the batch size and epoch count from the number of cases, and what lifted
   UCI HAR (the mean readout, EMA weights, scale augmentation, a constant learning rate). A
   setting the user gave is kept. Each setting's reason is recorded in `TrainConfig.choices`,
   so the checkpoint says how every setting was chosen.
2. The epoch count is chosen over k validation folds of the training cases (stratified, or
   by group): each fold trains every epoch, and the latest count whose mean validation
   accuracy is within a standard error of the best wins (larnn.refit_epochs).
3. The model is refit on all training cases for that many epochs, and the test part is
   scored once.

A wall-clock budget caps the epochs: one epoch is timed first, and the folds and the refit
get at most the budget between them; folds that run slower than timed stop early.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from larnn.data import Normalizer, SequenceDataset
from larnn.errors import ConfigError
from larnn.evaluate import as_tensors, predict_logits
from larnn.metrics import ClassificationReport
from larnn.refit_epochs import choose_refit_epochs
from larnn.rocket import REFERENCE, reference_score
from larnn.tasks import Task, load_task
from larnn.train import (
    PaddedInputs,
    TrainConfig,
    check_trainable,
    train,
    train_epoch,
    with_overrides,
)
from larnn.verdict import LEARNING, Verdict, judge, majority_rate

TARGET_STEPS = 64  # the stem's patch gives the cell at most this many steps
LONG_PATCH, POOL = 8, 4  # patches of >= LONG_PATCH samples: the stem pools POOL after a layer
DEFAULT_BUDGET_S = 300.0  # per model: a LARNN and its LSTM in 10 minutes
TARGET_UPDATES = 1000  # optimiser steps of a fold's full run
MIN_FOLDS = 3  # where the budget is short, fewer folds before fewer epochs
BUDGET_SLACK = 0.1  # folds slower than timed stop where the run would end this far past it
GIVEN = "set by you"  # the reason recorded for a setting the user gave
MIN_EPOCHS, MAX_EPOCHS = 20, 300
MODELS = {
    # One layer over the stem's features; the LARNN's key/value settings are UCI HAR's
    # (configs/uci_har_larnn_asinh.json): no activation, layer norm (ragged-safe),
    # positional encoding of the lag.
    "larnn": {
        "hidden_size": 64,
        "num_layers": 1,
        "heads": 4,
        "kv_activation": "none",
        "kv_norm": "layer",
        "positional_encoding": True,
    },
    "lstm": {"hidden_size": 64, "num_layers": 1},
}


@dataclass(frozen=True)
class DataShape:
    """What the plan reads from a labelled file's training cases."""

    cases: int
    max_length: int

    @classmethod
    def of(cls, data: SequenceDataset) -> DataShape:
        return cls(len(data), int(data.series_lengths.max()))


def plan(config: TrainConfig, shape: DataShape, given: set[str] = frozenset()) -> TrainConfig:
    """`config` with every setting not in `given` chosen from `shape`, and the reason for each
    in `choices` ("model.window", "stem.patch" name nested fields)."""
    choices: dict[str, str] = {}
    settings: dict[str, Any] = {}

    def choose(name: str, value: Any, reason: str) -> None:
        if name in given:
            choices[name] = GIVEN
            return
        settings[name] = value
        choices[name] = reason

    if "stem.patch" in given:  # the user's patch, pooled only where POOL divides it
        patch = config.stem.get("patch", 1)
        pool = POOL if patch >= LONG_PATCH and patch % POOL == 0 else 1
    else:
        patch = max(1, math.ceil(shape.max_length / TARGET_STEPS))
        pool = POOL if patch >= LONG_PATCH else 1
        patch = pool * math.ceil(patch / pool)  # whole blocks of POOL samples per patch
    steps = math.ceil(shape.max_length / patch)
    choose(
        "stem.patch",
        patch,
        f"series of up to {shape.max_length} samples: one cell step per {patch} samples "
        f"({steps} steps at most; a stem step is the maximum of convolved features over its "
        "samples)",
    )
    if pool > 1:
        choose(
            "stem.pool",
            pool,
            f"patches of {patch} samples: the layers after the first step over blocks of "
            f"{pool} samples, {pool} times less work",
        )
    folds = 5 if shape.cases <= 1000 else 3
    choose("folds", folds, f"{shape.cases} training cases: {folds} validation folds")
    fit_cases = shape.cases * (folds - 1) // folds
    batch = 8 if fit_cases < 200 else 16 if fit_cases < 1000 else 32 if fit_cases < 5000 else 64
    choose("batch_size", batch, f"about {fit_cases} cases fit per fold: batches of {batch}")
    batches = math.ceil(fit_cases / batch)
    epochs = min(MAX_EPOCHS, max(MIN_EPOCHS, math.ceil(TARGET_UPDATES / batches)))
    choose(
        "epochs",
        epochs,
        f"at most {epochs} epochs ({batches} batches each, about {TARGET_UPDATES} updates); "
        "the refit's count is chosen on the folds",
    )
    for name, value in MODELS[config.architecture].items():
        choose(f"model.{name}", value, "the default size over the stem's features")
    hidden = {**MODELS[config.architecture], **config.model}["hidden_size"]
    choose("stem.width", hidden, f"{hidden} features per step, the encoder's hidden size")
    width = config.stem.get("width", hidden) if "stem.width" in given else hidden
    if width == hidden:
        choose(
            "stem.residual",
            True,
            "the head reads the encoder's output plus the stem's features: a recurrent encoder "
            "alone lost what their average holds (OSULeaf's train file, 5 folds: 0.82 -> 0.93)",
        )
    if config.architecture == "larnn":
        window = min(16, steps)
        choose("model.window", window, f"the last {window} cell states ({window * patch} samples)")
    choose("lr", 2e-3, "AdamW at 2e-3, the rate UCI HAR's models train at")
    choose("readout", "mean", "the mean of the hidden states: it lifted UCI HAR")
    choose("ema_decay", 0.99, "weights averaged over about 100 updates: it lifted UCI HAR")
    choose("schedule", "constant", "a constant rate: a fold's epoch e is the refit's epoch e")
    choose("augment.scale", 0.1, "each channel scaled by N(1, 0.1) per case: it lifted UCI HAR")
    planned = with_overrides(config, settings)
    return dataclasses.replace(planned, choices={**planned.choices, **choices})


@dataclass(frozen=True)
class ProtocolResult:
    checkpoint: Path  # the refit's
    test: ClassificationReport  # scored once
    epochs: int  # chosen on the folds
    fold_curves: list[list[float]]  # (k, E) validation accuracy per fold and epoch
    verdict: Verdict  # judged on the folds
    seconds: float  # wall time of the folds and the refit


def run_protocol(
    config: TrainConfig,
    out: Path,
    *,
    budget_s: float = DEFAULT_BUDGET_S,
    reference: dict | None = None,
    data_dir: Path | None = None,
    progress: bool = True,
    on_epoch: Callable[[str, int, dict[str, float]], None] | None = None,
) -> ProtocolResult:
    """Folds, then a refit, in `out`/fold_<j> and `out`/refit; the refit's checkpoint, copied
    to `out`/checkpoint, is the model. `config` is a planned one (`plan`) with `folds` >= 2.
    `reference`: a reference classifier's score to record beside it (`fit_reference`).
    `on_epoch(stage, epochs, row)` follows the progress: stage "fold 2/5" or "refit", its
    epoch count, and the epoch's history row (epoch, loss, val_accuracy, val_loss)."""
    if config.folds < 2:
        raise ConfigError(
            f"the protocol chooses epochs over folds: folds must be >= 2, got {config.folds}"
        )
    if budget_s <= 0:
        raise ConfigError(f"the budget must be a positive number of seconds, got {budget_s}")
    started = _clock()
    fold_task = load_task(config.dataset, config.split_definition(), data_dir)  # fold 0
    check_trainable(config, fold_task.train)  # e.g. batch norm asked for on ragged data
    seconds_per_epoch = time_one_epoch(config, fold_task)

    def affordable(folds: int) -> int:  # epochs per stage that k folds and a refit fit in
        return int(budget_s / (seconds_per_epoch * (folds + 1)))

    if affordable(config.folds) < config.epochs:
        # Before cutting, time a second epoch and keep the faster: one slowed by a passing
        # load (another job, a build of the compiled loops) cut ACSF1 to 1-3 epochs, a model
        # that did not learn, where an epoch took 1 s (docs/byod_study.md).
        seconds_per_epoch = min(seconds_per_epoch, time_one_epoch(config, fold_task))

    if (
        affordable(config.folds) < config.epochs
        and config.folds > MIN_FOLDS
        and config.choices.get("folds") != GIVEN
    ):  # fewer folds before fewer epochs: an undertrained curve chooses nothing well
        reason = f"{config.choices.get('folds', '')}; {MIN_FOLDS} to fit the budget"
        config = dataclasses.replace(
            config, folds=MIN_FOLDS, choices={**config.choices, "folds": reason}
        )
    cut = ""
    if affordable(config.folds) < config.epochs:
        epochs = max(1, affordable(config.folds))
        cut = (
            f"; cut to {epochs} by the budget of {budget_s:g} s (an epoch took about "
            f"{seconds_per_epoch:.2f} s)"
        )
        config = dataclasses.replace(config, epochs=epochs)
    runs = []
    for fold in range(config.folds):
        if fold >= MIN_FOLDS and _over_budget(_clock() - started, fold, config.folds, budget_s):
            # The folds ran slower than the timed epoch said (another job on the cores): choose
            # over the folds done rather than overrun (ACSF1 took 395 s of a 300 s budget).
            reason = f"{config.choices.get('folds', '')}; stopped after {fold}: the budget"
            config = dataclasses.replace(config, choices={**config.choices, "folds": reason})
            break
        stage = f"fold {fold + 1}/{config.folds}"
        fold_config = dataclasses.replace(config, fold=fold, patience=config.epochs)
        run = Path(out) / f"fold_{fold}"
        shutil.rmtree(run, ignore_errors=True)
        train(
            fold_config,
            run,
            data_dir=data_dir,
            progress=progress,
            on_epoch=_stage(on_epoch, stage, config.epochs, run),
        )
        runs.append(run)
    choice = choose_refit_epochs(runs, latest_within_error=True)
    verdict = _judge_folds(config, runs, data_dir)
    refit_config = dataclasses.replace(
        config,
        refit=True,
        epochs=choice.epochs,
        fold=0,
        choices={
            **config.choices,
            "epochs": f"{choice.epochs}: the latest count whose mean validation accuracy "
            f"over {len(runs)} folds ({choice.mean_val_accuracy[choice.epochs - 1]:.3f}) is "
            f"within a standard error ({choice.standard_error:.3f}) of the best "
            f"({choice.mean_val_accuracy[choice.best_epochs - 1]:.3f} at "
            f"{choice.best_epochs}), of {config.epochs} epochs each{cut}",
        },
    )
    refit_dir = Path(out) / "refit"
    shutil.rmtree(refit_dir, ignore_errors=True)
    extra = {LEARNING: verdict.to_dict()} | ({REFERENCE: reference} if reference else {})
    result = train(
        refit_config, refit_dir, data_dir=data_dir, progress=progress,
        on_epoch=_stage(on_epoch, "refit", choice.epochs, refit_dir), extra_metrics=extra,
    )  # fmt: skip
    final = Path(out) / "checkpoint"
    shutil.rmtree(final, ignore_errors=True)
    shutil.copytree(result.checkpoint, final)
    curves = [[row["val_accuracy"] for row in _history(run)] for run in runs]
    seconds = _clock() - started
    return ProtocolResult(final, result.test, choice.epochs, curves, verdict, seconds)


def _clock() -> float:
    return time.perf_counter()


def _over_budget(elapsed: float, done: int, folds: int, budget_s: float) -> bool:
    """Whether the folds left and a refit, at the pace of the `done` folds so far, would take
    the run more than BUDGET_SLACK past `budget_s` (the epochs were sized counting a refit as
    one more fold; loading and timing also took some of `elapsed`)."""
    per_fold = elapsed / done
    return elapsed + per_fold * (folds - done + 1) > budget_s * (1 + BUDGET_SLACK)


def _judge_folds(config: TrainConfig, runs: list[Path], data_dir: Path | None) -> Verdict:
    """Whether the configuration learned, over its folds' validation curves."""
    curves, majority, losses = [], [], []
    for fold, run in enumerate(runs):
        history = _history(run)
        fold_config = dataclasses.replace(config, fold=fold)
        task = load_task(config.dataset, fold_config.split_definition(), data_dir)
        curves.append([row["val_accuracy"] for row in history])
        majority.append(majority_rate(task.train.y, task.val.y))
        losses.append(history[-1]["loss"])
    return judge(curves, majority, losses, task.train.n_classes)


def fit_reference(config: TrainConfig, data_dir: Path | None = None) -> dict | None:
    """MiniRocket (larnn.rocket) on every training case of `config`'s data, scored on its test
    part: the same cases the refit trains and is tested on. None without aeon."""
    task = load_task(config.dataset, config.split_definition(), data_dir)
    return reference_score(task.train.concatenate(task.val), task.test, config.seed)


def _stage(on_epoch, stage: str, epochs: int, run: Path):
    """train()'s on_epoch for one stage: hands on the epoch's row, saved before the call."""
    if on_epoch is None:
        return None

    def follow(epoch: int, val_accuracy: float) -> None:
        progress = json.loads((run / "resume" / "progress.json").read_text())
        on_epoch(stage, epochs, progress["history"][-1])

    return follow


def _history(run: Path) -> list[dict[str, Any]]:
    return json.loads((run / "history.json").read_text())


def time_one_epoch(config: TrainConfig, task: Task) -> float:
    """Seconds one epoch of a fold takes: a training epoch of `config` on the fold's training
    part and a prediction over its validation part, timed on a fresh model after a warm-up
    batch (the run's own epochs also save their progress: milliseconds for these models)."""
    from larnn.classifier import SequenceClassifier

    torch.manual_seed(config.seed)
    model = SequenceClassifier(
        config.classifier_config(task.train.X.shape[2], task.train.n_classes)
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr)
    normalizer = Normalizer.fit(task.train.X, task.train.lengths)
    x, y, lengths = as_tensors(task.train, normalizer, "cpu")
    x_val, _, lengths_val = as_tensors(task.val, normalizer, "cpu")
    warm = min(len(y), config.batch_size)  # the first call loads or builds the compiled loops
    model(x[:warm], lengths[:warm]).logits.sum().backward()
    optimizer.zero_grad()
    began = time.perf_counter()
    train_epoch(model, optimizer, PaddedInputs(x, lengths), y, config, 0, False)
    predict_logits(model, x_val, lengths_val)
    return time.perf_counter() - began
