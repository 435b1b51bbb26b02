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


def test_an_upload_does_not_belong_with_a_probe_model_or_under_other_names():
    """Issue 29: a real accelerometer CSV mapped by position onto the synthetic probe's
    models showed p = 0.99 under a green box with no warning; a sine wave went to an
    unrelated model trained on the page."""
    probe = compatibility.model_fit(
        "LARNN", "xyz", ["p"], PROBE, ["acc_x", "acc_y", "acc_z"], None, None
    )
    assert probe.usable and not probe.belongs
    assert "synthetic signals" in probe.notes[0] and "matched by position only" in probe.notes[1]
    named = compatibility.model_fit("LARNN", "xyz", ["p"], PROBE, "xyz", None, None)
    assert not named.belongs and len(named.notes) == 1  # a probe's model, whatever the names
    sine = compatibility.model_fit(
        "LSTM", ["dim_0"], ["a", "b"], "file:ecg.ts", ["sine"], None, None
    )
    assert not sine.belongs and "dim_0; the data's are sine" in sine.notes[0]
    own = compatibility.model_fit(
        "LSTM", ["dim_0"], ["a", "b"], "file:ecg.ts", ["DIM_0"], None, None
    )
    assert own.belongs and own.notes == ()
    split = compatibility.model_fit("LSTM", "xyz", ["p"], PROBE, "xyz", ["q"], PROBE)
    assert split.belongs and not split.labels_comparable  # other classes: not a misfit of data


def test_data_fit_counts_inputs_far_from_training_as_not_belonging():
    from app.values import DataView
    from larnn.checkpoint import CheckpointMetadata

    normalizer = {"mean": [0.0], "std": [1.0]}
    metadata = CheckpointMetadata.from_dict(
        {
            "dataset_id": "file:ecg.ts",
            "split": {},
            "channel_names": ["dim_0"],
            "channel_units": ["a.u."],
            "class_names": ["a", "b"],
            "normalizer": normalizer,
            "metrics": {},
            "seed": 0,
            "training_seconds": 0.0,
            "code_version": "0",
            "torch_version": "0",
            "created": "2026-01-01T00:00:00+00:00",
            "train_config": {},
        }
    )

    def view(X):
        return DataView(X, None, None, ("dim_0",), ("a.u.",), None, None, "k", "", "upload")

    rng = np.random.default_rng(0)
    assert compatibility.data_fit("LSTM", metadata, view(rng.normal(size=(2, 50, 1)))).belongs
    far = compatibility.data_fit("LSTM", metadata, view(rng.normal(9, 1, size=(2, 50, 1))))
    assert not far.belongs and "far outside" in far.notes[-1]
