"""The classifier's readout: the last real step's hidden state, or the mean up to it.

Checked against a per-series loop that averages the encoder's hidden states over the real
steps by hand, for both encoders, a ragged batch and the running (per-step) logits."""

from __future__ import annotations

import pytest
import torch
from test_checkpoint import make_metadata
from test_variable_length import LENGTHS, ragged_batch

from larnn.baseline import LSTMConfig
from larnn.checkpoint import from_format_1, load_checkpoint, save_checkpoint
from larnn.classifier import ClassifierConfig, SequenceClassifier
from larnn.errors import ConfigError
from larnn.model import LARNNConfig
from larnn.train import TrainConfig

C, HIDDEN, CLASSES = 5, 16, 3


def mean_classifier(architecture: str) -> SequenceClassifier:
    torch.manual_seed(0)
    encoder = (
        LARNNConfig(C, HIDDEN, num_layers=2, heads=4, window=6, kv_norm="layer", batch_first=True)
        if architecture == "larnn"
        else LSTMConfig(C, HIDDEN, num_layers=2, batch_first=True)
    )
    return SequenceClassifier(ClassifierConfig.build(encoder, CLASSES, "mean")).eval()


@pytest.mark.parametrize("architecture", ["larnn", "lstm"])
def test_mean_readout_is_the_head_on_the_mean_hidden_state(architecture):
    model = mean_classifier(architecture)
    series, padded, lengths = ragged_batch()
    with torch.no_grad():
        out = model(padded, lengths, all_steps=True)
        for n, values in enumerate(series):
            hidden = model.encoder(values[None])[0][0]  # (T_n, H): the top layer's states
            expected = model.head(hidden.mean(dim=0))
            torch.testing.assert_close(out.logits[n], expected, rtol=1e-5, atol=1e-5)
            for t in range(LENGTHS[n]):  # the running prediction: the mean of steps 0..t
                running = model.head(hidden[: t + 1].mean(dim=0))
                torch.testing.assert_close(out.step_logits[n, t], running, rtol=1e-5, atol=1e-5)


def test_mean_and_last_readouts_differ_on_the_same_weights():
    model = mean_classifier("larnn")
    last = SequenceClassifier(ClassifierConfig.build(model.config.encoder_config(), CLASSES))
    last.load_state_dict(model.state_dict())  # the readout adds no parameters
    last.eval()
    _, padded, lengths = ragged_batch()
    with torch.no_grad():
        assert not torch.allclose(model(padded, lengths).logits, last(padded, lengths).logits)


def test_readout_is_checked_and_defaults_to_the_last_step():
    encoder = LSTMConfig(C, HIDDEN, batch_first=True)
    assert ClassifierConfig.build(encoder, CLASSES).readout == "last"
    config = ClassifierConfig.from_dict(
        from_format_1(
            {"architecture": "lstm", "encoder": encoder.to_dict(), "num_classes": CLASSES}
        )
    )  # a checkpoint written before the readout existed
    assert config.readout == "last"
    with pytest.raises(ConfigError, match="readout"):
        ClassifierConfig.build(encoder, CLASSES, "max")
    with pytest.raises(ConfigError, match="readout"):
        TrainConfig(readout="first")


def test_a_mean_readout_checkpoint_loads_with_its_readout(tmp_path):
    torch.manual_seed(0)
    encoder = LSTMConfig(3, 8, batch_first=True)
    model = SequenceClassifier(ClassifierConfig.build(encoder, 4, "mean")).eval()
    loaded = load_checkpoint(save_checkpoint(tmp_path / "ckpt", model, make_metadata()))
    assert loaded.config.readout == "mean"
    x = torch.randn(2, 9, 3)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x).logits, model(x).logits)
