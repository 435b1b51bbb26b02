"""Attention and channel importance over a split (larnn.split_attention), each checked against
a slow per-sequence loop over `larnn.inference` and `larnn.faithfulness` on unpadded series."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from larnn import faithfulness as fa
from larnn import split_attention as sa
from larnn.baseline import LSTMConfig
from larnn.classifier import ClassifierConfig, SequenceClassifier
from larnn.data import Normalizer
from larnn.errors import ConfigError
from larnn.inference import attention_frame, infer_sequence, normalised_tensor
from larnn.model import InferenceKnobs, LARNNConfig
from larnn.stem import StemConfig

CLASSES = 3
KNOBS = InferenceKnobs(window=5, kv_activation="tanh", hidden_steps=(3, 4))


def tiny(patch: int = 1, seed: int = 0) -> SequenceClassifier:
    torch.manual_seed(seed)
    encoder = LARNNConfig(
        input_size=3,
        hidden_size=8,
        heads=2,
        window=4,
        max_window=6,
        num_layers=2,
        kv_norm="layer",
        batch_first=True,
    )
    stem = StemConfig(width=6, kernels=[3], patch=patch) if patch > 1 else None
    return SequenceClassifier(ClassifierConfig.build(encoder, CLASSES, stem=stem)).eval()


def split(ragged: bool, n: int = 9, T: int = 23, seed: int = 1):
    """Raw (n, T, 3) series, labels, lengths (None unless ragged: 2..T, padding filled with
    large values that must change nothing) and a normaliser fitted on them."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, T, 3)).astype(np.float32)
    lengths = rng.integers(2, T + 1, size=n) if ragged else None
    if ragged:
        lengths[0] = T
        for i, length in enumerate(lengths):
            X[i, length:] = 1e3
    labels = np.arange(n) % CLASSES
    return X, labels, lengths, Normalizer.fit(X, lengths)


def unpadded(X, lengths, i):
    return X[i] if lengths is None else X[i, : lengths[i]]


def reference(model, X, labels, lengths, normalizer, knobs, patch):
    """Per sequence: `infer_sequence` on the unpadded series, its attention as long tables with
    the lag in encoder steps, entropy and the oldest slot's share step by step."""
    frames, entropy, oldest = [], [], []
    for i in range(len(X)):
        inference = infer_sequence(model, unpadded(X, lengths, i), normalizer, knobs)
        for layer in range(2):
            frame = attention_frame(inference, layer)
            frames.append(
                frame.assign(
                    layer=layer, label=labels[i], step_lag=frame.t // patch - frame.j // patch
                )
            )
            weights = inference.layer_attention(layer)  # (T, NH, K)
            for t in range(len(weights)):
                filled = np.flatnonzero(inference.slot_time[t] >= 0)
                if len(filled) < 2:
                    continue
                p = weights[t][:, filled]  # (NH, n)
                h = -(np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0)).sum(1)
                entropy.append({"layer": layer, "head": [0, 1], "value": h / np.log(len(filled))})
                oldest.append({"layer": layer, "head": [0, 1], "value": p[:, 0]})
    table = pd.concat(frames, ignore_index=True)

    def per_head(rows):
        return pd.DataFrame(rows).explode(["head", "value"]).groupby(["layer", "head"]).value.mean()

    return table, per_head(entropy), per_head(oldest)


@pytest.mark.parametrize("patch", [1, 3])
@pytest.mark.parametrize("ragged", [False, True])
def test_split_attention_matches_a_loop_over_single_sequences(ragged, patch):
    model = tiny(patch)
    X, labels, lengths, normalizer = split(ragged)
    got = sa.split_attention(model, X, normalizer, KNOBS, labels, lengths, batch_size=4)
    knobs = InferenceKnobs(window=5, kv_activation="tanh")  # hidden steps are dropped
    table, entropy, oldest = reference(model, X, labels, lengths, normalizer, knobs, patch)
    assert set(table.step_lag) == set(range(1, 6))  # lags are encoder steps within k' = 5
    by_lag = table.groupby(["layer", "head", "step_lag"]).weight.mean()
    for (layer, head, lag), want in by_lag.items():
        assert got.by_lag[layer, head, lag - 1] == pytest.approx(want, abs=1e-6)
    for g in range(CLASSES):
        of_class = table[table.label == g].groupby(["layer", "head", "step_lag"]).weight.mean()
        for (layer, head, lag), want in of_class.items():
            assert got.by_lag_class[g, layer, head, lag - 1] == pytest.approx(want, abs=1e-6)
    for (layer, head), want in entropy.items():
        assert got.entropy[layer, head] == pytest.approx(want, abs=1e-6)
    for (layer, head), want in oldest.items():
        assert got.oldest_share[layer, head] == pytest.approx(want, abs=1e-6)
    assert got.steps == (X.shape[1] * len(X) if lengths is None else lengths.sum())
    assert list(got.class_sequences) == [3, 3, 3]
    predicted = [
        infer_sequence(model, unpadded(X, lengths, i), normalizer, knobs).predicted
        for i in range(len(X))
    ]
    assert got.accuracy == pytest.approx(np.mean(np.array(predicted) == labels))


