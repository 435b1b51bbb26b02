"""Hyperparameter search with Optuna: TPE sampling, pruning by epoch, resumable, distributable.

The search space is `suggest_config`: the knobs the paper meta-optimised, in one place. Each
trial trains with `larnn.train.train` into `OUT/trials/trial_NNNN/` (a run folder like any
other, with its checkpoint and metrics), reports its validation accuracy after every epoch so
that a median pruner can stop a poor trial early, and is scored by its best validation
accuracy. The test split plays no part in the search. `--n-trials N` is the number of
finished trials the study should hold in total: the same command, run again after an
interruption or on another worker, continues the same study up to N.

Where the study lives (`--storage`):

    one process (default): a SQLite file, OUT/study.db; rerun the command to resume
        larnn tune --dataset uci_har --out runs/tune --n-trials 100
    (--dataset also takes a labelled file, with --test where separate, as `larnn train` does)

    several workers on one machine: a journal file, OUT/study.journal, shared by all
        for i in 1 2 3 4; do
          OMP_NUM_THREADS=4 larnn tune --dataset uci_har --out runs/tune --storage journal \\
            --n-trials 100 &
        done; wait

    several machines: a PostgreSQL database (pip install psycopg2-binary); on each machine
        larnn tune --dataset uci_har --out runs/tune --n-trials 100 \\
          --storage postgresql://USER:PASSWORD@HOST:5432/DATABASE

Then, with the same --out (and --storage where it is not the default):

    larnn tune --out runs/tune --report                       # best trials, plots as HTML
    larnn tune --out runs/tune --retrain-best --seeds 0 1 2   # mean ± std over seeds

A trial that raises is recorded as failed (its error in the `error` user attribute) and the
study goes on; Ctrl+C stops it, and the interrupted trial does not count towards N. A worker
killed outright (SIGKILL, power loss) leaves its trial RUNNING: under SQLite or PostgreSQL it
is marked failed after two minutes without a heartbeat and run again; under a journal file it
keeps counting as running.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import re
import socket
import statistics
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy.exc
from optuna.distributions import BaseDistribution
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

from larnn.classifier import READOUTS
from larnn.errors import ConfigError
from larnn.tasks import load_task
from larnn.train import TrainConfig, TrainResult, check_trainable, train

STUDY_NAME = "larnn"
HEADS = (1, 2, 4, 8)
HEAD_DIMS = (4, 8, 16, 32)  # hidden_size = heads * head_dim: 4 .. 256, a multiple of heads
LSTM_SIZES = (16, 32, 64, 128, 256)  # the LSTM baseline over the LARNN's range of sizes
PRUNE_AFTER_TRIALS = 5  # trials that run to the end before the pruner compares anything
PRUNE_AFTER_EPOCHS = 2  # epochs every trial runs before it can be pruned
HEARTBEAT_SECONDS = 60  # SQLite/PostgreSQL: a trial silent for twice this is failed
MIN_TRIALS_FOR_IMPORTANCE = 2


def suggest_config(trial: optuna.Trial, base: TrainConfig, *, ragged: bool = False) -> TrainConfig:
    """The search space: `base` with its architecture's hyperparameters drawn by `trial`.

    Training, for both: learning rate, its decay (cosine or none), weight decay, label
    smoothing, what the head reads (the last step's state or the mean of the steps) and the
    augmentation of the raw signals (`TRAINING_SPACE`, `AUGMENT_SPACE`; no time warp where
    series differ in length). LARNN (the paper's meta-optimised knobs): dropout, hidden size
    and heads, window, mode, positional encoding, activation on keys/values, layers and
    residual stacking; the hidden size is drawn as heads * head_dim, so every trial is a
    valid model. LSTM baseline, over the same range of sizes: dropout, hidden size and
    layers. Fields set in `base.model` or `base.augment` are held fixed.
    """
    fixed = base.model
    space = LSTM_SPACE if base.architecture == "lstm" else LARNN_SPACE
    model = {name: fixed[name] if name in fixed else draw(trial, name) for name, draw in space}
    if base.architecture == "larnn":
        model.update(_heads_and_size(trial, fixed))
    augment_space = [(n, d) for n, d in AUGMENT_SPACE if not (ragged and n == "time_warp")]
    augment = {
        name: base.augment[name] if name in base.augment else draw(trial, f"augment.{name}")
        for name, draw in augment_space
    }
    training = {name: draw(trial, name) for name, draw in TRAINING_SPACE}
    return dataclasses.replace(
        base, **training, model={**fixed, **model}, augment={**base.augment, **augment}
    )


Draw = Callable[[optuna.Trial, str], Any]
LARNN_SPACE: tuple[tuple[str, Draw], ...] = (
    ("dropout", lambda trial, name: trial.suggest_float(name, 0.0, 0.5)),
    ("window", lambda trial, name: trial.suggest_int(name, 2, 32, log=True)),
    ("mode", lambda trial, name: trial.suggest_categorical(name, ["residual", "layer"])),
    ("positional_encoding", lambda trial, name: trial.suggest_categorical(name, [False, True])),
    ("kv_activation", lambda trial, name: trial.suggest_categorical(name, ["elu", "none"])),
    ("num_layers", lambda trial, name: trial.suggest_int(name, 1, 3)),
    ("stacked_residual", lambda trial, name: trial.suggest_categorical(name, [False, True])),
)
TRAINING_SPACE: tuple[tuple[str, Draw], ...] = (
    ("lr", lambda trial, name: trial.suggest_float(name, 3e-4, 1e-2, log=True)),
    ("schedule", lambda trial, name: trial.suggest_categorical(name, ["cosine", "constant"])),
    ("weight_decay", lambda trial, name: trial.suggest_float(name, 1e-6, 1e-2, log=True)),
    ("label_smoothing", lambda trial, name: trial.suggest_float(name, 0.0, 0.2)),
    ("readout", lambda trial, name: trial.suggest_categorical(name, list(READOUTS))),
)
# In the signal's own units (see larnn.data.augment); fix a field with --set augment.<field>=...
AUGMENT_SPACE: tuple[tuple[str, Draw], ...] = (
    ("rotation", lambda trial, name: trial.suggest_float(name, 0.0, 30.0)),  # degrees
    ("scale", lambda trial, name: trial.suggest_float(name, 0.0, 0.2)),
    ("jitter", lambda trial, name: trial.suggest_float(name, 0.0, 0.05)),
    ("time_warp", lambda trial, name: trial.suggest_float(name, 0.0, 0.3)),
)
LSTM_SPACE: tuple[tuple[str, Draw], ...] = (
    ("dropout", lambda trial, name: trial.suggest_float(name, 0.0, 0.5)),
    ("hidden_size", lambda trial, name: trial.suggest_categorical(name, LSTM_SIZES)),
    ("num_layers", lambda trial, name: trial.suggest_int(name, 1, 3)),
)


def _heads_and_size(trial: optuna.Trial, fixed: dict[str, Any]) -> dict[str, int]:
    if "hidden_size" in fixed:
        hidden_size = fixed["hidden_size"]
        divisors = [heads for heads in HEADS if hidden_size % heads == 0]
        heads = fixed["heads"] if "heads" in fixed else trial.suggest_categorical("heads", divisors)
    else:
        heads = fixed["heads"] if "heads" in fixed else trial.suggest_categorical("heads", HEADS)
        hidden_size = heads * trial.suggest_categorical("head_dim", HEAD_DIMS)
    return {"hidden_size": hidden_size, "heads": heads}


class TrialSeededSampler(optuna.samplers.BaseSampler):
    """TPE whose random state is a function of (seed, trial number).

    A plain seeded sampler replays its random stream from the start in every process: a
    resumed study would draw its first configurations again, and two workers would draw the
    same ones. Trial numbers are unique across workers, so seeding by them keeps a study
    reproducible without repeats, however it is interrupted or spread.
    """

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self._tpe = self._for_trial(0)

    def _for_trial(self, number: int) -> optuna.samplers.TPESampler:
        return optuna.samplers.TPESampler(seed=(self.seed * 1_000_003 + number) % 2**32)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._tpe = self._for_trial(trial.number)
        self._tpe.before_trial(study, trial)

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self._tpe.infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self._tpe.sample_relative(study, trial, search_space)

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self._tpe.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self._tpe.after_trial(study, trial, state, values)


def open_study(
    out: Path,
    storage: str | None = None,
    study_name: str = STUDY_NAME,
    *,
    create: bool = False,
    sampler_seed: int = 0,
) -> optuna.Study:
    """The study in `storage` (default: OUT/study.db); `create` makes it where it is missing.

    `storage`: None (SQLite in OUT), "journal" (OUT/study.journal), "journal:PATH", or a
    database URL such as postgresql://user:password@host:5432/database.
    """
    backend = open_storage(Path(out), storage, create=create)
    pruner = optuna.pruners.MedianPruner(PRUNE_AFTER_TRIALS, PRUNE_AFTER_EPOCHS)
    if create:
        return optuna.create_study(
            storage=backend,
            study_name=study_name,
            direction="maximize",
            sampler=TrialSeededSampler(sampler_seed),
            pruner=pruner,
            load_if_exists=True,
        )
    try:
        return optuna.load_study(study_name=study_name, storage=backend, pruner=pruner)
    except KeyError:
        raise ConfigError(
            f"no study named {study_name!r} in {_describe_storage(Path(out), storage)}; "
            "check --study-name, or start it with larnn tune"
        ) from None


def run_study(
    base: TrainConfig,
    out: Path,
    n_trials: int,
    *,
    storage: str | None = None,
    study_name: str = STUDY_NAME,
    sampler_seed: int = 0,
    data_dir: Path | None = None,
    budget_s: float | None = None,
) -> optuna.Study:
    """Run trials until the study holds `n_trials` finished ones (counting earlier runs'), or
    until `budget_s` seconds have passed: no trial starts after that, and the running one is
    pruned at its next epoch (its best epoch so far stays in its run folder)."""
    out = Path(out)
    if n_trials < 1:
        raise ConfigError(f"--n-trials must be >= 1, got {n_trials}")
    if budget_s is not None and budget_s <= 0:
        raise ConfigError(f"--budget must be a positive number of seconds, got {budget_s}")
    deadline = None if budget_s is None else time.monotonic() + budget_s
    # A missing or unusable dataset fails here, not in every trial.
    task = load_task(base.dataset, base.split_definition(), data_dir)
    check_trainable(base, task.train)
    out.mkdir(parents=True, exist_ok=True)
    study = open_study(out, storage, study_name, create=True, sampler_seed=sampler_seed)
    _check_base(study, base)
    objective = _objective(base, out, n_trials, data_dir, task.train.is_ragged, deadline)
    while deadline is None or time.monotonic() < deadline:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)  # a killed worker's trial, where heartbeats
        if sum(map(_uses_budget, study.get_trials(deepcopy=False))) >= n_trials:
            return study
        study.optimize(objective, n_trials=1, catch=(Exception,))
    return study


def _objective(
    base: TrainConfig,
    out: Path,
    n_trials: int,
    data_dir: Path | None,
    ragged: bool,
    deadline: float | None,
) -> Callable[[optuna.Trial], float]:
    def objective(trial: optuna.Trial) -> float:
        earlier = [t for t in trial.study.get_trials(deepcopy=False) if t.number < trial.number]
        if sum(map(_uses_budget, earlier)) >= n_trials:  # another worker took the last one
            trial.set_user_attr("surplus", True)
            raise optuna.TrialPruned("the study already has its trials")
        try:
            config = suggest_config(trial, base, ragged=ragged)
            return _train_trial(trial, config, out, data_dir, deadline)
        except optuna.TrialPruned:
            raise
        except Exception as error:  # recorded, so that it counts as a finished trial
            trial.set_user_attr("error", f"{type(error).__name__}: {error}")
            raise

    return objective


def _train_trial(
    trial: optuna.Trial,
    config: TrainConfig,
    out: Path,
    data_dir: Path | None,
    deadline: float | None = None,
) -> float:
    run_dir = (out / "trials" / f"trial_{trial.number:04d}").resolve()
    trial.set_user_attr("config", config.to_dict())
    trial.set_user_attr("run_dir", str(run_dir))
    trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")

    def on_epoch(epoch: int, val_accuracy: float) -> None:
        trial.report(val_accuracy, epoch)
        if deadline is not None and time.monotonic() > deadline:
            trial.set_user_attr("over_budget", True)
            raise optuna.TrialPruned(f"epoch {epoch}: the search's budget ran out")
        if trial.should_prune():
            raise optuna.TrialPruned(f"epoch {epoch}: val accuracy {val_accuracy:.4f}")

    result = train(config, run_dir, data_dir=data_dir, progress=False, on_epoch=on_epoch)
    trial.set_user_attr("checkpoint", str(result.checkpoint))
    trial.set_user_attr("val_accuracy", result.val.accuracy)
    trial.set_user_attr("val_macro_f1", result.val.macro_f1)
    trial.set_user_attr("epochs_run", result.epochs_run)
    trial.set_user_attr("training_seconds", round(result.training_seconds, 1))
    return result.val.accuracy  # the test split stays out of the search


def _uses_budget(trial: FrozenTrial) -> bool:
    """Running or finished; an interrupted, stale or surplus trial is not, and is made up for."""
    if trial.state == TrialState.FAIL:
        return "error" in trial.user_attrs
    if trial.state == TrialState.PRUNED:
        return "surplus" not in trial.user_attrs
    return trial.state in (TrialState.RUNNING, TrialState.COMPLETE)


def _check_base(study: optuna.Study, base: TrainConfig) -> None:
    """Every worker and every resume must search around the same base (the device aside)."""
    wanted = {k: v for k, v in base.to_dict().items() if k != "device"}
    saved = study.user_attrs.get("base_config")
    if saved is None:
        study.set_user_attr("base_config", wanted)
    elif saved != wanted:
        differ = sorted(k for k in wanted.keys() | saved.keys() if wanted.get(k) != saved.get(k))
        raise ConfigError(
            f"study {study.study_name!r} was started from another base configuration "
            f"(differs in {differ}): {saved}; use the same flags, or another --out/--study-name"
        )


def open_storage(out: Path, storage: str | None = None, *, create: bool = False) -> BaseStorage:
    """The Optuna storage that `--storage` names (see `open_study`)."""
    where = _describe_storage(out, storage)
    if storage is None or storage == "journal" or storage.startswith("journal:"):
        path = _storage_file(out, storage)
        if not create and not path.exists():
            raise ConfigError(f"no study in {where}: start one with larnn tune --out {out}")
        if storage is not None:
            return JournalStorage(JournalFileBackend(str(path)))
        storage = f"sqlite:///{path.resolve()}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return RDBStorage(
                _with_installed_driver(storage),
                engine_kwargs={"pool_pre_ping": True},
                heartbeat_interval=HEARTBEAT_SECONDS,
            )
    except ImportError as error:
        hint = " (PostgreSQL: pip install psycopg2-binary)" if "postgres" in storage else ""
        raise ConfigError(f"cannot open the study storage {where}: {error}{hint}") from None
    except (ValueError, sqlalchemy.exc.SQLAlchemyError) as error:
        raise ConfigError(f"cannot open the study storage {where}: {error}") from None


def _with_installed_driver(url: str) -> str:
    """postgresql:// means psycopg 3 to SQLAlchemy >= 2.1: use psycopg2 where only it is there."""
    plain = url.startswith("postgresql://")
    if plain and not importlib.util.find_spec("psycopg") and importlib.util.find_spec("psycopg2"):
        return "postgresql+psycopg2://" + url.removeprefix("postgresql://")
    return url


def _storage_file(out: Path, storage: str | None) -> Path:
    if storage is None:
        return out / "study.db"
    if storage == "journal":
        return out / "study.journal"
    return Path(storage.removeprefix("journal:"))


def _describe_storage(out: Path, storage: str | None) -> str:
    """Where the study lives, for messages: a file, or a URL without its password."""
    if storage is None or storage == "journal" or storage.startswith("journal:"):
        return str(_storage_file(out, storage))
    return re.sub(r"(//[^:/@]*):[^@]*@", r"\1:***@", storage)


def format_report(study: optuna.Study, top: int = 10) -> str:
    """The study's counts, its `top` trials by validation accuracy, and what failed."""
    trials = study.get_trials(deepcopy=False)
    complete = sorted((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: -t.value)
    failed = [t for t in trials if t.state == TrialState.FAIL and "error" in t.user_attrs]
    pruned = [t for t in trials if t.state == TrialState.PRUNED and _uses_budget(t)]
    running = [t for t in trials if t.state == TrialState.RUNNING]
    lines = [
        f"study {study.study_name!r}: {len(complete)} complete, {len(pruned)} pruned, "
        f"{len(failed)} failed, {len(running)} running"
    ]
    if complete:
        lines += ["", f"best {min(top, len(complete))} by validation accuracy:"]
        lines.append(
            f"{'trial':>5} {'val acc':>7} {'val F1':>6} {'epochs':>6}  {'H':>3} {'L':>1} "
            f"{'NH':>2} {'K':>2} {'mode':<8} {'pe':<3} {'kv':<4} {'stack':<5} {'dropout':>7} "
            f"{'lr':>8} {'schedule':<8} {'wd':>8} {'smooth':>6} {'readout':<7}  "
            "augment (rot/scale/jit/warp)"
        )
        lines += [_format_trial(t) for t in complete[:top]]
        best = complete[0].user_attrs
        lines.append(f"best checkpoint: {best['checkpoint']} (worker {best['worker']})")
    lines += [f"trial {t.number} failed: {t.user_attrs['error']}" for t in failed]
    return "\n".join(lines)


def _format_trial(trial: FrozenTrial) -> str:
    """One report row; the LARNN's own columns read '-' for the LSTM baseline."""
    config = TrainConfig.from_dict(trial.user_attrs["config"])
    model = config.encoder_config(channels=1)
    attrs = trial.user_attrs
    if config.architecture == "larnn":
        larnn = (
            f"{model.heads:>2} {model.window:>2} {model.mode:<8} "
            f"{'on' if model.positional_encoding else 'off':<3} {model.kv_activation:<4} "
            f"{'on' if model.stacked_residual else 'off':<5}"
        )
    else:
        larnn = f"{'-':>2} {'-':>2} {'-':<8} {'-':<3} {'-':<4} {'-':<5}"
    augment = config.augment_config()
    return (
        f"{trial.number:>5} {trial.value:>7.4f} {attrs['val_macro_f1']:>6.4f} "
        f"{attrs['epochs_run']:>6}  {model.hidden_size:>3} {model.num_layers:>1} {larnn} "
        f"{model.dropout:>7.3f} {config.lr:>8.2e} {config.schedule:<8} "
        f"{config.weight_decay:>8.1e} {config.label_smoothing:>6.3f} {config.readout:<7}  "
        f"{augment.rotation:.1f}/{augment.scale:.3f}/{augment.jitter:.3f}/{augment.time_warp:.3f}"
    )


def write_plots(study: optuna.Study, out: Path) -> dict[str, Path | str]:
    """Optimisation history and parameter importances as HTML in `out`.

    Returns each plot's file, or why it was not written.
    """
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return {"history": "no completed trial yet", "importance": "no completed trial yet"}
    written: dict[str, Path | str] = {"history": Path(out) / "history.html"}
    optuna.visualization.plot_optimization_history(study).write_html(written["history"])
    if len(complete) < MIN_TRIALS_FOR_IMPORTANCE:
        written["importance"] = (
            f"needs at least {MIN_TRIALS_FOR_IMPORTANCE} completed trials, "
            f"the study has {len(complete)}"
        )
    else:
        written["importance"] = Path(out) / "importance.html"
        optuna.visualization.plot_param_importances(study).write_html(written["importance"])
    return written


@dataclass(frozen=True)
class Retrained:
    """The best trial's configuration trained again with several seeds."""

    trial_number: int
    search_val_accuracy: float  # the score it was selected on
    seeds: list[int]
    results: list[TrainResult]

    def summary(self) -> dict[str, tuple[float, float]]:
        """(mean, sample std) of val/test accuracy and macro-F1 over the seeds."""
        out = {}
        for split in ("val", "test"):
            for metric in ("accuracy", "macro_f1"):
                values = [getattr(getattr(r, split), metric) for r in self.results]
                spread = statistics.stdev(values) if len(values) > 1 else 0.0
                out[f"{split}_{metric}"] = (statistics.fmean(values), spread)
        return out

    def format(self) -> str:
        stats = self.summary()
        seeds = ", ".join(map(str, self.seeds))

        def cell(name: str) -> str:
            mean, std = stats[name]
            return f"{mean:.4f} ± {std:.4f}"

        return "\n".join(
            [
                f"best trial {self.trial_number} (val accuracy {self.search_val_accuracy:.4f} "
                f"in the search), trained with seeds {seeds}:",
                f"{'':<11} {'accuracy':<16} {'macro-F1':<16}",
                f"{'validation':<11} {cell('val_accuracy'):<16} {cell('val_macro_f1'):<16}",
                f"{'test':<11} {cell('test_accuracy'):<16} {cell('test_macro_f1'):<16}",
                f"mean ± sample std over {len(self.seeds)} seed(s); checkpoints: "
                + ", ".join(str(r.checkpoint) for r in self.results),
            ]
        )


def retrain_best(
    study: optuna.Study,
    out: Path,
    seeds: list[int],
    *,
    data_dir: Path | None = None,
    progress: bool = True,
) -> Retrained:
    """Train the best trial's configuration once per seed into OUT/retrain/trial_NNNN/seed_S.

    Rerunning continues interrupted runs and reuses finished ones.
    """
    if not seeds:
        raise ConfigError("--seeds needs at least one seed")
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        raise ConfigError(f"study {study.study_name!r} has no completed trial to retrain yet")
    best = study.best_trial
    config = TrainConfig.from_dict(best.user_attrs["config"])
    folder = Path(out) / "retrain" / f"trial_{best.number:04d}"
    results = [
        train(
            dataclasses.replace(config, seed=seed),
            folder / f"seed_{seed}",
            data_dir=data_dir,
            resume=True,
            progress=progress,
        )
        for seed in seeds
    ]
    return Retrained(best.number, best.value, list(seeds), results)
