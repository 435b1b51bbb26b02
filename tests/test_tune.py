"""larnn tune: search space, seeding, resume, failures, journal workers, report, PostgreSQL."""

from __future__ import annotations

import dataclasses
import itertools
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

import larnn.tune as tune_module
from larnn.classifier import READOUTS
from larnn.cli import main
from larnn.errors import ConfigError
from larnn.train import TrainConfig
from larnn.tune import (
    AUGMENT_SPACE,
    HEAD_DIMS,
    HEADS,
    LSTM_SIZES,
    TRAINING_SPACE,
    TrialSeededSampler,
    format_report,
    open_storage,
    open_study,
    run_study,
    suggest_config,
)

TRAINING_KNOBS = {name for name, _ in TRAINING_SPACE}
AUGMENT_KNOBS = {f"augment.{name}" for name, _ in AUGMENT_SPACE}
POSTGRES_ENV = "LARNN_TEST_POSTGRES"
SMALL_MODEL = {"hidden_size": 8, "heads": 2, "num_layers": 1, "window": 4}  # held fixed: fast
BASE = TrainConfig(
    dataset="probe:cue_shape",
    model=SMALL_MODEL,
    epochs=2,
    batch_size=32,
    probe_sizes=[64, 32, 32],
    probe_length=32,
)
BASE_FLAGS = [
    "--dataset=probe:cue_shape",
    "--epochs=2",
    "--set=batch_size=32",
    "--set=probe_sizes=[64,32,32]",
    "--set=probe_length=32",
    *(f"--set=model.{name}={value}" for name, value in SMALL_MODEL.items()),
]


def _draw(study: optuna.Study, base: TrainConfig, n: int) -> list[TrainConfig]:
    """Ask `n` trials, build their configs, score them by a fixed function of the config."""
    configs = []
    for _ in range(n):
        trial = study.ask()
        configs.append(suggest_config(trial, base))
        study.tell(trial, configs[-1].lr * configs[-1].encoder_config(channels=3).hidden_size)
    return configs


def report_rows(report: str, trials: tuple[int, ...]) -> list[str]:
    """The report's rows of these trial numbers."""
    return [line for line in report.splitlines() if line.split()[:1] in [[str(n)] for n in trials]]


def test_every_heads_and_head_dim_pair_is_a_valid_model():
    free = dataclasses.replace(BASE, model={})
    for heads, head_dim in itertools.product(HEADS, HEAD_DIMS):
        params = {
            "dropout": 0.5,
            "window": 32,
            "mode": "layer",
            "positional_encoding": True,
            "kv_activation": "none",
            "num_layers": 3,
            "stacked_residual": True,
            "heads": heads,
            "head_dim": head_dim,
            "lr": 1e-2,
            "schedule": "constant",
            "weight_decay": 1e-6,
            "label_smoothing": 0.1,
            "readout": "mean",
            **{f"augment.{name}": 0.0 for name in ("rotation", "scale", "jitter", "time_warp")},
        }
        model = suggest_config(optuna.trial.FixedTrial(params), free).encoder_config(3)
        assert (model.hidden_size, model.heads) == (heads * head_dim, heads)


@pytest.mark.parametrize(
    "fixed", [{}, {"hidden_size": 48}, {"heads": 4}, {"hidden_size": 16, "heads": 2}]
)
def test_sampled_configs_validate_and_keep_fixed_fields(fixed):
    base = dataclasses.replace(BASE, model=fixed)
    study = optuna.create_study(direction="maximize", sampler=TrialSeededSampler(0))
    configs = _draw(study, base, 15)  # past TPE's 10 random start-up trials
    for trial, config in zip(study.trials, configs, strict=True):
        model = config.encoder_config(channels=3)
        assert model.hidden_size % model.heads == 0
        assert all(getattr(model, name) == value for name, value in fixed.items())
        assert not set(fixed) & set(trial.params)  # held fixed, not searched


