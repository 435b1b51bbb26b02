"""Did a model learn (larnn.verdict): at chance by its loss, by never beating the majority
class, or learned; and the verdict a single run records."""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_protocol import long_univariate
from test_train import TINY

from larnn.checkpoint import load_checkpoint
from larnn.train import train, with_overrides
from larnn.verdict import judge, majority_rate


def test_the_majority_rate_answers_the_training_parts_most_frequent_class():
    assert majority_rate(np.array([0, 1, 1, 2]), np.array([1, 1, 0, 2])) == 0.5
    assert majority_rate(np.array([2, 2]), np.array([0, 1])) == 0.0


def test_a_loss_at_chance_did_not_learn_whatever_the_accuracy():
    verdict = judge([[0.5, 0.6]], [0.34], [0.95 * math.log(3)], classes=3)
    assert not verdict.learned and "training loss stayed at chance" in verdict.reason


def test_never_beating_the_majority_class_did_not_learn():
    verdict = judge([[0.3, 0.5], [0.4, 0.5]], [0.5, 0.5], [0.2, 0.3], classes=3)
    assert not verdict.learned
    assert "never beat always answering the most frequent class (50.0%)" in verdict.reason
    assert "(mean of 2 folds)" in verdict.reason


def test_beating_the_majority_with_a_falling_loss_learned():
    verdict = judge([[0.3, 0.9], [0.5, 0.7]], [0.4, 0.4], [0.2, 0.4], classes=4)
    assert verdict.learned and verdict.reason.startswith("learned: best validation")


@pytest.mark.parametrize("lr, learned", [(1e-9, False), (3e-3, True)])
def test_a_single_run_records_its_verdict_and_the_majority_rate(tmp_path, lr, learned):
    """A learning rate of 1e-9 leaves the model at its initial guess: "did not learn"."""
    data = long_univariate(tmp_path / "long.npz", cases=60, length=120)
    settings = {"dataset": str(data), "lr": lr, "epochs": 8, "batch_size": 8, "readout": "mean"}
    config = with_overrides(TINY, {**settings, "stem": {"width": 16, "patch": 8}})
    result = train(config, tmp_path / "run", progress=False)
    metrics = load_checkpoint(result.checkpoint).metadata.metrics
    assert metrics["learning"]["learned"] is learned, metrics["learning"]["reason"]
    assert 0 < metrics["majority"]["accuracy"] < 1
