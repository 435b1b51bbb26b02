"""The asinh input channels: the feature against math.asinh value by value, the classifier
that feeds them to its encoder, their config checks, checkpoints and a training run."""

from __future__ import annotations

import math

import pytest
import torch
from test_checkpoint import make_metadata
from test_train import TINY
from test_variable_length import LENGTHS, ragged_batch

from larnn.baseline import LSTMConfig
from larnn.checkpoint import load_checkpoint, save_checkpoint
from larnn.classifier import ClassifierConfig, SequenceClassifier
from larnn.errors import ConfigError
from larnn.evaluate import evaluate_checkpoint
from larnn.input_features import encoder_input_size, input_features
from larnn.model import LARNNConfig
from larnn.train import TrainConfig, train, with_overrides

C, HIDDEN, CLASSES, SCALE = 5, 16, 3, 0.05


def test_input_features_equal_math_asinh_value_by_value():
    x = torch.randn(2, 7, 3, dtype=torch.float64) * torch.tensor([0.01, 1.0, 30.0])
    out = input_features(x, SCALE)
    assert out.shape == (2, 7, 6)
    torch.testing.assert_close(out[..., :3], x)
    for b in range(2):
        for t in range(7):
            for c in range(3):
                expected = math.asinh(float(x[b, t, c]) / SCALE)
                assert float(out[b, t, 3 + c]) == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_input_features_are_off_at_scale_zero_and_sizes_invert():
    x = torch.randn(2, 4, 3)
    assert input_features(x, 0.0) is x
    assert encoder_input_size(9, SCALE) == 18 and encoder_input_size(9, 0.0) == 9


def asinh_classifier(architecture: str) -> SequenceClassifier:
    torch.manual_seed(0)
    encoder = (
        LARNNConfig(C, HIDDEN, num_layers=2, heads=4, window=6, batch_first=True)
        if architecture == "larnn"
        else LSTMConfig(C, HIDDEN, num_layers=2, batch_first=True)
    )
    config = ClassifierConfig.build(encoder, CLASSES, "last", asinh_scale=SCALE)
    return SequenceClassifier(config).eval()


@pytest.mark.parametrize("architecture", ["larnn", "lstm"])
def test_the_encoder_reads_each_channel_beside_its_asinh(architecture):
    model = asinh_classifier(architecture)
    assert model.config.input_size == C
    assert model.config.encoder_config().input_size == 2 * C  # derived in the config, once
    series, padded, lengths = ragged_batch()  # C = 5 channels, ragged lengths
    with torch.no_grad():
        logits = model(padded, lengths).logits
        for n, values in enumerate(series):  # by hand: the features, the encoder, the head
            features = torch.cat([values, torch.asinh(values / SCALE)], dim=-1)  # (T_n, 2C)
            hidden = model.encoder(features[None])[0][0]  # (T_n, H)
            expected = model.head(hidden[LENGTHS[n] - 1])
            torch.testing.assert_close(logits[n], expected, rtol=1e-5, atol=1e-5)


def test_the_classifier_refuses_the_encoders_width_as_its_input():
    model = asinh_classifier("lstm")
    with pytest.raises(ValueError, match=rf"\(B, T, {C}\)"):
        model(torch.randn(2, 4, 2 * C))


@pytest.mark.parametrize("bad", [-0.1, math.inf, math.nan, True, "0.05"])
def test_a_bad_asinh_scale_is_named(bad):
    encoder = LSTMConfig(C, HIDDEN, batch_first=True)
    with pytest.raises(ConfigError, match="ClassifierConfig.asinh_scale"):
        ClassifierConfig.build(encoder, CLASSES, asinh_scale=bad)
    with pytest.raises(ConfigError, match="TrainConfig.asinh_scale"):  # before any data loads
        TrainConfig(asinh_scale=bad)


def test_a_checkpoint_keeps_its_scale_and_outputs(tmp_path):
    torch.manual_seed(0)
    encoder = LSTMConfig(3, 8, batch_first=True)
    model = SequenceClassifier(ClassifierConfig.build(encoder, 4, asinh_scale=SCALE)).eval()
    loaded = load_checkpoint(save_checkpoint(tmp_path / "ckpt", model, make_metadata()))
    assert loaded.config.asinh_scale == SCALE and loaded.config.input_size == 3
    x = torch.randn(2, 9, 3)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x).logits, model(x).logits)


def test_a_run_with_asinh_channels_trains_and_reevaluates(tmp_path):
    config = with_overrides(TINY, {"asinh_scale": SCALE})
    result = train(config, tmp_path / "run", progress=False)
    checkpoint = load_checkpoint(result.checkpoint)
    assert checkpoint.config.asinh_scale == SCALE
    assert checkpoint.config.encoder_config().input_size == 2 * checkpoint.config.input_size
    again = evaluate_checkpoint(checkpoint, "test")
    assert again.accuracy == pytest.approx(checkpoint.metadata.metrics["test"]["accuracy"])
