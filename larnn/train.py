"""Training: model selection on the validation split only, one final report on the test split.

A run folder holds `resume/` (weights, optimiser state, progress: rewritten atomically after
every epoch, so an interrupted run continues where it stopped), `best/` (the checkpoint with
the best validation accuracy so far, ties going to the lower validation loss) and, when the
run ends, `checkpoint/`: the best model with its validation and test metrics, the folder to
ship or to hand to `larnn evaluate`.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

import larnn
from larnn.baseline import LSTMConfig
from larnn.checkpoint import CheckpointMetadata, load_checkpoint, save_checkpoint
from larnn.classifier import READOUTS, ClassifierConfig, SequenceClassifier
from larnn.config_base import JsonConfig, require
from larnn.data import Normalizer, SequenceDataset
from larnn.data.augment import AugmentConfig, augment, vector_triples
from larnn.errors import ConfigError
from larnn.evaluate import as_tensors, cropped, evaluate_model, predict_logits
from larnn.input_features import check_asinh_scale
from larnn.metrics import ClassificationReport, classification_report
from larnn.model import LARNNConfig
from larnn.tasks import Task, load_task, make_split, untested_classes
from larnn.verdict import LEARNING, MAJORITY, Verdict, judge, majority_rate

DEFAULT_MODELS = {
    "larnn": {"hidden_size": 64, "num_layers": 2, "heads": 8, "window": 16},
    "lstm": {"hidden_size": 64, "num_layers": 2},
}


@dataclass(frozen=True)
class TrainConfig(JsonConfig):
    """Everything a training run depends on; saved in the checkpoint's metadata."""

    architecture: Literal["larnn", "lstm"] = "larnn"
    dataset: str = "uci_har"  # or "probe:<name>", or a labelled file's path (.ts, .csv, .npz)
    test: str | None = None  # a file dataset's separate test file (.ts: NAME_TEST.ts beside)
    model: dict = field(default_factory=dict)  # encoder fields but input_size; over DEFAULT_MODELS
    epochs: int = 40
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    optimizer: Literal["adamw", "adam"] = "adamw"
    schedule: Literal["cosine", "constant"] = "cosine"  # per epoch
    grad_clip: float = 1.0  # max gradient norm; 0 disables
    label_smoothing: float = 0.0  # cross-entropy against (1 - e) one-hot + e uniform
    readout: Literal["last", "mean"] = "last"  # what the head reads (ClassifierConfig.readout)
    asinh_scale: float = 0.0  # > 0: the encoder also reads asinh(x / scale); see input_features
    stem: dict = field(default_factory=dict)  # StemConfig fields (larnn.stem); {} = no stem
    # Exponential moving average of the weights, updated after every optimiser step with this
    # decay; the average is what is validated, selected and saved. 0 = off (the raw weights).
    ema_decay: float = 0.0
    augment: dict = field(default_factory=dict)  # AugmentConfig fields; {} = no augmentation
    refit: bool = False  # train on training + validation parts for exactly `epochs`, no selection
    # A labelled file's validation part: 0, a seeded `val_fraction` of the training cases; k >= 2,
    # fold `fold` of a seeded k-fold of them (stratified, or by group). See larnn.protocol.
    folds: int = 0
    fold: int = 0
    choices: dict = field(default_factory=dict)  # setting -> how it was chosen (larnn.protocol)
    patience: int = 10  # epochs without a better validation score (accuracy, then loss): stop
    seed: int = 0
    val_fraction: float = 0.2  # share of training subjects (UCI HAR), groups or cases held out
    probe_sizes: list = field(default_factory=lambda: [3000, 600, 1000])  # train, val, test
    probe_length: int = 64
    device: str = "auto"  # "auto": CUDA where present, else CPU

    def __post_init__(self) -> None:
        owner = "TrainConfig"
        for name in ("epochs", "batch_size", "patience", "probe_length"):
            value = getattr(self, name)
            require(isinstance(value, int) and value >= 1, owner, name, f"must be >= 1: {value!r}")
        require(self.lr > 0, owner, "lr", f"must be > 0, got {self.lr}")
        require(self.weight_decay >= 0, owner, "weight_decay", "must be >= 0")
        require(self.grad_clip >= 0, owner, "grad_clip", "must be >= 0")
        require(0 <= self.label_smoothing < 1, owner, "label_smoothing", "must be in [0, 1)")
        require(0 <= self.ema_decay < 1, owner, "ema_decay", "must be in [0, 1); 0 = off")
        require(self.readout in READOUTS, owner, "readout", f"one of {READOUTS}")
        require(
            self.folds == 0 or (self.folds >= 2 and 0 <= self.fold < self.folds),
            owner,
            "folds",
            f"must be 0 (a held-out fraction) or >= 2 with 0 <= fold < folds, got fold "
            f"{self.fold} of {self.folds}",
        )
        check_asinh_scale(self.asinh_scale, owner)
        self.augment_config()  # validates the augmentation fields now, not mid-run
        require(self.optimizer in ("adamw", "adam"), owner, "optimizer", "adamw or adam")
        require(self.schedule in ("cosine", "constant"), owner, "schedule", "cosine or constant")
        require(
            len(self.probe_sizes) == 3 and all(int(n) >= 1 for n in self.probe_sizes),
            owner,
            "probe_sizes",
            f"must be three sizes >= 1 (train, val, test), got {self.probe_sizes!r}",
        )
        require("input_size" not in self.model, owner, "model", "input_size comes from the data")
        self.encoder_config(channels=1)  # validates the model fields now, not mid-run

    def split_definition(self) -> dict[str, Any]:
        """How this run's data is split (see `larnn.tasks.make_split`)."""
        return make_split(
            self.dataset,
            seed=self.seed,
            val_fraction=self.val_fraction,
            probe_sizes=tuple(self.probe_sizes),
            probe_length=self.probe_length,
            test_file=self.test,
            folds=(self.folds, self.fold),
        )

    def augment_config(self) -> AugmentConfig:
        try:
            return AugmentConfig.from_dict(self.augment)
        except ConfigError as error:
            raise ConfigError(f"TrainConfig.augment: {error}") from None

    def classifier_config(self, channels: int, num_classes: int) -> ClassifierConfig:
        """The model for data of `channels` channels and `num_classes` classes."""
        fields = {**DEFAULT_MODELS[self.architecture], **self.model}
        try:
            return ClassifierConfig(
                self.architecture,
                fields,
                num_classes,
                channels,
                self.readout,
                self.asinh_scale,
                dict(self.stem),
            )
        except ConfigError as error:
            raise ConfigError(f"TrainConfig: {error}") from None

    def encoder_config(self, channels: int) -> LARNNConfig | LSTMConfig:
        """The encoder for data of `channels` channels."""
        return self.classifier_config(channels, num_classes=2).encoder_config()


