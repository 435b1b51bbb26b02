"""Training: a tiny run end to end, resume after an interruption, config validation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import larnn.evaluate as evaluate_module
import larnn.train as train_module
from larnn.checkpoint import load_checkpoint
from larnn.cli import main
from larnn.errors import ConfigError
from larnn.evaluate import evaluate_checkpoint
from larnn.train import TrainConfig, train, with_overrides

TINY = TrainConfig(
    architecture="larnn",
    dataset="probe:cue_shape",
    model={"hidden_size": 8, "heads": 2, "window": 6},
    epochs=3,
    batch_size=32,
    probe_sizes=[96, 48, 48],
    probe_length=32,
)


def test_tiny_run_writes_a_checkpoint_whose_metrics_reproduce(tmp_path):
    result = train(TINY, tmp_path / "run", progress=False)
    checkpoint = load_checkpoint(result.checkpoint)
    metrics = checkpoint.metadata.metrics
    assert metrics["test"]["accuracy"] == pytest.approx(result.test.accuracy)
    again = evaluate_checkpoint(checkpoint, "test")
    assert again.accuracy == pytest.approx(metrics["test"]["accuracy"], abs=1e-9)
    assert evaluate_checkpoint(checkpoint, "val").accuracy == pytest.approx(
        metrics["val"]["accuracy"], abs=1e-9
    )
    assert checkpoint.metadata.train_config["best_epoch"] >= 1
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2, 3]


@pytest.mark.parametrize("ema_decay", [0.0, 0.9])
def test_interrupted_run_resumes_to_the_same_model(tmp_path, monkeypatch, ema_decay):
    config = with_overrides(TINY, {"ema_decay": ema_decay})  # the weight average resumes too
    whole = train(config, tmp_path / "whole", progress=False)

    real_epoch = train_module.train_epoch

    def interrupted(model, optimizer, x, y, config, epoch, *rest):
        if epoch == 2:
            raise KeyboardInterrupt
        return real_epoch(model, optimizer, x, y, config, epoch, *rest)

    monkeypatch.setattr(train_module, "train_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "cut", progress=False)
    monkeypatch.setattr(train_module, "train_epoch", real_epoch)
    with pytest.raises(ConfigError, match="--resume"):
        train(config, tmp_path / "cut", progress=False)
    resumed = train(config, tmp_path / "cut", progress=False, resume=True)

    a = load_checkpoint(whole.checkpoint).model.state_dict()
    b = load_checkpoint(resumed.checkpoint).model.state_dict()
    for name in a:
        torch.testing.assert_close(a[name], b[name], msg=name)
    assert resumed.test.accuracy == whole.test.accuracy


def test_lstm_baseline_trains_through_the_same_path(tmp_path):
    with pytest.raises(ConfigError, match="LSTMConfig: unknown field"):
        with_overrides(TINY, {"architecture": "lstm"})  # heads/window mean nothing to an LSTM
    config = TrainConfig.from_dict(
        {**TINY.to_dict(), "architecture": "lstm", "epochs": 1, "model": {"hidden_size": 8}}
    )
    result = train(config, tmp_path / "lstm", progress=False)
    assert load_checkpoint(result.checkpoint).architecture == "lstm"
    assert 0.0 <= result.test.accuracy <= 1.0


@pytest.mark.parametrize(
    "change, field",
    [
        ({"epochs": 0}, "TrainConfig.epochs"),
        ({"model": {"hidden_size": 10, "heads": 3}}, "LARNNConfig.heads"),
        ({"model": {"input_size": 3, "hidden_size": 8}}, "TrainConfig.model"),
        ({"probe_sizes": [10, 10]}, "TrainConfig.probe_sizes"),
        ({"optimizer": "sgd"}, "TrainConfig.optimizer"),
        ({"ema_decay": 1.0}, "TrainConfig.ema_decay"),
    ],
)
def test_config_errors_name_the_field(change, field):
    with pytest.raises(ConfigError, match=field):
        TrainConfig.from_dict({**TINY.to_dict(), **change})


CONFIG_FILES = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.json"))


@pytest.mark.parametrize("path", CONFIG_FILES, ids=[path.name for path in CONFIG_FILES])
def test_every_config_file_is_a_valid_train_config(path):
    """The files the README and scripts train from: every field known and valid."""
    text = path.read_text()
    assert TrainConfig.from_json(text).to_dict() == {**TrainConfig().to_dict(), **json.loads(text)}


def test_cli_train_then_evaluate(tmp_path, capsys):
    config_file = tmp_path / "config.json"
    config_file.write_text(TINY.to_json())
    out = tmp_path / "cli"
    assert (
        main(
            [
                "train",
                "--config",
                str(config_file),
                "--epochs",
                "1",
                "--out",
                str(out),
                "--set",
                "model.window=4",
            ]
        )
        == 0
    )
    report_file = tmp_path / "report.json"
    assert main(["evaluate", str(out / "checkpoint"), "--json", str(report_file)]) == 0
    printed = capsys.readouterr().out
    assert "macro-F1" in printed and "confusion" in printed
    report = json.loads(report_file.read_text())
    assert np.array(report["confusion"]).sum() == TINY.probe_sizes[2]
    assert main(["train", "--out", str(out), "--set", "nonsense"]) == 2
    assert "key=value" in capsys.readouterr().err


def test_a_refit_run_prints_no_validation_score_for_data_it_trained_on(tmp_path, capsys):
    """Issue 29: a refit run printed "validation accuracy" (per epoch: "val acc") for the
    validation part it trains on."""
    config_file = tmp_path / "config.json"
    config_file.write_text(TINY.to_json())
    out = tmp_path / "refit"
    args = ["train", "--config", str(config_file), "--epochs", "2", "--out", str(out)]
    assert main([*args, "--set", "refit=true", "--protocol", "single"]) == 0
    printed = capsys.readouterr().out
    assert "val acc" not in printed and "validation:" not in printed, printed
    assert "refit: no validation score" in printed and "test:" in printed
    assert main([*args[:-1], str(tmp_path / "plain"), "--protocol", "single"]) == 0
    printed = capsys.readouterr().out
    assert "val acc" in printed and "validation: accuracy" in printed


def test_label_smoothing_and_augmentation_are_options_off_by_default(tmp_path):
    assert TINY.label_smoothing == 0 and TINY.augment == {}
    config = with_overrides(
        TINY,
        {"label_smoothing": 0.1, "augment.rotation": 30.0, "augment.jitter": 0.05},
    )
    assert config.augment == {"rotation": 30.0, "jitter": 0.05}
    first = train(config, tmp_path / "a", progress=False)
    again = train(config, tmp_path / "b", progress=False)
    plain = train(TINY, tmp_path / "plain", progress=False)
    assert first.val.accuracy == again.val.accuracy  # seeded: the same augmented batches
    weights = {
        name: load_checkpoint(run.checkpoint).model.state_dict()
        for name, run in (("first", first), ("again", again), ("plain", plain))
    }
    for key, value in weights["first"].items():
        torch.testing.assert_close(value, weights["again"][key])
    assert any(
        not torch.equal(value, weights["plain"][key]) for key, value in weights["first"].items()
    )


def test_augmentation_and_smoothing_are_validated():
    with pytest.raises(ConfigError, match="TrainConfig.augment: AugmentConfig.rotation"):
        with_overrides(TINY, {"augment.rotation": 500})
    with pytest.raises(ConfigError, match="TrainConfig.augment"):
        with_overrides(TINY, {"augment.shear": 1})
    with pytest.raises(ConfigError, match="label_smoothing"):
        with_overrides(TINY, {"label_smoothing": 1.0})


def test_augmented_batches_keep_padding_at_zero():
    from larnn.data import Normalizer
    from larnn.data.augment import AugmentConfig
    from larnn.train import Augmentation

    normalizer = Normalizer(mean=(1.0, -2.0, 0.5), std=(2.0, 1.0, 0.5))
    augmentation = Augmentation(
        AugmentConfig(rotation=90, scale=0.2, jitter=0.1),
        [(0, 1, 2)],
        torch.tensor(normalizer.mean),
        torch.tensor(normalizer.std),
    )
    x = torch.randn(4, 10, 3)
    lengths = torch.tensor([10, 7, 3, 1])
    out = augmentation(x, lengths, torch.Generator().manual_seed(0))
    for b, n in enumerate(lengths.tolist()):
        assert torch.all(out[b, n:] == 0) and not torch.allclose(out[b, :n], x[b, :n])


def test_refit_trains_on_training_and_validation_for_the_given_epochs(tmp_path, monkeypatch):
    seen = []
    real_epoch = train_module.train_epoch

    def counting(model, optimizer, inputs, y, config, epoch, *rest):
        seen.append(len(y))
        return real_epoch(model, optimizer, inputs, y, config, epoch, *rest)

    monkeypatch.setattr(train_module, "train_epoch", counting)
    config = with_overrides(TINY, {"refit": True, "epochs": 3, "patience": 1})
    result = train(config, tmp_path / "refit", progress=False)
    train_size, val_size = TINY.probe_sizes[0], TINY.probe_sizes[1]
    assert seen == [train_size + val_size] * 3  # every epoch, no early stop, both parts
    metadata = load_checkpoint(result.checkpoint).metadata
    assert set(metadata.metrics) == {"test", "majority"}  # no validation score: training data
    assert metadata.train_config["refit"] is True
    report = evaluate_checkpoint(result.checkpoint, "test")
    assert report.accuracy == pytest.approx(metadata.metrics["test"]["accuracy"], abs=1e-9)


def test_the_weight_average_is_the_moving_average_of_every_steps_weights(tmp_path):
    """ema_decay d: after each optimiser step w_k, e_1 = w_1 and e_k = d e_(k-1) + (1 - d) w_k,
    computed here by hand from the weights each step left; training scores and saves e."""
    assert TINY.ema_decay == 0  # off by default
    config = with_overrides(TINY, {"ema_decay": 0.8, "epochs": 1})
    task = train_module.load_task(config.dataset, config.split_definition())
    normalizer = train_module.Normalizer.fit(task.train.X, task.train.lengths)
    x, y, lengths = evaluate_module.as_tensors(task.train, normalizer, torch.device("cpu"))
    torch.manual_seed(0)
    encoder = config.encoder_config(channels=x.shape[2])
    model = train_module.SequenceClassifier(
        train_module.ClassifierConfig.build(encoder, task.train.n_classes)
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr)
    steps: list[dict[str, torch.Tensor]] = []
    optimizer.register_step_post_hook(
        lambda *_: steps.append({k: v.detach().clone() for k, v in model.state_dict().items()})
    )
    average = train_module.weight_average(model, config.ema_decay)
    inputs = train_module.PaddedInputs(x, lengths, None)
    train_module.train_epoch(model, optimizer, inputs, y, config, 0, False, average)
    assert len(steps) == -(-len(y) // config.batch_size) > 1
    floats = [k for k, v in steps[0].items() if v.is_floating_point()]  # not batch counters
    assert {name for name, _ in model.named_parameters()} <= set(floats)
    expected = {k: steps[0][k] for k in floats}
    for weights in steps[1:]:
        expected = {k: 0.8 * expected[k] + 0.2 * weights[k] for k in floats}
    averaged = average.module.state_dict()
    for name, value in expected.items():
        torch.testing.assert_close(averaged[name], value, msg=name)
    assert not torch.equal(averaged[name], steps[-1][name])  # not the last step's weights

    result = train(config, tmp_path / "ema", progress=False)
    plain = train(with_overrides(config, {"ema_decay": 0.0}), tmp_path / "plain", progress=False)
    saved = load_checkpoint(result.checkpoint)
    assert saved.metadata.train_config["ema_decay"] == 0.8
    raw = load_checkpoint(plain.checkpoint).model.state_dict()  # the same run's raw weights
    assert any(not torch.equal(v, raw[k]) for k, v in saved.model.state_dict().items())


def test_overrides_reach_every_dict_field_the_stem_too():
    """`--set stem.patch=4` fills TrainConfig.stem as `--set model.window=3` fills .model."""
    config = with_overrides(TINY, {"stem.patch": 4, "model.window": 3, "lr": 0.01})
    assert config.stem == {"patch": 4} and config.model["window"] == 3 and config.lr == 0.01
    assert config.model["hidden_size"] == TINY.model["hidden_size"]  # the rest kept
    with pytest.raises(ConfigError, match="StemConfig.patch"):
        with_overrides(TINY, {"stem.patch": 0})
