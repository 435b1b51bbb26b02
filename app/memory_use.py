"""How much a LARNN's predictions depend on its memory, in words, from the window sweep (pure).

A LARNN whose accuracy hardly moves between k' = 1 and the window it was trained with barely
uses its memory: its attention may still be drawn, but the prediction does not rest on it.
"""

from __future__ import annotations

import pandas as pd

FLAT_POINTS = 2.0  # accuracy points between k' = 1 and the trained k' below which a sweep is flat


def sweep_verdict(sweep: pd.DataFrame, trained_window: int, sample_size: int) -> str | None:
    """A sentence on a sweep (columns window, accuracy; the window sweep's, or k' = 1 and the
    trained k' alone, as under the heatmap): flat, or how much memory matters.
    None when the sweep holds neither k' = 1 or the trained window, or they are the same."""
    by_window = dict(zip(sweep["window"].tolist(), sweep["accuracy"].tolist(), strict=True))
    if trained_window == 1 or 1 not in by_window or trained_window not in by_window:
        return None
    at_one, trained = by_window[1], by_window[trained_window]
    drop = 100 * (trained - at_one)
    numbers = (
        f"At k' = 1 it scores {at_one:.1%} against {trained:.1%} at its trained k' = "
        f"{trained_window} ({drop:+.1f} points; on {sample_size} sequences one sequence is "
        f"{100 / sample_size:.1f} points)"
    )
    if drop < FLAT_POINTS:
        return (
            f"**This LARNN barely uses its memory:** its accuracy is flat in k'. {numbers}. "
            "Its predictions rest on the current step and the LSTM state, not on what it "
            "attends to: read its attention maps as where it looks, not as why it decides."
        )
    return (
        f"**This LARNN leans on its memory.** {numbers}: shortening the window costs "
        "accuracy, so what it attends to matters for its predictions."
    )
