"""Every shipped checkpoint re-evaluated on its data: the recorded metrics must still hold."""

from __future__ import annotations

import pytest

from larnn.checkpoint import load_checkpoint, shipped_checkpoints
from larnn.evaluate import evaluate_checkpoint

SHIPPED = shipped_checkpoints()
EXPECTED = {
    "probe_cue_shape_larnn",
    "probe_cue_shape_lstm",
    "probe_recall_larnn",
    "probe_recall_lstm",
    "uci_har_larnn",
    "uci_har_larnn_k16",
    "uci_har_lstm",
}


def test_the_promised_checkpoints_are_shipped():
    assert EXPECTED <= set(SHIPPED)


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_checkpoint_is_small(name):
    size = sum(f.stat().st_size for f in SHIPPED[name].iterdir())
    assert size < 5_000_000, f"{name} is {size} bytes"


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_recorded_metrics_reproduce(name, request):
    checkpoint = load_checkpoint(SHIPPED[name])
    data_dir = None
    if checkpoint.metadata.dataset_id == "uci_har":
        data_dir = request.getfixturevalue("uci_har_dir")  # skips, with the reason, if absent
    recorded_splits = set(checkpoint.metadata.metrics) & {"train", "val", "test"}
    # A refit trains on its validation part and records no score for it.
    expected = {"test"} if checkpoint.metadata.train_config.get("refit") else {"val", "test"}
    assert recorded_splits == expected
    for split in sorted(recorded_splits):
        recorded = checkpoint.metadata.metrics[split]
        report = evaluate_checkpoint(checkpoint, split, data_dir)
        assert report.accuracy == pytest.approx(recorded["accuracy"], abs=0.001), split
        assert report.macro_f1 == pytest.approx(recorded["macro_f1"], abs=0.001), split
