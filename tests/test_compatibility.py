"""app.compatibility: whether a model fits the data, in words for people."""

from __future__ import annotations

import numpy as np
from test_app import PROBE

from app import compatibility
from larnn.data.uci_har import CHANNELS, CLASS_NAMES


def test_model_fit_messages():
    fit = compatibility.model_fit("LARNN", CHANNELS, CLASS_NAMES, "uci_har", "xyz", ["up"], PROBE)
    assert not fit.usable and "reads 9 channels" in fit.problems[0]
    fit = compatibility.model_fit("LARNN", ["a", "b", "c"], ["p"], PROBE, "xyz", ["p"], PROBE)
    assert fit.usable and fit.labels_comparable and "matched by position" in fit.notes[0]
    fit = compatibility.model_fit("LSTM", "xyz", ["p"], "probe:which_first", "xyz", ["q"], PROBE)
    assert not fit.labels_comparable and len(fit.notes) == 2


def test_distribution_note_names_each_channel_out_of_range():
    normalizer = {"mean": [0.0, 1.0, 2.0], "std": [1.0, 1.0, 0.5]}
    rng = np.random.default_rng(0)
    X = rng.normal([0.0, 1.0, 2.0], [1.0, 1.0, 0.5], size=(4, 50, 3))
    assert compatibility.distribution_note("LSTM", X, normalizer, "abc") is None
    X[..., 1] += 10  # 10 stds off
    X[..., 2] = 2.0  # flat, at the training mean
    note = compatibility.distribution_note("LSTM", X, normalizer, "abc")
    assert "b is centred 10" in note and "c spreads 0" in note and "a " not in note