@pytest.mark.parametrize("ragged", [False, True])
def test_training_and_augmentation_knobs_are_searched_unless_fixed(ragged):
    """Label smoothing, the readout and every augmentation field are drawn (no time warp for
    series of different lengths, which cannot be warped); a field set in the base stays fixed."""
    base = dataclasses.replace(BASE, augment={"rotation": 0.0})
    study = optuna.create_study(direction="maximize", sampler=TrialSeededSampler(0))
    configs = []
    for _ in range(12):
        trial = study.ask()
        configs.append(suggest_config(trial, base, ragged=ragged))
        study.tell(trial, configs[-1].label_smoothing)
    searched = (AUGMENT_KNOBS - {"augment.rotation"}) - ({"augment.time_warp"} if ragged else set())
    for trial, config in zip(study.trials, configs, strict=True):
        assert TRAINING_KNOBS | searched <= set(trial.params)
        assert not {"augment.rotation", "augment.time_warp" if ragged else ""} & set(trial.params)
        augment = config.augment_config()  # a valid AugmentConfig
        assert augment.rotation == 0.0 and (augment.time_warp == 0.0) == ragged
        assert config.label_smoothing == trial.params["label_smoothing"]
        assert config.readout == trial.params["readout"]
    assert len({c.augment["jitter"] for c in configs}) == len(configs)
    assert {c.readout for c in configs} == set(READOUTS)


def test_the_lstm_baseline_is_searched_over_its_own_space(tmp_path):
    """The LSTM gets the same training knobs and the LARNN's range of sizes; a study on it
    runs trials end to end."""
    base = dataclasses.replace(BASE, architecture="lstm", model={"num_layers": 1})
    study = optuna.create_study(direction="maximize", sampler=TrialSeededSampler(0))
    configs = _draw(study, base, 12)
    for trial, config in zip(study.trials, configs, strict=True):
        assert set(trial.params) == {"dropout", "hidden_size", *TRAINING_KNOBS, *AUGMENT_KNOBS}
        model = config.encoder_config(channels=3)
        assert model.num_layers == 1 and model.hidden_size in LSTM_SIZES
    assert len({c.encoder_config(3).hidden_size for c in configs}) > 1
    study = run_study(base, tmp_path / "lstm", 2)
    trials = study.trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    assert all(t.params["hidden_size"] in LSTM_SIZES for t in trials)
    report = format_report(study)  # the LARNN's own columns read '-'
    rows = report_rows(report, trials=(0, 1))
    assert len(rows) == 2 and all(" - " in row for row in rows), report


def test_sampler_draws_the_same_trials_with_or_without_an_interruption():
    free = dataclasses.replace(BASE, model={})
    whole = optuna.create_study(direction="maximize", sampler=TrialSeededSampler(7))
    _draw(whole, free, 13)
    storage = optuna.storages.InMemoryStorage()
    for n in (4, 9):  # a new process: a new sampler object on the same storage
        study = optuna.create_study(
            storage=storage,
            study_name="s",
            direction="maximize",
            sampler=TrialSeededSampler(7),
            load_if_exists=True,
        )
        _draw(study, free, n)
    assert [t.params for t in study.trials] == [t.params for t in whole.trials]
    assert len({tuple(sorted(t.params.items())) for t in whole.trials}) == 13  # no repeats


