"""app.intro: the task in words, the recall sequence's answer, the recorded accuracies."""

from __future__ import annotations

import pytest

from app import intro
from app.values import Loaded
from larnn.checkpoint import load_checkpoint, shipped_checkpoints
from larnn.data import make_probe


def _shipped(name: str, role: str) -> Loaded:
    return Loaded(load_checkpoint(shipped_checkpoints()[name]), name, name, role)


def test_the_recall_task_names_keys_values_and_the_query():
    text = intro.task_text("probe:recall")
    assert all(word in text for word in ("**key**", "**value**", "**query**"))
    assert "cue shape" in intro.task_text("probe:cue_shape")
    assert intro.task_text("uci_har") is None and intro.task_text(None) is None


@pytest.mark.parametrize("index", [0, 5, 17])
def test_the_recall_sequence_text_gives_the_class_and_its_step(index):
    probe = make_probe("recall", 20, seed=1)
    x, y = probe.X[index], int(probe.y[index])
    step = int(probe.relevant_steps[index].argmax())
    lag = len(x) - 1 - step
    text = intro.recall_sequence_text(x, window=lag)
    assert f"stored at step {step} with value_{y} ({lag} steps back, inside" in text
    assert text.endswith(f"the answer is **value_{y}**.")
    assert "outside" in intro.recall_sequence_text(x, window=lag - 1)


def test_the_headline_reads_each_models_recorded_test_accuracy():
    models = [_shipped("probe_recall_larnn", "LARNN"), _shipped("probe_recall_lstm", "LSTM")]
    text = intro.headline(models, "probe:recall", "test")
    for model in models:
        recorded = model.checkpoint.metadata.metrics["test"]["accuracy"]
        assert f"{model.role} {model.name} **{recorded:.1%}**" in text
    assert text.count("1 layer of 32 units") == 2 and "k = 32" in text
    assert intro.headline(models, "probe:recall", "validation") is None
    assert intro.headline(models, "uci_har", "test") is None
