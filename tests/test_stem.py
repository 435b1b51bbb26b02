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
    each convolution reads its sample (or block) and the k-1 before it (zeros before the
    start); with a pool, the first layer's output is cut into blocks of `pool` samples, and
    each block keeps each feature's maximum."""
    z = series.double()  # (T, C)
    Q, P = stem.config.pool, stem.config.patch
    for layer, (conv, norm) in enumerate(zip(stem.convs, stem.norms, strict=True)):
        T = len(z)
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
        if layer == 0 and Q > 1:
            z = torch.stack([z[u * Q : (u + 1) * Q].max(dim=0).values for u in range(-(-T // Q))])
    R, T = P // Q, len(z)  # R blocks per patch
    return torch.stack([z[j * R : (j + 1) * R].max(dim=0).values for j in range(-(-T // R))])


def trained_stem(patch: int, seed: int = 0, pool: int = 1) -> ConvStem:
    """A stem whose batch norms hold running statistics other than the initial ones."""
    torch.manual_seed(seed)
    stem = ConvStem(C, StemConfig(width=W, kernels=[3, 2], patch=patch, pool=pool))
    stem.train()
    with torch.no_grad():
        for _ in range(3):
            stem(torch.randn(5, 13, C) * 2 + 1)
    return stem.eval()


@pytest.mark.parametrize(
    "patch, pool", [(1, 1), (2, 1), (4, 1), (26, 1), (4, 2), (6, 3), (4, 4), (26, 13)]
)
def test_the_stem_equals_its_loop_reference_on_a_ragged_batch(patch, pool):
    stem = trained_stem(patch, pool=pool)
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


@pytest.mark.parametrize("patch, pool", [(3, 1), (6, 3)])
def test_the_stem_is_causal(patch, pool):
    stem = trained_stem(patch, pool=pool)
    x = torch.randn(1, 4 * patch, C)
    later = x.clone()
    later[:, 2 * patch + 1 :] = torch.randn(1, 2 * patch - 1, C) * 5  # steps 0, 1 keep theirs
    with torch.no_grad():
        a, _ = stem(x)
        b, _ = stem(later)
    torch.testing.assert_close(a[:, :2], b[:, :2], rtol=0, atol=0)
    assert not torch.allclose(a[:, 2:], b[:, 2:])


def test_a_pooled_stem_reads_its_receptive_field_and_no_further():
    """A feature of block u reads the samples of its receptive field that end at the block's
    last sample: a change just before them leaves the step alone, one inside moves it."""
    config = StemConfig(width=W, kernels=[3, 2], patch=4, pool=2)
    torch.manual_seed(0)
    stem = ConvStem(C, config).eval()
    assert config.receptive_field == 2 + 2 + 2 * 1  # pool, first kernel - 1, pool x (2 - 1)
    x = torch.randn(1, 16, C)
    with torch.no_grad():
        # step 3 covers samples 12..15; its block 7 (14, 15) reads back to sample 15 - 5 = 10
        # and block 6 (12, 13) to 8; so step 3 reads samples 8..15.
        for sample, moves in ((7, False), (8, True)):
            changed = x.clone()
            changed[:, sample] += 10
            same = torch.equal(stem(x)[0][:, 3], stem(changed)[0][:, 3])
            assert same != moves, sample


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


@pytest.mark.parametrize("architecture", ["larnn", "lstm"])
def test_a_residual_stem_adds_its_features_to_the_encoder_output(architecture):
    """The head reads the mean over steps of the encoder's output plus the stem's features,
    on a ragged batch: each series' own steps only."""
    model = classifier(architecture, StemConfig(width=8, kernels=[3], patch=2, residual=True))
    model.eval()
    series, padded, lengths = ragged_batch()
    with torch.no_grad():
        logits = model(padded, lengths).logits
        for b, values in enumerate(series):
            features, _ = model.stem(values[None])  # (1, S, 8)
            if architecture == "larnn":
                hidden, _ = reference_stack(model.encoder, features)  # step by step
            else:
                hidden, _ = model.encoder(features)
            expected = model.head((hidden + features).mean(dim=1))[0]
            torch.testing.assert_close(logits[b], expected, rtol=1e-5, atol=1e-5)


def test_a_residual_stem_must_match_the_hidden_size():
    with pytest.raises(ConfigError, match="width must equal the hidden size"):
        classifier("larnn", StemConfig(width=W, kernels=[3], patch=2, residual=True))


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
        ({"patch": 6, "pool": 4}, "StemConfig.pool"),
        ({"patch": 4, "pool": 2, "kernels": [3]}, "StemConfig.pool"),
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