@dataclass(frozen=True)
class TrainResult:
    checkpoint: Path
    val: ClassificationReport
    test: ClassificationReport
    epochs_run: int
    training_seconds: float


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def learning_rate(config: TrainConfig, epoch: int) -> float:
    if config.schedule == "constant":
        return config.lr
    return config.lr * 0.5 * (1 + math.cos(math.pi * epoch / config.epochs))


def describe_task(task: Task) -> str:
    """One line: cases per part, classes, channels, lengths; and a warning line naming the
    classes no test case scores, if any (`untested_classes`)."""
    lengths = np.concatenate([task.part(name).series_lengths for name in ("train", "val", "test")])
    low, high = int(lengths.min()), int(lengths.max())
    line = (
        f"{task.dataset_id}: {len(task.train)} train / {len(task.val)} validation / "
        f"{len(task.test)} test cases, {task.train.n_classes} classes, "
        f"{task.train.X.shape[2]} channels, {low if low == high else f'{low}..{high}'} steps"
    )
    untested = untested_classes(task)
    if untested:
        line += (
            f"\nwarning: no test case of class(es) {', '.join(map(repr, untested))}: trained on, "
            "never scored (a class with a single case stays in training); add cases of it, "
            "or leave it out"
        )
    return line


def check_trainable(config: TrainConfig, data: SequenceDataset) -> None:
    """Refuse, before any epoch, a run that the classifier would refuse in its first batch:
    series of different lengths with batch norm (see `SequenceClassifier`)."""
    if config.architecture != "larnn" or not data.is_ragged:
        return
    encoder = config.encoder_config(channels=data.X.shape[2])
    norms = {name: getattr(encoder, name) for name in ("kv_norm", "hidden_norm")}
    batch = [name for name, kind in norms.items() if kind == "batch"]
    if batch:
        lengths = data.series_lengths
        raise ConfigError(
            f"{data.dataset_id}: the training series have lengths {lengths.min()}.."
            f"{lengths.max()}, so batches are right-padded, and batch norm "
            f"(model.{' and model.'.join(batch)} = 'batch') would compute its statistics over "
            "padded steps too; choose 'layer' or 'none' instead, e.g. "
            + " ".join(f"--set model.{name}=layer" for name in batch)
        )


