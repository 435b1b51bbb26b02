"""refit_epochs: the epoch count chosen on the mean validation curve of several runs."""

from __future__ import annotations

import json
import shlex

import numpy as np
import pytest

from larnn.checkpoint import load_checkpoint
from larnn.cli import main
from larnn.errors import ConfigError
from larnn.refit_epochs import choose_refit_epochs
from larnn.train import TrainConfig, with_overrides

BASE = TrainConfig(
    dataset="probe:cue_shape",
    model={"hidden_size": 8, "heads": 2, "window": 6},
    epochs=4,
    patience=4,
    batch_size=32,
    probe_sizes=[96, 48, 48],
    probe_length=32,
)


def _fake_run(folder, config, accuracies, losses=None):
    """A run folder as `larnn train` leaves it: its config and per-epoch history."""
    folder.mkdir(parents=True)
    losses = losses if losses is not None else [1.0] * len(accuracies)
    rows = [
        {"epoch": e + 1, "loss": 0.5, "val_accuracy": a, "val_loss": v}
        for e, (a, v) in enumerate(zip(accuracies, losses, strict=True))
    ]
    (folder / "train_config.json").write_text(config.to_json())
    (folder / "history.json").write_text(json.dumps(rows))
    return folder


def _reference_choice(curves, losses):
    """Slow and plain: the epoch of the highest mean accuracy, ties to the lowest mean loss."""
    accuracy, loss = np.mean(curves, axis=0), np.mean(losses, axis=0)
    order = sorted(range(len(accuracy)), key=lambda e: (-accuracy[e], loss[e], e))
    return order[0] + 1


def test_the_chosen_epoch_is_the_best_of_the_mean_curve_not_of_any_one_run(tmp_path):
    curves = [[0.5, 0.9, 0.6, 0.7], [0.5, 0.5, 0.8, 0.7], [0.6, 0.5, 0.8, 0.8]]
    runs = [
        _fake_run(tmp_path / f"s{seed}", with_overrides(BASE, {"seed": seed}), curve)
        for seed, curve in enumerate(curves)
    ]
    choice = choose_refit_epochs(runs)
    assert choice.epochs == 3 == _reference_choice(curves, np.ones((3, 4)))  # no run peaks alone
    assert choice.mean_val_accuracy == pytest.approx(np.mean(curves, axis=0).tolist())
    assert choice.seeds == [0, 1, 2] and len(choice.mean_val_accuracy) == 4


def test_a_tie_in_mean_accuracy_goes_to_the_lower_mean_loss(tmp_path):
    curves = [[0.8, 0.9, 0.9, 0.7], [0.8, 0.7, 0.7, 0.7]]
    losses = [[0.5, 0.4, 0.3, 0.4], [0.5, 0.4, 0.4, 0.4]]
    runs = [
        _fake_run(tmp_path / f"s{seed}", with_overrides(BASE, {"seed": seed}), c, v)
        for seed, (c, v) in enumerate(zip(curves, losses, strict=True))
    ]
    assert choose_refit_epochs(runs).epochs == 3 == _reference_choice(curves, losses)


def test_the_latest_count_within_a_standard_error_of_the_best(tmp_path):
    """A plateau: the best mean (epoch 2) is an accident of noisy runs; the latest epoch whose
    mean is within one standard error of it (over the runs, at epoch 2) is chosen."""
    curves = [[0.2, 0.9, 0.7, 0.8, 0.4], [0.3, 0.7, 0.8, 0.8, 0.5], [0.1, 0.8, 0.8, 0.7, 0.4]]
    runs = [
        _fake_run(tmp_path / f"s{seed}", with_overrides(BASE, {"seed": seed, "epochs": 5}), c)
        for seed, c in enumerate(curves)
    ]
    choice = choose_refit_epochs(runs, latest_within_error=True)
    error = np.std([0.9, 0.7, 0.8], ddof=1) / np.sqrt(3)  # 0.0577
    mean = np.mean(curves, axis=0)  # 0.2, 0.8, 0.767, 0.767, 0.433
    within = [e + 1 for e in range(5) if mean[e] >= mean[1] - error]
    assert choice.best_epochs == 2 and choice.standard_error == pytest.approx(error)
    assert choice.epochs == within[-1] == 4  # not 5: the curve fell there
    assert choose_refit_epochs(runs).epochs == 2  # the default rule: the best


