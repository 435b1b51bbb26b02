"""The default protocol for labelled files (larnn.protocol): settings read from the data, the
epoch count chosen over k folds, the refit on every training case, the budget, the verdict
and the reference recorded in the checkpoint; `larnn train --dataset PATH` with no other flag.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest

from larnn import protocol
from larnn.checkpoint import load_checkpoint
from larnn.cli import main
from larnn.data.splits import group_fold, stratified_fold
from larnn.evaluate import evaluate_checkpoint
from larnn.protocol import POOL, TARGET_STEPS, DataShape, plan, run_protocol
from larnn.tasks import load_task
from larnn.train import TrainConfig

HAS_AEON = importlib.util.find_spec("aeon") is not None
TINY_MODEL = {"hidden_size": 8, "heads": 2}


def long_univariate(path: Path, cases: int = 48, length: int = 400, seed: int = 0) -> Path:
    """Three classes of long univariate series: a pulse near the start, a pulse near the end,
    or a slow ramp, each under noise. One sample per step carries little; the shapes are
    plain once samples are seen together."""
    rng = np.random.default_rng(seed)
    y = np.arange(cases) % 3
    t = np.arange(length)
    X = rng.normal(0, 0.3, (cases, length, 1))
    for n, label in enumerate(y):
        if label == 2:
            X[n, :, 0] += np.linspace(-1, 1, length)
        else:
            centre = rng.integers(40, 120) if label == 0 else rng.integers(280, 360)
            X[n, :, 0] += 2 * np.exp(-0.5 * ((t - centre) / 12) ** 2)
    np.savez(path, X=X, y=y)
    return path


def test_folds_partition_the_cases_and_keep_classes_apart_evenly():
    y = np.repeat(np.arange(3), [12, 12, 11])
    folds = [stratified_fold(y, 5, j, seed=4) for j in range(5)]
    assert sorted(np.concatenate(folds).tolist()) == list(range(len(y)))
    assert all(len(f) in (7,) for f in folds)
    for fold in folds:  # each class spread evenly: 2 or 3 of its cases per fold
        assert all(2 <= np.sum(y[fold] == c) <= 3 for c in range(3))
    assert not np.array_equal(folds[0], stratified_fold(y, 5, 0, seed=5))  # seeded
    groups = np.repeat(np.arange(6), 2)
    by_group = [group_fold(groups, 3, j) for j in range(3)]
    assert sorted(np.concatenate(by_group).tolist()) == list(range(12))
    for fold in by_group:  # whole groups only
        assert set(np.flatnonzero(np.isin(groups, groups[fold]))) == set(fold.tolist())


def test_the_plan_reads_the_data_and_keeps_what_the_user_gave():
    shape = DataShape(cases=36, max_length=1460)
    base = TrainConfig(dataset="x.npz", lr=1e-3)
    planned = plan(base, shape, given={"lr", "model.hidden_size"})
    patch = planned.stem["patch"]
    assert patch % POOL == 0 and planned.stem["pool"] == POOL  # a long series: pooled early
    assert math.ceil(1460 / TARGET_STEPS) <= patch < math.ceil(1460 / TARGET_STEPS) + POOL
    assert planned.folds == 5 and planned.readout == "mean" and planned.lr == 1e-3
    assert "hidden_size" not in planned.model  # given: left to the user's value
    assert planned.choices["lr"] == "set by you"
    assert planned.choices["model.hidden_size"] == "set by you"
    assert "1460 samples" in planned.choices["stem.patch"]
    assert planned.model["window"] <= math.ceil(1460 / patch)
    short = plan(base, DataShape(270, 26))  # JapaneseVowels: 7..26 samples
    assert short.stem["patch"] == 1 and short.model["kv_norm"] != "batch"  # ragged-safe
    assert "pool" not in plan(base, DataShape(36, 251)).stem  # ArrowHead: patches of 4
    assert planned.stem["residual"] and planned.stem["width"] == 64  # the hidden size
    odd = plan(TrainConfig(dataset="x.npz", stem={"patch": 10}), shape, {"stem.patch"})
    assert odd.stem["patch"] == 10 and "pool" not in odd.stem  # the user's patch, kept whole
    assert odd.choices["model.window"].endswith("(160 samples)")  # 16 of their patches
    narrow = TrainConfig(dataset="x.npz", model={"hidden_size": 8})
    small = plan(narrow, shape, {"model.hidden_size"})
    assert small.stem["width"] == 8 and small.stem["residual"]  # its features add to h
    wide = TrainConfig(dataset="x.npz", stem={"width": 32})
    assert "residual" not in plan(wide, shape, {"stem.width"}).stem  # 32 features, 64 hidden
    lstm = plan(TrainConfig(architecture="lstm", dataset="x.npz"), shape)
    assert "model.window" not in lstm.choices and lstm.stem == planned.stem  # like for like


@pytest.mark.slow
def test_a_long_univariate_set_is_learned_well_above_chance(tmp_path):
    """The cause of models at chance on long univariate series: one sample per step and
    input weights of Xavier scale over a fan-in of one gave the gates almost no signal; the
    stem lifts each patch of samples to convolved, normalised features."""
    data = long_univariate(tmp_path / "long.npz", cases=90)
    base = TrainConfig(dataset=str(data), seed=0, device="cpu", epochs=8)
    task = load_task(base.dataset, base.split_definition())
    planned = plan(base, DataShape.of(task.train.concatenate(task.val)), {"epochs"})
    result = run_protocol(planned, tmp_path / "run", budget_s=600, progress=False)
    assert result.verdict.learned, result.verdict.reason
    assert result.test.accuracy >= 0.6  # 18 test cases; chance: 1/3


def test_the_protocol_folds_then_refits_on_every_training_case(tmp_path):
    data = long_univariate(tmp_path / "long.npz", cases=30, length=60)
    base = TrainConfig(dataset=str(data), seed=1, device="cpu", epochs=3, model=TINY_MODEL)
    given = {"epochs", "model.hidden_size", "model.heads"}
    full = load_task(base.dataset, base.split_definition())
    planned = plan(base, DataShape.of(full.train.concatenate(full.val)), given)
    reference = {"method": "test double", "accuracy": 0.5, "seconds": 0.0}
    result = run_protocol(planned, tmp_path / "run", reference=reference, progress=False)
    folds = [tmp_path / "run" / f"fold_{j}" for j in range(planned.folds)]
    val_cases = [load_checkpoint(f / "checkpoint").metadata.split["val_cases"] for f in folds]
    training = sorted(set(range(30)) - set(full.split["test_cases"]))
    assert sorted(sum(val_cases, [])) == training  # the folds partition the training cases
    curves = [[row["val_accuracy"] for row in history(f)] for f in folds]
    assert all(len(curve) == 3 for curve in curves)  # every epoch, no early stop
    means = [np.mean([c[e] for c in curves]) for e in range(3)]
    losses = np.mean([[row["val_loss"] for row in history(f)] for f in folds], axis=0)
    best = min(range(3), key=lambda e: (-means[e], losses[e]))
    error = np.std([c[best] for c in curves], ddof=1) / np.sqrt(len(curves))
    assert result.epochs - 1 == max(e for e in range(3) if means[e] >= means[best] - error)
    checkpoint = load_checkpoint(result.checkpoint)
    meta = checkpoint.metadata
    assert meta.train_config["refit"] is True and meta.train_config["epochs"] == result.epochs
    assert meta.train_config["choices"]["epochs"].startswith(f"{result.epochs}: the latest count")
    assert meta.train_config["choices"]["model.hidden_size"] == "set by you"
    assert meta.metrics["reference"] == reference
    assert meta.metrics["learning"]["learned"] == result.verdict.learned
    assert 0 < meta.metrics["majority"]["accuracy"] < 1
    again = evaluate_checkpoint(checkpoint, "test")
    assert again.accuracy == pytest.approx(meta.metrics["test"]["accuracy"], abs=1e-9)


def test_a_small_budget_cuts_the_epochs_and_says_so(tmp_path):
    data = long_univariate(tmp_path / "long.npz", cases=30, length=60)
    base = TrainConfig(dataset=str(data), device="cpu")
    planned = plan(base, DataShape(24, 60))
    assert planned.epochs >= 20
    result = run_protocol(planned, tmp_path / "run", budget_s=0.01, progress=False)
    choices = load_checkpoint(result.checkpoint).metadata.train_config["choices"]
    assert len(history(tmp_path / "run" / "fold_0")) == 1 == result.epochs
    assert "cut to 1 by the budget of 0.01 s" in choices["epochs"]
    assert "3 to fit the budget" in choices["folds"]  # fewer folds before fewer epochs
    assert sorted(p.name for p in (tmp_path / "run").glob("fold_*")) == [
        "fold_0",
        "fold_1",
        "fold_2",
    ]


def test_an_epoch_slowed_by_a_passing_load_is_timed_again_before_a_cut(tmp_path, monkeypatch):
    """The budget's cut rests on the faster of two timed epochs: one slow epoch alone (another
    job on the cores) no longer cuts a run to 1 epoch."""
    data = long_univariate(tmp_path / "long.npz", cases=30, length=60)
    planned = plan(TrainConfig(dataset=str(data), device="cpu"), DataShape(24, 60))
    planned = dataclasses.replace(planned, epochs=3, folds=3)
    timings = iter([100.0, 0.001])  # seconds: slowed, then as it is
    monkeypatch.setattr(protocol, "time_one_epoch", lambda config, task: next(timings))
    result = run_protocol(planned, tmp_path / "run", budget_s=60, progress=False)
    choices = load_checkpoint(result.checkpoint).metadata.train_config["choices"]
    assert len(history(tmp_path / "run" / "fold_0")) == 3  # not cut (100 s would cut to 0)
    assert "cut" not in choices["epochs"]
    assert next(timings, None) is None  # timed twice


def test_folds_slower_than_timed_stop_before_the_budget_is_spent(tmp_path, monkeypatch):
    """Each fold takes 100 s on a clock that only the folds move (epochs timed as instant): a
    budget of 350 s keeps 3 folds of 5 and records why, instead of spending 600 s."""
    data = long_univariate(tmp_path / "long.npz", cases=30, length=60)
    planned = plan(TrainConfig(dataset=str(data), device="cpu"), DataShape(24, 60))
    planned = dataclasses.replace(planned, epochs=2, folds=5)
    now = [0.0]
    real_train = protocol.train

    def train_taking_100_s(config, out, **kwargs):
        if not config.refit:
            now[0] += 100.0
        return real_train(config, out, **kwargs)

    monkeypatch.setattr(protocol, "time_one_epoch", lambda config, task: 1e-6)
    monkeypatch.setattr(protocol, "_clock", lambda: now[0])
    monkeypatch.setattr(protocol, "train", train_taking_100_s)
    result = run_protocol(planned, tmp_path / "run", budget_s=350, progress=False)
    assert sorted(p.name for p in (tmp_path / "run").glob("fold_*")) == [
        "fold_0",
        "fold_1",
        "fold_2",
    ]
    choices = load_checkpoint(result.checkpoint).metadata.train_config["choices"]
    assert "stopped after 3: the budget" in choices["folds"]
    assert "over 3 folds" in choices["epochs"] and result.seconds == 300.0


def history(run: Path) -> list[dict]:
    return json.loads((run / "history.json").read_text())


@pytest.mark.skipif(not HAS_AEON, reason='aeon is not installed (pip install -e ".[aeon]")')
def test_larnn_train_on_a_ragged_ts_file_just_works(tmp_path, capsys):
    """JapaneseVowels (lengths 7..26) with the default protocol: no batch norm is chosen,
    MiniRocket is scored beside it, and the verdict is printed."""
    from test_train_files import aeon_pair

    train_file = aeon_pair(tmp_path, "JapaneseVowels")
    args = ["--epochs", "1", "--set", "model.hidden_size=8", "--set", "model.heads=2"]
    assert main(["train", "--dataset", str(train_file), "--out", str(tmp_path / "r"), *args]) == 0
    printed = capsys.readouterr().out
    assert "stem.patch: series of up to 26 samples" in printed
    assert "reference:  accuracy" in printed and "MiniRocket" in printed
    assert "learn" in printed.splitlines()[-1]
    meta = load_checkpoint(tmp_path / "r" / "checkpoint").metadata
    assert meta.metrics["reference"]["method"].startswith("MiniRocket")
    assert meta.train_config["model"]["kv_norm"] != "batch"
