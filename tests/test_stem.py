"""The input stem (larnn.stem) against a per-sample, per-step reference written with loops;
its causality, its blindness to padding, the identity (no stem) against larnn.reference, and
the masked batch norm against torch's BatchNorm1d."""

from __future__ import annotations

import math

import pytest
import torch
from test_variable_length import LENGTHS, C, ragged_batch

from larnn.baseline import LSTMConfig
from larnn.classifier import ClassifierConfig, SequenceClassifier
from larnn.errors import ConfigError
from larnn.model import InferenceKnobs, LARNNConfig
from larnn.reference import reference_stack
from larnn.stem import ConvStem, MaskedBatchNorm, StemConfig, patch_span, stem_steps

W, CLASSES = 6, 4


def stem_reference(stem: ConvStem, series: torch.Tensor) -> torch.Tensor:
    """One series (T, C) through `stem` in eval, sample by sample and patch by patch:
    each convolution reads its sample and the k-1 before it (zeros before the start)."""
    z = series.double()  # (T, C)
    T = len(z)
    for conv, norm in zip(stem.convs, stem.norms, strict=True):
        k = conv.kernel_size[0]
        weight, bias = conv.weight.double(), conv.bias.double()  # (W, C_in, k), (W,)
        out = torch.zeros(T, weight.shape[0], dtype=torch.float64)
        for t in range(T):
            for j in range(k):  # tap j reads sample t - (k - 1 - j)
                s = t - (k - 1 - j)
                if s >= 0:
                    out[t] += weight[:, :, j] @ z[s]
            out[t] += bias
        mean, var = norm.running_mean.double(), norm.running_var.double()
        scale = norm.weight.double() / torch.sqrt(var + norm.eps)
        z = torch.relu((out - mean) * scale + norm.bias.double())
    P = stem.config.patch
    steps = math.ceil(T / P)
    return torch.stack([z[j * P : min((j + 1) * P, T)].max(dim=0).values for j in range(steps)])


def trained_stem(patch: int, seed: int = 0) -> ConvStem:
    """A stem whose batch norms hold running statistics other than the initial ones."""
    torch.manual_seed(seed)
    stem = ConvStem(C, StemConfig(width=W, kernels=[3, 2], patch=patch))
    stem.train()
    with torch.no_grad():
        for _ in range(3):
            stem(torch.randn(5, 13, C) * 2 + 1)
    return stem.eval()


@pytest.mark.parametrize("patch", [1, 2, 4, 26])
def test_the_stem_equals_its_loop_reference_on_a_ragged_batch(patch):
    stem = trained_stem(patch)
    series, padded, lengths = ragged_batch()
    with torch.no_grad():
        z, steps = stem(padded, lengths)
    assert steps.tolist() == [math.ceil(n / patch) for n in LENGTHS]
    assert z.shape == (len(LENGTHS), math.ceil(max(LENGTHS) / patch), W)
    for b, values in enumerate(series):
        expected = stem_reference(stem, values)  # (S_b, W)
        torch.testing.assert_close(z[b, : steps[b]].double(), expected, rtol=1e-5, atol=1e-5)
        if patch > 1:  # past a series' steps the encoder reads zeros
            assert torch.all(z[b, steps[b] :] == 0)


def test_the_stem_is_causal():
    stem = trained_stem(patch=3)
    x = torch.randn(1, 12, C)
    later = x.clone()
    later[:, 7:] = torch.randn(1, 5, C) * 5  # samples 7.. change: steps 0, 1 (samples 0..5) not
    with torch.no_grad():
        a, _ = stem(x)
        b, _ = stem(later)
    torch.testing.assert_close(a[:, :2], b[:, :2], rtol=0, atol=0)
    assert not torch.allclose(a[:, 2:], b[:, 2:])


@pytest.mark.parametrize("architecture", ["larnn", "lstm"])
@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
def test_padding_changes_nothing_at_real_steps(architecture, training):
    """A ragged batch gives each series the logits of the same batch cut at its length (train
    mode: the masked batch norm sees the same real steps), and a series padded alone its
    unpadded logits."""
    model = classifier(architecture, StemConfig(width=W, kernels=[3, 2], patch=3))
    model.train(training)
    series, padded, lengths = ragged_batch()
    torch.manual_seed(1)
    logits = model(padded, lengths).logits
    longer = torch.cat([padded, torch.zeros(len(LENGTHS), 5, C)], dim=1)  # more padding
    torch.manual_seed(1)
    torch.testing.assert_close(model(longer, lengths).logits, logits, rtol=1e-6, atol=1e-6)
    if not training:
        for b, values in enumerate(series):
            alone = model(values[None]).logits[0]
            torch.testing.assert_close(alone, logits[b], rtol=1e-5, atol=1e-5)


def classifier(architecture: str, stem: StemConfig | None) -> SequenceClassifier:
    torch.manual_seed(0)
    encoder = (
        LARNNConfig(C, 8, heads=2, window=3, kv_norm="layer", positional_encoding=True)
        if architecture == "larnn"
        else LSTMConfig(C, 8)
    )
    return SequenceClassifier(ClassifierConfig.build(encoder, CLASSES, "mean", stem=stem))


