"""app.describe: what the page says in words about a result."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from app import describe, knobs
from app.values import DataView, Fit, KnobChoice, ModelRun
from larnn.model import LARNNConfig

TRAINED = LARNNConfig(input_size=3, hidden_size=8, heads=2, window=5, max_window=8)


def _choice(heads_on: list[int]) -> KnobChoice:
    return KnobChoice(knobs.make_knobs(7, heads_on, 2, TRAINED.kv_activation), 0, TRAINED)


def _view(relevant_steps: np.ndarray) -> DataView:
    T = len(relevant_steps)
    return DataView(
        X=np.zeros((1, T, 3), np.float32),
        labels=np.array([0]),
        class_names=("a", "b", "c", "d"),
        channel_names=("x", "y", "z"),
        channel_units=("a.u.",) * 3,
        relevant_steps=relevant_steps[None],
        dataset_id="probe:cue_shape",
        key="test",
        description="",
        name="probe",
    )


def test_every_head_off_is_said_in_words():
    """Issue 29: with every head off the subtitle read "heads  of 4 on"."""
    off = _choice([])
    assert describe.heads_on_text(off) == "no head on (all 2 off)"
    assert describe.heads_text(off) == "no head"
    assert "heads  of" not in describe.knobs_text(off)
    assert describe.heads_on_text(_choice([1])) == "heads 1 of 2 on"
    assert describe.heads_on_text(_choice([0, 1])) == "all 2 heads on"


def test_the_truth_score_with_every_head_off_is_not_applicable_with_a_reason(inference):
    """Issue 29: the summary's truth score read "undefined" with every head off."""
    result, relevant = inference
    model = SimpleNamespace(name="m", class_names=("a", "b", "c", "d"))
    runs = {"LARNN": ModelRun(model, result)}
    fits = {"LARNN": Fit(True, (), (), True)}
    data = _view(relevant)

    def truth(choice: KnobChoice) -> dict:
        metrics = describe.summary_metrics(data, 0, runs, fits, choice)
        return next(m for m in metrics if m["label"] == "Attention on truth")

    off = truth(_choice([]))
    assert off["value"] == "n/a" and off["delta"] == "no head on"
    assert "every head is switched off" in off["help"]
    on = truth(_choice([0, 1]))
    assert on["value"].endswith("×") and "chance" in on["delta"]
    data = _view(np.zeros_like(relevant))  # no ground-truth step: nothing to score
    nowhere = truth(_choice([0, 1]))
    assert nowhere["value"] == "n/a" and "no truth step" in nowhere["delta"]
