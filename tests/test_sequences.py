"""app.sequences: the "choose by" modes and the sequences each offers."""

from __future__ import annotations

import numpy as np

from app import sequences


def test_candidate_indices_and_modes():
    y = np.array([0, 1, 1, 2])
    a = np.array([0, 1, 2, 2])
    b = np.array([1, 1, 2, 0])
    assert sequences.candidate_indices("index", y).tolist() == [0, 1, 2, 3]
    assert sequences.candidate_indices("class", y, true_class=1).tolist() == [1, 2]
    assert sequences.candidate_indices("larnn_wrong", y, a, b).tolist() == [2]
    assert sequences.candidate_indices("lstm_wrong", y, a, b).tolist() == [0, 2, 3]
    assert sequences.candidate_indices("disagree", y, a, b).tolist() == [0, 3]
    assert sequences.choose_modes(True, False) == ["index", "class", "larnn_wrong"]
    caption = sequences.sequence_caption(2, y, ["p", "q", "r"], a, b)
    assert caption == "#2 · true q · LARNN r · LSTM r"