def test_without_a_stem_the_classifier_is_the_reference_cell_and_a_head():
    """The identity stem: the encoder reads the channels themselves, as before stems."""
    model = classifier("larnn", None).eval()
    assert model.stem is None and model.config.patch == 1
    x = torch.randn(2, 9, C)
    with torch.no_grad():
        hidden, _ = reference_stack(model.encoder, x)  # (B, T, H), step by step
        expected = model.head(hidden.mean(dim=1))  # the mean readout
        torch.testing.assert_close(model(x).logits, expected, rtol=1e-5, atol=1e-5)


def test_with_a_stem_the_encoder_reads_the_stem_output():
    model = classifier("larnn", StemConfig(width=W, kernels=[3], patch=2)).eval()
    assert model.config.encoder_config().input_size == W and model.config.input_size == C
    x = torch.randn(2, 9, C)
    with torch.no_grad():
        features, _ = model.stem(x)  # (B, 5, W)
        hidden, _ = reference_stack(model.encoder, features)
        torch.testing.assert_close(
            model(x).logits, model.head(hidden.mean(dim=1)), rtol=1e-5, atol=1e-5
        )


def test_masked_batch_norm_equals_batch_norm_when_every_step_is_real():
    torch.manual_seed(0)
    masked, plain = MaskedBatchNorm(W), torch.nn.BatchNorm1d(W)
    plain.load_state_dict(masked.state_dict())
    z = torch.randn(3, W, 7) * 3 + 2
    out = masked(z, torch.ones(3, 7, dtype=torch.bool))
    torch.testing.assert_close(out, plain(z), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(masked.running_mean, plain.running_mean)
    torch.testing.assert_close(masked.running_var, plain.running_var)


def test_masked_batch_norm_statistics_skip_padded_steps():
    norm = MaskedBatchNorm(2, momentum=1.0)  # running statistics = the last batch's
    z = torch.tensor([[[1.0, 3.0, 100.0]], [[5.0, 7.0, -50.0]]]).expand(2, 2, 3).clone()
    real = torch.tensor([[True, True, False], [True, True, False]])
    norm(z, real)
    torch.testing.assert_close(norm.running_mean, torch.full((2,), 4.0))  # of 1, 3, 5, 7
    torch.testing.assert_close(norm.running_var, torch.full((2,), 20 / 3))  # unbiased


def test_steps_and_spans_cover_the_series():
    assert stem_steps(torch.tensor([1, 4, 5, 8]), 4).tolist() == [1, 1, 2, 2]
    assert [patch_span(j, 4, 10) for j in range(3)] == [(0, 4), (4, 8), (8, 10)]


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"patch": 0}, "StemConfig.patch"),
        ({"width": 2.5}, "StemConfig.width"),
        ({"kernels": []}, "StemConfig.kernels"),
        ({"kernels": [3, 0]}, "StemConfig.kernels"),
    ],
)
def test_a_bad_stem_is_named(fields, message):
    with pytest.raises(ConfigError, match=message):
        StemConfig(**fields)
    with pytest.raises(ConfigError, match=message):
        ClassifierConfig("lstm", {"hidden_size": 8}, CLASSES, C, stem=fields)


def test_a_patched_model_speaks_in_samples():
    """Per-step logits and the attention record have a row per sample, that of the encoder
    step whose patch holds it; a slot's time is its patch's first sample; hiding a sample
    hides its patch's cell state, exactly as hiding that encoder step."""
    P = 3
    model = classifier("larnn", StemConfig(width=W, kernels=[3, 2], patch=P)).eval()
    x = torch.randn(1, 10, C)  # 10 samples -> 4 encoder steps
    with torch.no_grad():
        out = model(x, return_attention=True, all_steps=True)
        features, _ = model.stem(x)  # (1, 4, W)
        _, _, record = model.encoder(features, return_attention=True)  # by encoder step
        hidden, _ = model.encoder(features)
    step = torch.arange(10) // P  # (10,)
    assert out.step_logits.shape == (1, 10, CLASSES)
    running = hidden.cumsum(dim=1) / torch.arange(1, 5)[:, None]  # the mean readout
    torch.testing.assert_close(out.step_logits, model.head(running)[:, step])
    torch.testing.assert_close(out.attention.weights[0], record.weights[0][:, step])
    expected = torch.where(record.slot_time >= 0, record.slot_time * P, -1)[step]
    assert torch.equal(out.attention.slot_time, expected)
    assert out.attention.slot_time[9].tolist() == [0, 3, 6]  # sample 9: patches 0, 1, 2 held
    with torch.no_grad():
        by_sample = model(x, knobs=InferenceKnobs(hidden_steps=[4]), all_steps=True)
        by_step = model.head(model.encoder(features, knobs=InferenceKnobs(hidden_steps=[1]))[0])
    torch.testing.assert_close(by_sample.step_logits[0, -1], by_step.cumsum(1)[0, -1] / 4)
    assert not torch.allclose(by_sample.logits, out.logits)  # the hidden patch mattered
