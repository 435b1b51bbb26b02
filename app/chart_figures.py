"""The charts beside the heatmaps: the probabilities after the last step, and the window
sweep (accuracy against k'). Data in, Plotly figure out.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from app.figures import (
    FONT,
    MODEL_COLORS,
    STEP_COLOR,
    spec_figure,
    vline,
)

SWEEP_LABEL_ROW = 18  # px between the sweep's two rows of window labels


def probabilities_figure(
    probabilities: dict[str, np.ndarray],
    class_names: Sequence[str],
    *,
    true_class: int | None = None,
    model_names: dict[str, str] | None = None,
) -> go.Figure:
    """Class probabilities at the last step, one bar per model and class, the true class marked.

    probabilities: {model role ("LARNN", "LSTM"): (classes,)}; the role picks the colour.
    model_names: {role: checkpoint name}, shown in the legend beside the role.
    """
    labels = [
        f"<b>{name}</b> (true)" if k == true_class else name for k, name in enumerate(class_names)
    ]
    data = []
    for role, p in probabilities.items():
        shown = f"{role} ({model_names[role]})" if model_names and role in model_names else role
        data.append(
            {
                "type": "bar",
                "y": labels,
                "x": np.asarray(p, dtype=np.float64),
                "name": shown,
                "orientation": "h",
                "marker": {"color": MODEL_COLORS.get(role, "#888888")},
                "text": [f"{v:.2f}" for v in np.asarray(p)],
                "textposition": "outside",
                "hovertemplate": f"{shown}: P(%{{y}}) = %{{x:.3f}}<extra></extra>",
            }
        )
    # Room for the longest class name, set here: an automatic margin is a second drawing each
    # time the figure is replaced (app.live_chart). ~8 px a character at size 13, bold wider.
    longest = max(len(name) + (7 if k == true_class else 0) for k, name in enumerate(class_names))
    layout = {
        "barmode": "group",
        "height": 120 + 48 * len(class_names),
        "margin": {"l": 16 + 8 * longest, "r": 20, "t": 40, "b": 40, "autoexpand": False},
        "xaxis": {"range": [0, 1.12], "title": {"text": "probability at the last step"}},
        "yaxis": {"autorange": "reversed"},
        "font": FONT,
        "legend": {"orientation": "h", "x": 0, "y": 1.0, "yanchor": "bottom"},  # above the bars
    }
    return spec_figure(data, layout)


def window_sweep_figure(
    sweep: pd.DataFrame,
    *,
    baseline_accuracy: float | None,
    trained_window: int,
    current_window: int | None,
    sample_size: int,
) -> go.Figure:
    """LARNN accuracy against the inference window k'; the LSTM's accuracy as a dashed line."""
    data = [
        {
            "type": "scatter",
            "x": sweep["window"].to_numpy(),
            "y": sweep["accuracy"].to_numpy(),
            "mode": "lines+markers",
            "name": "LARNN at window k'",
            "line": {"color": MODEL_COLORS["LARNN"], "width": 2.5},
            "hovertemplate": "k' = %{x}<br>accuracy = %{y:.3f}<extra></extra>",
        }
    ]
    windows = sweep["window"].to_numpy()
    middle = (windows.min() + windows.max()) / 2 if len(windows) else trained_window

    def inward(x: float) -> str:  # a label reads towards the middle, so it stays on the page
        return "right" if x > middle else "left"

    # Two rows above the plot, so the labels of close windows (k' = 14, k = 16) never overlap.
    shapes = [vline(trained_window, "", color="gray", width=1.5)]
    notes = [_note(f"trained k = {trained_window}", trained_window, 1.0, inward(trained_window))]
    if current_window is not None and current_window != trained_window:
        shapes.append(vline(current_window, "", width=1.5))
        label = _note(f"current k' = {current_window}", current_window, 1.0, inward(current_window))
        notes.append(
            {**label, "yshift": SWEEP_LABEL_ROW, "font": {"size": 12, "color": STEP_COLOR}}
        )
    if baseline_accuracy is not None:
        shapes.append(
            {
                "type": "line",
                "x0": 0,
                "x1": 1,
                "y0": baseline_accuracy,
                "y1": baseline_accuracy,
                "xref": "x domain",
                "yref": "y",
                "line": {"color": MODEL_COLORS["LSTM"], "dash": "dash", "width": 2},
            }
        )
        data.append(
            {
                "type": "scatter",
                "x": [None],
                "y": [None],
                "mode": "lines",
                "name": "LSTM baseline (no window)",
                "line": {"color": MODEL_COLORS["LSTM"], "dash": "dash", "width": 2},
            }
        )
        notes.append(
            {
                **_note(f"LSTM {baseline_accuracy:.3f}", 1.0, baseline_accuracy, "right"),
                "xref": "x domain",
                "yref": "y",
                "yanchor": "top",
            }
        )
    layout = {
        "height": 390,
        "margin": {"l": 60, "r": 20, "t": 40 + 2 * SWEEP_LABEL_ROW, "b": 45},
        "font": FONT,
        "title": {
            "text": f"Accuracy on {sample_size} sequences against the window k'",
            "y": 0.98,
            "yanchor": "top",
        },
        "xaxis": {"title": {"text": "window k' (past steps attended)"}},
        "yaxis": {"title": {"text": "accuracy"}, "range": [0, 1.02]},
        "showlegend": baseline_accuracy is not None,
        "legend": {"orientation": "h", "x": 0, "y": -0.2},
        "shapes": shapes,
        "annotations": notes,
    }
    return spec_figure(data, layout)


def _note(text: str, x: float, y: float, xanchor: str) -> dict:
    """A label at data x and the top of the plot (y in paper units unless overridden)."""
    return {
        "text": text,
        "x": x,
        "y": y,
        "xref": "x",
        "yref": "y domain",
        "xanchor": xanchor,
        "yanchor": "bottom",
        "showarrow": False,
        "font": {"size": 12},
    }