def test_study_resumes_where_it_stopped(tmp_path, monkeypatch):
    out = tmp_path / "study"
    first = run_study(BASE, out, 2).trials

    def interrupted(config, out_dir, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(tune_module, "train", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_study(BASE, out, 3)
    monkeypatch.undo()
    trials = run_study(BASE, out, 3).trials

    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2 + [
        TrialState.FAIL,  # the interrupted trial: recorded, not counted, made up for
        TrialState.COMPLETE,
    ]
    for before, after in zip(first, trials, strict=False):
        assert (after.params, after.value, after.user_attrs, after.datetime_complete) == (
            before.params,
            before.value,
            before.user_attrs,
            before.datetime_complete,
        )
    for trial in (trials[0], trials[1], trials[3]):
        assert Path(trial.user_attrs["checkpoint"], "metadata.json").is_file()
        assert trial.user_attrs["val_accuracy"] == trial.value
        assert set(trial.intermediate_values) == {1, 2}  # reported after each epoch
    assert "error" not in trials[2].user_attrs
    assert len(run_study(BASE, out, 3).trials) == 4  # already complete: nothing more runs
    with pytest.raises(ConfigError, match=r"another base configuration \(differs in \['epochs'\]"):
        run_study(dataclasses.replace(BASE, epochs=3), out, 4)


def test_a_trial_below_the_median_is_pruned_after_the_warm_up_epochs(tmp_path):
    base = dataclasses.replace(BASE, epochs=4)
    study = open_study(tmp_path, create=True)
    for _ in range(tune_module.PRUNE_AFTER_TRIALS):  # finished trials that did far better
        study.add_trial(
            optuna.trial.create_trial(
                value=1.0, intermediate_values=dict.fromkeys(range(1, 5), 1.0)
            )
        )
    trial = run_study(base, tmp_path, tune_module.PRUNE_AFTER_TRIALS + 1).trials[-1]
    assert trial.state == TrialState.PRUNED
    assert list(trial.intermediate_values) == list(range(1, tune_module.PRUNE_AFTER_EPOCHS + 1))
    assert not Path(trial.user_attrs["run_dir"], "checkpoint").exists()


def test_the_budget_stops_the_search_and_prunes_the_running_trial(tmp_path):
    """A budget shorter than one trial: the first trial is pruned at its first epoch past the
    deadline, and no second trial starts, although 50 were asked for."""
    base = dataclasses.replace(BASE, epochs=200, patience=200)
    started = time.monotonic()
    study = run_study(base, tmp_path, 50, budget_s=1.0)
    assert len(study.trials) == 1
    trial = study.trials[0]
    assert trial.state == TrialState.PRUNED and trial.user_attrs["over_budget"] is True
    assert len(trial.intermediate_values) < 200
    assert time.monotonic() - started < 60
    with pytest.raises(ConfigError, match="--budget must be a positive number"):
        run_study(base, tmp_path / "none", 5, budget_s=0)


def test_a_failing_trial_is_recorded_and_the_study_goes_on(tmp_path, monkeypatch, capsys):
    real_train = tune_module.train

    def flaky(config, out_dir, **kwargs):
        if out_dir.name == "trial_0000":
            raise RuntimeError("CUDA out of memory")
        return real_train(config, out_dir, **kwargs)

    monkeypatch.setattr(tune_module, "train", flaky)
    study = run_study(BASE, tmp_path, 2)
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.COMPLETE]
    assert study.trials[0].user_attrs["error"] == "RuntimeError: CUDA out of memory"
    assert "trial 0 failed: RuntimeError: CUDA out of memory" in format_report(study)

    assert main(["tune", "--out", str(tmp_path), "--report"]) == 0
    printed = capsys.readouterr().out
    assert "1 complete, 0 pruned, 1 failed" in printed
    assert "importance: needs at least 2 completed trials, the study has 1" in printed
    assert (tmp_path / "history.html").is_file() and not (tmp_path / "importance.html").exists()


@pytest.fixture(scope="module")
def journal_study(tmp_path_factory) -> Path:
    """Two worker processes running one study of 5 trials on a journal file."""
    out = tmp_path_factory.mktemp("journal") / "study"
    command = [sys.executable, "-m", "larnn.cli", "tune", "--out", str(out)]
    command += ["--storage", "journal", "--n-trials", "5", *BASE_FLAGS]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    workers = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for _ in range(2)
    ]
    logs = [worker.communicate(timeout=300)[0].decode() for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], "\n".join(logs)
    return out