def train(
    config: TrainConfig,
    out_dir: Path,
    *,
    data_dir: Path | None = None,
    resume: bool = False,
    progress: bool = True,
    on_epoch: Callable[[int, float], None] | None = None,
    extra_metrics: dict[str, Any] | None = None,
) -> TrainResult:
    """Train, select on validation, test once; returns where the final checkpoint is.

    The checkpoint's metrics hold the validation and test reports, the majority-class rate on
    the test part and, for a run that selects on validation, whether the model learned
    (larnn.verdict); `extra_metrics` adds entries (a refit's verdict from its folds, a
    reference classifier's score).

    `on_epoch(epoch, val_accuracy)` is called after each epoch's validation, once the epoch is
    saved for resuming; an exception it raises (e.g. `optuna.TrialPruned`) ends the run there.

    With `config.refit` the model trains on the training and validation parts together for
    exactly `config.epochs` epochs (take them from a selected run's best epoch) and the last
    epoch is the model: nothing is selected, and no validation score is recorded (the
    validation part is training data); the test part is scored once, as always.
    """
    out_dir = Path(out_dir)
    resume_dir = out_dir / "resume"
    if not resume and resume_dir.exists():
        raise ConfigError(
            f"{out_dir} holds an earlier run: pass resume=True (--resume) or clear it"
        )
    if resume and (out_dir / "train_config.json").exists():
        saved = TrainConfig.from_json((out_dir / "train_config.json").read_text())
        if saved != config:
            raise ConfigError(f"{out_dir} was started with another configuration: {saved}")
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_text(out_dir / "train_config.json", config.to_json())

    device = resolve_device(config.device)
    task = load_task(config.dataset, config.split_definition(), data_dir)
    check_trainable(config, task.train)
    if progress:
        tqdm.write(describe_task(task))
    fit_part = task.train.concatenate(task.val) if config.refit else task.train
    normalizer = Normalizer.fit(fit_part.X, fit_part.lengths)
    x_train, y_train, lengths_train = as_tensors(fit_part, normalizer, device)
    x_val, _, lengths_val = as_tensors(task.val, normalizer, device)
    augmentation = Augmentation.build(config, fit_part, normalizer, device)
    y_val = torch.from_numpy(task.val.y)

    torch.manual_seed(config.seed)
    classifier = config.classifier_config(task.train.X.shape[2], task.train.n_classes)
    model = SequenceClassifier(classifier).to(device)
    optimizer_kind = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    optimizer = optimizer_kind(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    average = weight_average(model, config.ema_decay)
    validated = model if average is None else average.module  # what is scored and saved

    progress_state = {"epoch": 0, "best_accuracy": -1.0, "best_epoch": -1, "seconds": 0.0}
    progress_state["history"] = []
    if resume and resume_dir.exists():
        progress_state = _load_resume(resume_dir, model, optimizer, average)

    epoch = progress_state["epoch"]
    patience = config.epochs if config.refit else config.patience
    while epoch < config.epochs and epoch - progress_state["best_epoch"] <= patience:
        started = time.perf_counter()
        inputs = PaddedInputs(x_train, lengths_train, augmentation)
        loss = train_epoch(model, optimizer, inputs, y_train, config, epoch, progress, average)
        val_logits = predict_logits(validated, x_val, lengths_val)
        val_loss = F.cross_entropy(val_logits, y_val).item()
        val_predictions = val_logits.argmax(-1).numpy()
        val_report = classification_report(task.val.y, val_predictions, task.val.class_names)
        epoch += 1
        progress_state["seconds"] += time.perf_counter() - started
        row = {"epoch": epoch, "loss": loss, "val_accuracy": val_report.accuracy}
        progress_state["history"].append({**row, "val_loss": val_loss})
        # Best: the highest validation accuracy; among equals, the lowest validation loss (a
        # small validation part saturates its accuracy early, its loss goes on telling).
        best = (progress_state["best_accuracy"], -progress_state.get("best_val_loss", math.inf))
        improved = (val_report.accuracy, -val_loss) > best or config.refit  # refit: the last
        if improved:
            progress_state["best_accuracy"] = val_report.accuracy
            progress_state["best_val_loss"] = val_loss
            progress_state["best_epoch"] = epoch
            metadata = _metadata(task, normalizer, config, progress_state, {"val": val_report})
            save_checkpoint(out_dir / "best", validated, metadata)
        progress_state["epoch"] = epoch
        _save_resume(resume_dir, model, optimizer, progress_state, average)
        if progress and config.refit:  # its validation part is trained on: no score there
            tqdm.write(f"epoch {epoch:3d}  loss {loss:.4f}  (refit: no validation score)")
        elif progress:
            tqdm.write(
                f"epoch {epoch:3d}  loss {loss:.4f}  val acc {val_report.accuracy:.4f}"
                f"{'  (best)' if improved else ''}"
            )
        if on_epoch is not None:
            on_epoch(epoch, val_report.accuracy)

    best = load_checkpoint(out_dir / "best").model.to(device)
    val_report = evaluate_model(best, task.val, normalizer)
    test_report = evaluate_model(best, task.test, normalizer)  # reported once, never selected on
    metrics: dict[str, Any] = {"test": test_report.to_dict()}
    if not config.refit:
        metrics["val"] = val_report.to_dict()
        metrics[LEARNING] = learning_verdict(task, progress_state["history"]).to_dict()
    metrics[MAJORITY] = {"accuracy": majority_rate(fit_part.y, task.test.y)}
    metadata = _metadata(
        task, normalizer, config, progress_state, {**metrics, **(extra_metrics or {})}
    )
    final = save_checkpoint(out_dir / "checkpoint", best.cpu(), metadata)
    _write_text(out_dir / "history.json", json.dumps(progress_state["history"], indent=1))
    return TrainResult(final, val_report, test_report, epoch, progress_state["seconds"])


@dataclass(frozen=True)
class Augmentation:
    """The run's augmentation (see larnn.data.augment), applied to raw signals: a normalised
    batch is mapped back to raw units, transformed, and normalised again."""

    config: AugmentConfig
    triples: list[tuple[int, int, int]]  # x/y/z channel triples that rotate together
    mean: torch.Tensor  # (C,) of the normaliser
    std: torch.Tensor  # (C,)

    @classmethod
    def build(
        cls, config: TrainConfig, data: SequenceDataset, normalizer: Normalizer, device
    ) -> Augmentation | None:
        augment = config.augment_config()
        if not augment.active:
            return None
        if augment.time_warp and data.is_ragged:
            raise ConfigError(
                f"{data.dataset_id}: time warping resamples the whole padded series; with "
                "series of different lengths choose augment.time_warp=0"
            )
        mean = torch.tensor(normalizer.mean, dtype=torch.float32, device=device)
        std = torch.tensor(normalizer.std, dtype=torch.float32, device=device)
        return cls(augment, vector_triples(data.channel_names), mean, std)

    def __call__(self, x: torch.Tensor, lengths: torch.Tensor, generator) -> torch.Tensor:
        """A transformed copy of the normalised batch x (B, T, C); padding stays zero."""
        raw = x * self.std + self.mean
        out = augment(raw.cpu(), self.config, generator, self.triples).to(x) - self.mean
        out = out / self.std
        real = torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None]  # (B, T)
        return out * real[..., None]