def test_lags_of_a_patched_model_are_encoder_steps():
    """Patch 3: sample 10 is step 3; slots hold steps 0..2 (first samples 0, 3, 6): lags 3..1."""
    slot_time = torch.tensor([[-1, -1, -1]] * 10 + [[0, 3, 6]])  # (11, 3), sample 10 last
    assert sa.slot_lags(slot_time, 3)[10].tolist() == [3, 2, 1]
    assert sa.slot_lags(slot_time, 1)[10].tolist() == [10, 7, 4]


def test_switched_off_heads_are_nan_and_the_rest_unchanged():
    model = tiny()
    X, labels, lengths, normalizer = split(True)
    mask = InferenceKnobs(head_mask=[[1, 0], [1, 1]])
    got = sa.split_attention(model, X, normalizer, mask, labels, lengths)
    assert np.isnan(got.by_lag[0, 1]).all() and np.isnan(got.entropy[0, 1])
    assert np.isfinite(got.by_lag[1]).all() and np.isfinite(got.oldest_share[1]).all()
    table = sa.head_table(got)
    assert list(table.columns) == ["layer", "head", "entropy", "oldest_share", "accuracy_drop"]
    frame = sa.lag_frame(got, ["a", "b", "c"])
    assert set(frame["class"]) == {"all", "a", "b", "c"} and len(frame) == 4 * 2 * 2 * 4


def test_batches_run_side_by_side_give_the_same_aggregate():
    model = tiny(patch=3)
    X, labels, lengths, normalizer = split(True, n=11)
    alone = sa.split_attention(model, X, normalizer, KNOBS, labels, lengths, batch_size=2)
    threads = sa.split_attention(
        model, X, normalizer, KNOBS, labels, lengths, batch_size=2, workers=3
    )
    for name in ("by_lag", "by_lag_class", "entropy", "oldest_share"):
        np.testing.assert_array_equal(getattr(threads, name), getattr(alone, name))
    assert (threads.accuracy, threads.steps) == (alone.accuracy, alone.steps)
    with pytest.raises(ConfigError, match="no sequence"):
        sa.split_attention(model, X[:0], normalizer)


def test_unlabelled_data_has_no_classes_and_the_lstm_no_attention():
    model = tiny()
    X, _, lengths, normalizer = split(True)
    got = sa.split_attention(model, X, normalizer, lengths=lengths)
    assert got.by_lag_class is None and got.accuracy is None
    assert np.allclose(np.nansum(got.by_lag[:, :, :1]), got.by_lag[:, :, 0].sum())
    lstm = SequenceClassifier(ClassifierConfig.build(LSTMConfig(input_size=3, hidden_size=4), 3))
    with pytest.raises(ConfigError, match="no attention"):
        sa.split_attention(lstm, X, normalizer)


def test_head_table_sits_importance_beside_entropy():
    model = tiny()
    X, labels, lengths, normalizer = split(True)
    got = sa.split_attention(model, X, normalizer, labels=labels, lengths=lengths)
    x = normalised_tensor(X, normalizer, lengths)
    importance = fa.head_importance(model, x, labels, lengths=torch.as_tensor(lengths))
    table = sa.head_table(got, importance)
    assert table.accuracy_drop.tolist() == importance.accuracy_drop.tolist()
    assert table.entropy.tolist() == got.entropy.ravel().tolist()
    # One entropy, the same number in the faithfulness table and in the split view.
    np.testing.assert_allclose(importance.entropy, got.entropy.ravel(), rtol=1e-5)


@pytest.mark.parametrize("architecture", ["larnn", "lstm"])
def test_channel_importance_matches_integrated_gradients_one_sequence_at_a_time(architecture):
    pytest.importorskip("captum")
    if architecture == "larnn":
        model = tiny(seed=2)
        knobs = InferenceKnobs(window=3, hidden_steps=(1,))
    else:
        torch.manual_seed(2)
        encoder = LSTMConfig(input_size=3, hidden_size=8)
        model = SequenceClassifier(ClassifierConfig.build(encoder, CLASSES)).eval()
        knobs = None
    X, _, lengths, normalizer = split(True, n=5, T=12)
    got = sa.channel_importance(model, X, normalizer, knobs, lengths, batch_size=2)
    total = np.zeros(3)
    plain = None if knobs is None else InferenceKnobs(window=3)
    for i in range(len(X)):
        x = normalised_tensor(unpadded(X, lengths, i), normalizer)  # (1, T_i, C)
        values = fa.attribution(model, x, "integrated_gradients", knobs=plain)
        total += values.abs().sum((0, 1)).numpy()
    np.testing.assert_allclose(got.total, total, rtol=1e-4)
    np.testing.assert_allclose(got.share, total / total.sum(), rtol=1e-4)
    assert got.steps == lengths.sum() and got.sequences == 5
    both = sa.channel_importance(model, X[:2], normalizer, knobs, lengths[:2]) + (
        sa.channel_importance(model, X[2:], normalizer, knobs, lengths[2:])
    )
    np.testing.assert_allclose(both.total, got.total, rtol=1e-4)