def test_two_workers_on_a_journal_run_distinct_trials_and_lose_none(journal_study):
    trials = open_study(journal_study, "journal").trials
    assert [t.number for t in trials] == list(range(len(trials)))
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 5
    assert all(t in complete or t.user_attrs.get("surplus") for t in trials), trials
    assert len({t.user_attrs["worker"] for t in complete}) == 2  # both took part
    assert len({t.user_attrs["run_dir"] for t in complete}) == 5
    assert len({tuple(sorted(t.params.items())) for t in complete}) == 5
    assert all(Path(t.user_attrs["checkpoint"], "metadata.json").is_file() for t in complete)


def test_report_prints_the_best_trials_and_writes_the_plots(journal_study, capsys):
    assert main(["tune", "--out", str(journal_study), "--storage", "journal", "--report"]) == 0
    printed = capsys.readouterr().out
    assert "5 complete, 0 pruned, 0 failed, 0 running" in printed
    assert "best 5 by validation accuracy" in printed
    rows = report_rows(printed, trials=(0, 1))
    trials = open_study(journal_study, "journal").trials
    assert rows
    for row in rows:  # the readout each trial drew, in its row
        assert trials[int(row.split()[0])].params["readout"] in row.split(), row
    for name in ("history", "importance"):
        assert f"{name}: {journal_study / name}.html" in printed
        assert "plotly" in (journal_study / f"{name}.html").read_text()[:100_000].lower()


def test_retrain_best_reports_mean_and_std_over_seeds(journal_study, capsys):
    args = ["tune", "--out", str(journal_study), "--storage", "journal"]
    assert main([*args, "--retrain-best", "--seeds", "0", "1"]) == 0
    printed = capsys.readouterr().out
    best = open_study(journal_study, "journal").best_trial
    assert f"best trial {best.number} " in printed and "trained with seeds 0, 1" in printed
    assert "test " in printed and printed.count(" ± ") >= 4
    for seed in (0, 1):
        assert (journal_study / f"retrain/trial_{best.number:04d}/seed_{seed}/checkpoint").is_dir()


def test_report_without_a_study_says_where_it_looked(tmp_path, capsys):
    assert main(["tune", "--out", str(tmp_path / "nothing"), "--report"]) == 2
    assert "no study in" in capsys.readouterr().err


def test_storage_errors_hide_the_password(tmp_path):
    with pytest.raises(ConfigError) as error:
        open_study(tmp_path, "postgresql://user:s3cret@127.0.0.1:1/db", create=True)
    assert "s3cret" not in str(error.value) and "user:***@127.0.0.1" in str(error.value)


@pytest.fixture
def postgres_url() -> str:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(f"set {POSTGRES_ENV} to a PostgreSQL URL (.ci/start_postgres starts one)")
    psycopg2 = pytest.importorskip("psycopg2")
    try:
        psycopg2.connect(url, connect_timeout=3).close()
    except psycopg2.OperationalError as error:
        pytest.skip(f"no PostgreSQL at ${POSTGRES_ENV}: {error}")
    return url


def test_a_study_in_postgresql_spans_machines(tmp_path, postgres_url):
    name = f"test-{uuid.uuid4().hex[:12]}"
    try:
        run_study(BASE, tmp_path / "machine_a", 1, storage=postgres_url, study_name=name)
        run_study(BASE, tmp_path / "machine_b", 2, storage=postgres_url, study_name=name)
        trials = open_study(tmp_path, postgres_url, name).trials
        assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
        run_dirs = [Path(t.user_attrs["run_dir"]) for t in trials]
        assert run_dirs == [
            (tmp_path / "machine_a/trials/trial_0000").resolve(),
            (tmp_path / "machine_b/trials/trial_0001").resolve(),
        ]
    finally:
        optuna.delete_study(study_name=name, storage=open_storage(tmp_path, postgres_url))