@dataclass(frozen=True)
class PaddedInputs:
    """Normalised series right-padded to T, each one's real length, and the augmentation."""

    x: torch.Tensor  # (N, T, C)
    lengths: torch.Tensor  # (N,)
    augmentation: Augmentation | None = None


def weight_average(model: SequenceClassifier, decay: float) -> AveragedModel | None:
    """torch's AveragedModel keeping an exponential moving average of `model`'s weights (and
    buffers), or None for decay 0. Its first update copies the weights."""
    if decay == 0:
        return None
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def train_epoch(
    model,
    optimizer,
    inputs: PaddedInputs,
    y,
    config: TrainConfig,
    epoch: int,
    progress: bool,
    average: AveragedModel | None = None,
) -> float:
    x, lengths = inputs.x, inputs.lengths
    model.train()
    for group in optimizer.param_groups:
        group["lr"] = learning_rate(config, epoch)
    torch.manual_seed(config.seed * 1_000_003 + epoch)  # dropout, reproducible across resumes
    order = np.random.default_rng([config.seed, epoch]).permutation(len(y))
    batches = torch.from_numpy(order).to(x.device).split(config.batch_size)
    total, count = 0.0, 0
    bar = tqdm(
        batches, desc=f"epoch {epoch + 1}/{config.epochs}", leave=False, disable=not progress
    )
    generator = torch.Generator().manual_seed(config.seed * 1_000_003 + epoch)
    for index in bar:
        batch = x[index]
        if inputs.augmentation is not None:
            batch = inputs.augmentation(batch, lengths[index], generator)
        logits = model(*cropped(batch, lengths[index])).logits
        loss = F.cross_entropy(logits, y[index], label_smoothing=config.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        if average is not None:
            average.update_parameters(model)
        total += loss.item() * len(index)
        count += len(index)
        bar.set_postfix(loss=f"{total / count:.4f}")
    return total / count


def learning_verdict(task: Task, history: list[dict[str, Any]]) -> Verdict:
    """Whether a run learned, from its epochs' validation accuracy and training loss."""
    curve = [row["val_accuracy"] for row in history]
    val_majority = majority_rate(task.train.y, task.val.y)
    return judge([curve], [val_majority], [history[-1]["loss"]], task.train.n_classes)


def _metadata(
    task: Task,
    normalizer: Normalizer,
    config: TrainConfig,
    progress_state: dict[str, Any],
    reports: dict[str, ClassificationReport | dict[str, Any]],
) -> CheckpointMetadata:
    return CheckpointMetadata(
        dataset_id=task.dataset_id,
        split=task.split,
        channel_names=list(task.train.channel_names),
        channel_units=list(task.channel_units),
        class_names=list(task.train.class_names),
        normalizer=normalizer.to_dict(),
        metrics={
            name: report if isinstance(report, dict) else report.to_dict()
            for name, report in reports.items()
        },
        seed=config.seed,
        training_seconds=round(progress_state["seconds"], 1),
        code_version=larnn.__version__,
        torch_version=torch.__version__,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        train_config={**config.to_dict(), "best_epoch": progress_state["best_epoch"]},
    )


def _save_resume(
    folder: Path, model, optimizer, progress_state: dict[str, Any], average=None
) -> None:
    """Weights, their average and optimiser state as safetensors, progress as JSON; replaced
    atomically."""
    staging = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    save_file(_cpu_tensors(model.state_dict()), staging / "model.safetensors")
    state = optimizer.state_dict()
    tensors = {
        f"{index}.{name}": value.detach().cpu().contiguous()
        for index, slots in state["state"].items()
        for name, value in slots.items()
    }
    save_file(tensors, staging / "optimizer.safetensors")
    if average is not None:
        save_file(_cpu_tensors(average.state_dict()), staging / "average.safetensors")
    _write_text(staging / "param_groups.json", json.dumps(state["param_groups"]))
    _write_text(staging / "progress.json", json.dumps(progress_state))
    if folder.exists():
        old = folder.with_name(folder.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(folder, old)
        os.replace(staging, folder)
        shutil.rmtree(old)
    else:
        os.replace(staging, folder)


def _cpu_tensors(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict as safetensors takes it: detached, on the CPU, contiguous."""
    return {k: v.detach().cpu().contiguous() for k, v in state.items()}


def _load_resume(folder: Path, model, optimizer, average=None) -> dict[str, Any]:
    device = next(model.parameters()).device
    model.load_state_dict(load_file(folder / "model.safetensors", device=str(device)))
    if average is not None:
        average.load_state_dict(load_file(folder / "average.safetensors", device=str(device)))
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in load_file(folder / "optimizer.safetensors", device=str(device)).items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value.cpu() if name == "step" else value
    param_groups = json.loads((folder / "param_groups.json").read_text())
    optimizer.load_state_dict({"state": state, "param_groups": param_groups})
    return json.loads((folder / "progress.json").read_text())


def _write_text(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def with_overrides(config: TrainConfig, overrides: dict[str, Any]) -> TrainConfig:
    """Apply `key=value` overrides; `<dict field>.<key>` keys (`model.window`, `augment.scale`,
    `stem.patch`) go into those dicts."""
    fields = config.to_dict()
    nested = {name: dict(value) for name, value in fields.items() if isinstance(value, dict)}
    top: dict[str, Any] = {}
    for key, value in overrides.items():
        prefix, _, name = key.partition(".")
        if name and prefix in nested:
            nested[prefix][name] = value
        else:
            top[key] = value
    return TrainConfig.from_dict({**fields, **top, **nested})
