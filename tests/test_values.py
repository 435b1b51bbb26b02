"""app.values: the page's value types."""

from __future__ import annotations

from app import describe, knobs
from app.values import KnobChoice
from larnn.model import LARNNConfig


def test_knob_choice_reads_the_knobs_it_was_built_from():
    trained = LARNNConfig(input_size=3, hidden_size=8, heads=4, window=5, max_window=8)
    as_trained = KnobChoice(knobs.make_knobs(5, [0, 1, 2, 3], 4, "elu"), 0, trained)
    assert as_trained.heads_on == (0, 1, 2, 3) and as_trained.window == 5
    assert not as_trained.changed
    choice = KnobChoice(knobs.make_knobs(3, [3, 1], 4, "elu"), 1, trained)
    assert choice.heads_on == (1, 3) and choice.window == 3 and choice.changed
    assert KnobChoice(knobs.make_knobs(5, range(4), 4, "tanh"), 0, trained).changed
    assert describe.heads_text(choice) == "heads 1, 3"
    assert "window k' = 3" in describe.heatmap_title(choice)
