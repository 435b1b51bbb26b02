"""Training on labelled files: aeon's shipped UEA sets through `larnn train --dataset PATH`, the
recorded split that `evaluate` rebuilds, a changed file refused, CSV groups, npz, and tune."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from larnn.checkpoint import load_checkpoint
from larnn.cli import main
from larnn.errors import ConfigError, DataError
from larnn.evaluate import evaluate_checkpoint
from larnn.tasks import load_task, make_split
from larnn.train import TrainConfig, train
from larnn.tune import run_study

HAS_AEON = importlib.util.find_spec("aeon") is not None
needs_aeon = pytest.mark.skipif(
    not HAS_AEON, reason='aeon is not installed (pip install -e ".[aeon]"): .ts files need it'
)
TINY_MODEL = {"hidden_size": 8, "heads": 2, "num_layers": 1, "window": 4}
TINY_FLAGS = ["--epochs", "2", "--set", "batch_size=16"] + [
    f"--set=model.{key}={value}" for key, value in TINY_MODEL.items()
]


def aeon_pair(tmp_path: Path, name: str) -> Path:
    """A copy of aeon's shipped NAME_TRAIN.ts and NAME_TEST.ts; returns the train file."""
    import aeon

    source = Path(aeon.__file__).parent / "datasets" / "data" / name
    for part in ("TRAIN", "TEST"):
        shutil.copy(source / f"{name}_{part}.ts", tmp_path / f"{name}_{part}.ts")
    return tmp_path / f"{name}_TRAIN.ts"


@needs_aeon
def test_basic_motions_trains_from_the_cli_and_evaluate_rebuilds_the_parts(tmp_path, capsys):
    train_file = aeon_pair(tmp_path, "BasicMotions")
    out = tmp_path / "run"
    args = ["train", "--dataset", str(train_file), "--out", str(out), "--protocol", "single"]
    assert main([*args, *TINY_FLAGS]) == 0
    printed = capsys.readouterr()
    assert "32 train / 8 validation / 40 test cases, 4 classes, 6 channels, 100 steps" in (
        printed.out + printed.err
    )
    checkpoint = load_checkpoint(out / "checkpoint")
    meta = checkpoint.metadata
    assert meta.dataset_id == "file:BasicMotions_TRAIN.ts"
    assert meta.class_names == ["standing", "running", "walking", "badminton"]
    assert meta.channel_names == [f"dim_{j}" for j in range(6)]
    split = meta.split
    assert split["kind"] == "files" and split["format"] == "ts" and split["by"] == "class"
    assert split["class_names"] == meta.class_names
    files = split["files"]
    assert files["train"]["name"] == "BasicMotions_TRAIN.ts"
    assert files["test"]["name"] == "BasicMotions_TEST.ts"  # found beside the train file
    assert all(len(files[part]["sha256"]) == 64 for part in ("train", "test"))
    assert len(split["val_cases"]) == 8
    task = load_task(meta.dataset_id, split)
    assert np.bincount(task.val.y).tolist() == [2, 2, 2, 2]  # stratified by class
    for part in ("val", "test"):
        again = evaluate_checkpoint(checkpoint, part)
        assert again.accuracy == pytest.approx(meta.metrics[part]["accuracy"], abs=1e-9)

    # Moved: found by name in --data-dir. Changed: refused, saying so.
    moved = tmp_path / "moved"
    moved.mkdir()
    for name in ("BasicMotions_TRAIN.ts", "BasicMotions_TEST.ts"):
        shutil.move(tmp_path / name, moved / name)
    assert main(["evaluate", str(out / "checkpoint"), "--data-dir", str(moved)]) == 0
    assert main(["evaluate", str(out / "checkpoint")]) == 2
    assert "BasicMotions_TRAIN.ts is not at" in capsys.readouterr().err
    with (moved / "BasicMotions_TEST.ts").open("a") as file:
        file.write("\n")
    assert main(["evaluate", str(out / "checkpoint"), "--data-dir", str(moved)]) == 2
    err = capsys.readouterr().err
    assert "BasicMotions_TEST.ts has changed since the model was trained" in err


@needs_aeon
@pytest.mark.parametrize("architecture", ["larnn", "lstm"])
def test_japanese_vowels_of_unequal_lengths_trains(tmp_path, architecture):
    train_file = aeon_pair(tmp_path, "JapaneseVowels")
    model = {**TINY_MODEL, "kv_norm": "layer"} if architecture == "larnn" else {"hidden_size": 8}
    config = TrainConfig(architecture=architecture, dataset=str(train_file), model=model, epochs=1)
    result = train(config, tmp_path / "run", progress=False)
    meta = load_checkpoint(result.checkpoint).metadata
    assert meta.class_names == [str(k) for k in range(1, 10)]
    assert sum(meta.metrics["test"]["confusion"][k][j] for k in range(9) for j in range(9)) == 370
    assert 0.0 <= result.test.accuracy <= 1.0


