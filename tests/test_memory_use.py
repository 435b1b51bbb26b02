"""app.memory_use: the window sweep read in words."""

from __future__ import annotations

import pandas as pd

from app.memory_use import sweep_verdict


def _sweep(accuracies: dict[int, float]) -> pd.DataFrame:
    return pd.DataFrame({"window": list(accuracies), "accuracy": list(accuracies.values())})


def test_a_flat_sweep_says_the_model_barely_uses_its_memory():
    text = sweep_verdict(_sweep({1: 0.962, 2: 0.968, 3: 0.971}), 3, 200)
    assert (
        "barely uses its memory" in text and "96.2% against 97.1%" in text and "+0.9 points" in text
    )
    assert "one sequence is 0.5 points" in text


def test_a_steep_sweep_says_the_model_leans_on_its_memory():
    text = sweep_verdict(_sweep({1: 0.40, 8: 0.70, 32: 1.0}), 32, 100)
    assert "leans on its memory" in text and "+60.0 points" in text and "barely" not in text


def test_no_verdict_without_both_ends():
    assert sweep_verdict(_sweep({2: 0.5, 3: 0.6}), 3, 50) is None
    assert sweep_verdict(_sweep({1: 0.5}), 1, 50) is None