def test_runs_may_differ_in_seed_patience_and_device_only(tmp_path):
    curve = [0.5, 0.6, 0.7, 0.6]
    a = _fake_run(tmp_path / "a", BASE, curve)
    b = _fake_run(tmp_path / "b", with_overrides(BASE, {"seed": 1, "patience": 9}), curve)
    c = _fake_run(tmp_path / "c", with_overrides(BASE, {"seed": 2, "device": "cpu"}), curve)
    assert choose_refit_epochs([a, b, c]).epochs == 3
    d = _fake_run(tmp_path / "d", with_overrides(BASE, {"seed": 3, "lr": 0.01}), curve)
    with pytest.raises(ConfigError, match=r"differs from .* in more than its seed: \['lr'\]"):
        choose_refit_epochs([a, d])


@pytest.mark.parametrize(
    "second, expected",
    [
        ({"seed": 0}, "repeat a seed and fold"),
        ({"seed": 1, "refit": True}, "refit run trains on its validation part"),
        ({"seed": 1, "epochs": 5, "curve": [0.5, 0.6, 0.7]}, "trained 3 of its 5 epochs"),
        ({"seed": 1, "history": "[{'epoch': 1}"}, "not a training history"),
        ({"seed": 1, "history": '[{"epoch": 1}]'}, "not a training history"),
        ({"seed": 1, "history": None}, "no history.json"),
    ],
)
def test_bad_runs_are_named(tmp_path, second, expected):
    curve = [0.5, 0.6, 0.7, 0.6]
    first = _fake_run(tmp_path / "first", BASE, curve)
    second = dict(second)
    history = second.pop("history", "keep")
    other_curve = second.pop("curve", curve)
    other = _fake_run(tmp_path / "second", with_overrides(BASE, second), other_curve)
    if history is None:
        (other / "history.json").unlink()
    elif history != "keep":
        (other / "history.json").write_text(history)
    with pytest.raises(ConfigError, match=expected):
        choose_refit_epochs([first, other])


def test_one_run_is_not_a_choice_over_splits(tmp_path):
    with pytest.raises(ConfigError, match="at least 2 runs, got 1"):
        choose_refit_epochs([_fake_run(tmp_path / "a", BASE, [0.5] * 4)])


def test_cli_chooses_from_trained_runs_and_its_refit_command_runs(tmp_path, capsys, monkeypatch):
    config_file = tmp_path / "config.json"
    config_file.write_text(BASE.to_json())
    runs = [tmp_path / f"run_s{seed}" for seed in (0, 1)]
    for seed, run in enumerate(runs):
        args = ["train", "--config", str(config_file), "--seed", str(seed), "--out", str(run)]
        assert main(args) == 0
    capsys.readouterr()
    assert main(["refit-epochs", *map(str, runs)]) == 0
    printed = capsys.readouterr().out
    histories = [json.loads((run / "history.json").read_text()) for run in runs]
    curves = [[row["val_accuracy"] for row in h] for h in histories]
    losses = [[row["val_loss"] for row in h] for h in histories]
    chosen = _reference_choice(curves, losses)
    assert f"{chosen:5d}" in printed.split("<- chosen")[0].splitlines()[-1]
    assert main(["refit-epochs", "--epochs-only", *map(str, runs)]) == 0
    assert capsys.readouterr().out == f"{chosen}\n"
    command = shlex.split(printed.strip().splitlines()[-1].replace("REFIT_FOLDER", "refit"))
    assert command[:2] == ["larnn", "train"]
    monkeypatch.chdir(tmp_path)
    assert main(command[1:]) == 0
    refit = load_checkpoint(tmp_path / "refit" / "checkpoint")
    assert refit.metadata.train_config["refit"] is True
    assert refit.metadata.train_config["epochs"] == chosen
    assert len(json.loads((tmp_path / "refit" / "history.json").read_text())) == chosen