@needs_aeon
def test_ragged_data_with_batch_norm_is_refused_before_training(tmp_path, capsys):
    """The default protocol picks no batch norm for ragged data; one asked for is refused."""
    train_file = aeon_pair(tmp_path, "JapaneseVowels")
    args = ["train", "--dataset", str(train_file), "--out", str(tmp_path / "r")]
    code = main([*args, *TINY_FLAGS, "--set", "model.kv_norm=batch"])
    assert code == 2
    err = capsys.readouterr().err
    assert "lengths 7..26" in err and "--set model.kv_norm=layer" in err
    assert not (tmp_path / "r" / "checkpoint").exists()


def grouped_csv(path: Path, seed: int = 0) -> Path:
    """12 cases of 2 classes, in 6 groups (subjects), lengths 5..9, channels a and b."""
    rng = np.random.default_rng(seed)
    rows = ["case_id,time,label,group,a,b"]
    for case in range(12):
        label, group = ("left", "right")[case % 2], f"s{case // 2}"
        for t in range(5 + case % 5):
            sign = 1 if label == "left" else -1
            rows.append(f"c{case},{t},{label},{group},{sign + rng.normal():.4f},{rng.normal():.4f}")
    path.write_text("\n".join(rows) + "\n")
    return path


def test_csv_with_groups_holds_out_whole_groups_for_validation_and_test(tmp_path):
    path = grouped_csv(tmp_path / "grouped.csv")
    definition = make_split(str(path), seed=3)
    task = load_task(str(path), definition)
    assert task.split["by"] == "group" and task.split["test_seed"] == 0
    parts = [set(task.part(name).groups.tolist()) for name in ("train", "val", "test")]
    assert len(task.train) + len(task.val) + len(task.test) == 12
    assert not parts[0] & parts[1] and not parts[0] & parts[2] and not parts[1] & parts[2]
    again = load_task(str(path), task.split)  # the recorded definition rebuilds the same parts
    for name in ("train", "val", "test"):
        np.testing.assert_array_equal(again.part(name).X, task.part(name).X)
    other_seed = load_task(str(path), make_split(str(path), seed=4))
    np.testing.assert_array_equal(other_seed.test.X, task.test.X)  # the test part stays put
    result = train(
        TrainConfig(architecture="lstm", dataset=str(path), model={"hidden_size": 4}, epochs=1),
        tmp_path / "run",
        progress=False,
    )
    assert load_checkpoint(result.checkpoint).metadata.split["files"]["train"]["name"] == (
        "grouped.csv"
    )


def test_npz_with_a_separate_test_file_is_stratified_by_class(tmp_path):
    rng = np.random.default_rng(0)
    for name, n in (("train", 40), ("test", 12)):
        y = np.arange(n) % 4
        X = rng.normal(size=(n, 10, 3)) + y[:, None, None]
        np.savez(tmp_path / f"{name}.npz", X=X, y=y, lengths=6 + np.arange(n) % 5)
    config = TrainConfig(
        architecture="larnn",
        dataset=str(tmp_path / "train.npz"),
        test=str(tmp_path / "test.npz"),
        model={**TINY_MODEL, "kv_norm": "none"},
        epochs=2,
        batch_size=8,
    )
    result = train(config, tmp_path / "run", progress=False)
    meta = load_checkpoint(result.checkpoint).metadata
    split = meta.split
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    best = max(history, key=lambda row: (row["val_accuracy"], -row["val_loss"]))
    assert meta.train_config["best_epoch"] == best["epoch"]  # ties go to the lower loss
    assert split["files"]["test"]["name"] == "test.npz" and "test_cases" not in split
    task = load_task(config.dataset, split)
    assert np.bincount(task.val.y).tolist() == [2, 2, 2, 2] and len(task.test) == 12
    assert task.train.is_ragged


def test_a_class_only_in_the_test_file_stops_the_run(tmp_path):
    np.savez(tmp_path / "train.npz", X=np.ones((4, 3, 1)), y=np.array([0, 1, 0, 1]))
    np.savez(tmp_path / "test.npz", X=np.ones((2, 3, 1)), y=np.array([0, 2]))
    config = TrainConfig(dataset=str(tmp_path / "train.npz"), test=str(tmp_path / "test.npz"))
    with pytest.raises(DataError, match=r"class\(es\) '2' appear only in the test file"):
        train(config, tmp_path / "run", progress=False)


def test_tune_accepts_a_file_dataset(tmp_path):
    path = grouped_csv(tmp_path / "grouped.csv")
    base = TrainConfig(
        dataset=str(path), model={"kv_norm": "layer", "hidden_norm": "none"}, epochs=1
    )
    study = run_study(base, tmp_path / "study", 1)
    (trial,) = study.trials
    assert trial.state.name == "COMPLETE", trial.user_attrs.get("error")
    with pytest.raises(ConfigError, match="kv_norm = 'batch'"):
        run_study(TrainConfig(dataset=str(path), epochs=1), tmp_path / "study2", 1)
