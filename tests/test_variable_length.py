"""Series of different lengths, right-padded: the classifier reads each at its own last real step.

Both encoders are causal, so the padding after a series cannot change its outputs at real
steps. Checked against running each series alone:
  * exactly (bit for bit), for a series padded alone and for the ragged batch against the
    same batch cut at each series' length: padding is the only difference;
  * to float rounding for the ragged batch against each series alone, where the batch size
    also differs (a batch of 5 and a batch of 1 take different matmul kernels).
One exception to "bit for bit": the LSTM. nn.LSTM's input weights and its optional input
projection multiply all B*T rows at once, and the CPU GEMM picks its blocking by row count,
so a series padded alone (26 rows) and unpadded (7 rows) can round differently in the last
bit (1.5e-8 measured: with the projection on an AVX-512 CPU, and without it on an AVX2 one).
The LARNN's loops multiply step by step and stay bit for bit.
Batch norm in training mixes the series of a batch at each step: a ragged batch is refused.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from larnn.baseline import LSTMConfig
from larnn.classifier import ClassifierConfig, SequenceClassifier
from larnn.data import Normalizer, SequenceDataset
from larnn.errors import ConfigError
from larnn.evaluate import predict
from larnn.model import LARNNConfig
from larnn.train import TrainConfig, check_trainable

LENGTHS = (7, 26, 13, 20, 3)
C = 5


def ragged_batch(seed: int = 0) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
    """Series (T_n, C), the zero-padded batch (B, T, C) and lengths (B,)."""
    generator = torch.Generator().manual_seed(seed)
    series = [torch.randn(length, C, generator=generator) for length in LENGTHS]
    padded = torch.zeros(len(LENGTHS), max(LENGTHS), C)  # (B, T, C)
    for n, values in enumerate(series):
        padded[n, : len(values)] = values
    return series, padded, torch.tensor(LENGTHS)


def make_classifier(architecture: str, norm: str = "layer") -> SequenceClassifier:
    """A small LARNN with most options on, the LSTM baseline, or the LSTM with a projection."""
    torch.manual_seed(0)
    if architecture == "larnn":
        encoder = LARNNConfig(
            C,
            16,
            num_layers=2,
            heads=4,
            window=6,
            positional_encoding=True,
            kv_norm=norm,
            hidden_norm=norm,
            stacked_residual=True,
            batch_first=True,
        )
    else:
        projection = 8 if architecture == "lstm+projection" else None
        encoder = LSTMConfig(C, 16, num_layers=2, input_projection=projection, batch_first=True)
    return SequenceClassifier(ClassifierConfig.build(encoder, num_classes=3))


def hidden(model: SequenceClassifier, x: torch.Tensor) -> torch.Tensor:
    return model.encoder(x)[0]  # (B, T, H)


def assert_same(actual: torch.Tensor, expected: torch.Tensor, exact: bool) -> None:
    if exact:
        assert torch.equal(actual, expected), (actual - expected).abs().max()
    else:  # last-bit rounding of a GEMM over a different number of rows (see the module doc)
        torch.testing.assert_close(actual, expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("mode", ["eval", "train"])
@pytest.mark.parametrize("architecture", ["larnn", "lstm", "lstm+projection"])
def test_padding_changes_nothing_at_real_steps(architecture, mode):
    exact = architecture == "larnn"
    model = make_classifier(architecture)
    getattr(model, mode)()
    series, padded, lengths = ragged_batch()
    T = padded.shape[1]
    batch_hidden = hidden(model, padded)  # (B, T, H)
    batch_logits = model(padded, lengths).logits  # (B, classes)
    for n, values in enumerate(series):
        length = len(values)
        alone = hidden(model, values[None])[0]  # (T_n, H)
        alone_logits = model(values[None]).logits[0]
        # Padded alone: bit for bit, the hidden states and the logits at the last real step.
        padded_alone = torch.zeros(1, T, C)
        padded_alone[0, :length] = values
        assert_same(hidden(model, padded_alone)[0, :length], alone, exact)
        one = torch.tensor([length])
        assert_same(model(padded_alone, one).logits[0], alone_logits, exact)
        # In the ragged batch: bit for bit against the same batch cut at this length.
        cut = hidden(model, padded[:, :length])  # (B, T_n, H)
        assert_same(batch_hidden[n, :length], cut[n], exact)
        # ... and against the series alone, to float rounding (batch of 5 vs batch of 1).
        torch.testing.assert_close(batch_hidden[n, :length], alone, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(batch_logits[n], alone_logits, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("architecture", ["larnn", "lstm", "lstm+projection"])
def test_padding_changes_no_gradient(architecture):
    """Training on a padded series gives the same gradients as on the series alone."""
    model = make_classifier(architecture).train()
    series, _, _ = ragged_batch()
    values = series[0]  # 7 steps, padded to 26
    padded = torch.zeros(1, max(LENGTHS), C)
    padded[0, : len(values)] = values

    def gradients(*inputs) -> dict[str, torch.Tensor]:
        model.zero_grad(set_to_none=True)
        model(*inputs).logits.square().sum().backward()
        return {name: p.grad.clone() for name, p in model.named_parameters()}

    alone = gradients(values[None])
    with_padding = gradients(padded, torch.tensor([len(values)]))
    for name, grad in alone.items():
        torch.testing.assert_close(with_padding[name], grad, rtol=1e-6, atol=1e-7, msg=name)


def test_batch_norm_reads_padded_series_in_eval_and_refuses_them_in_training():
    model = make_classifier("larnn", norm="batch")
    series, padded, lengths = ragged_batch()
    model.eval()  # running statistics: each series is on its own
    logits = model(padded, lengths).logits
    for n, values in enumerate(series):
        torch.testing.assert_close(logits[n], model(values[None]).logits[0], rtol=1e-5, atol=1e-5)
    model.train()
    with pytest.raises(ConfigError, match="padded steps included.*'layer' or 'none'"):
        model(padded, lengths)
    model(padded[:, :3], torch.full((5,), 3))  # equal lengths: no padding, accepted


def test_lengths_are_checked():
    model = make_classifier("lstm")
    _, padded, _ = ragged_batch()
    with pytest.raises(ValueError, match="lengths must lie in 1..26"):
        model(padded, torch.tensor([0, 26, 13, 20, 3]))
    with pytest.raises(ValueError, match="5 integers"):
        model(padded, torch.tensor([7.0, 26, 13, 20, 3]))


def test_predict_reads_each_series_at_its_last_real_step():
    model = make_classifier("larnn").eval()
    series, padded, lengths = ragged_batch()
    expected = [int(model(values[None]).logits.argmax()) for values in series]
    assert predict(model, padded, lengths, batch_size=2).tolist() == expected


def test_trainer_refuses_a_ragged_training_set_with_batch_norm():
    data = SequenceDataset(
        X=np.zeros((4, 6, 2), dtype=np.float32),
        y=np.array([0, 1, 0, 1]),
        groups=np.arange(4),
        channel_names=("a", "b"),
        class_names=("x", "y"),
        dataset_id="ragged",
        lengths=np.array([6, 2, 3, 6]),
    )
    with pytest.raises(ConfigError, match=r"lengths 2..6.*--set model.kv_norm=layer"):
        check_trainable(TrainConfig(), data)
    check_trainable(TrainConfig(model={"kv_norm": "layer"}), data)
    check_trainable(TrainConfig(architecture="lstm"), data)


def test_normalizer_ignores_padding():
    lengths = np.array([2, 3])
    X = np.array([[[1.0], [3.0], [99.0]], [[5.0], [7.0], [9.0]]], dtype=np.float32)  # (2, 3, 1)
    norm = Normalizer.fit(X, lengths)
    real = np.array([1.0, 3.0, 5.0, 7.0, 9.0])
    assert norm.mean[0] == pytest.approx(real.mean())
    assert norm.std[0] == pytest.approx(real.std())
    out = norm.apply(X, lengths)
    assert out[0, 2, 0] == 0.0  # padding stays zero
    assert out[1, 2, 0] == pytest.approx((9.0 - real.mean()) / real.std())
