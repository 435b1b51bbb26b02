"""The figures of attention over a whole split (issue 29): the model view (heads x lags, one
panel per layer), the heads' specialisation side by side, and channel importance for both
models. Data in, Plotly figure out, written as plain specs (`app.figures.spec_figure`; the tests
validate them). Shape letters: L layers, NH heads, K window k' (lags 1..K), C channels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from app.figures import (
    FONT,
    HEATMAP_SCALE,
    MODEL_COLORS,
    axis_suffix,
    pick_color,
    spec_figure,
    subplot_title,
)

LAYER_COLORS = ("#4c72b0", "#55a868", "#c44e52", "#8172b2", "#ccb974", "#64b5cd")
PANEL_GAP = 0.06  # share of the width between side-by-side panels


def _columns(n: int, gap: float = PANEL_GAP) -> list[tuple[float, float]]:
    """Horizontal domains of n side-by-side panels."""
    width = (1.0 - gap * (n - 1)) / n
    return [(i * (width + gap), i * (width + gap) + width) for i in range(n)]


def lag_figure(by_lag: np.ndarray, heading: str) -> go.Figure:
    """The model view: mean attention weight per head (rows) and lag (columns), one heatmap
    panel per layer on one colour scale. by_lag: (L, NH, K), NaN for heads switched off."""
    L, NH, K = by_lag.shape
    finite = by_lag[np.isfinite(by_lag)]
    top = float(finite.max()) if finite.size else 1.0
    data, layout = [], {}
    lags = list(range(1, K + 1))
    heads = [f"head {h}" for h in range(NH)]
    annotations = []
    for layer, (x0, x1) in enumerate(_columns(L)):
        axis = axis_suffix(layer)
        z = by_lag[layer]  # (NH, K)
        data.append(
            {
                "type": "heatmap",
                "z": np.where(np.isfinite(z), z, None).tolist(),
                "x": lags,
                "y": heads,
                "xaxis": f"x{axis}",
                "yaxis": f"y{axis}",
                "zmin": 0.0,
                "zmax": top,
                "colorscale": HEATMAP_SCALE,
                "showscale": layer == L - 1,
                "colorbar": {"title": {"text": "mean weight"}, "len": 1.0, "nticks": 4},
                "hovertemplate": f"layer {layer}, %{{y}}, lag %{{x}}: mean weight %{{z:.3f}}"
                "<extra></extra>",
                **({"texttemplate": "%{z:.2f}"} if K <= 12 else {}),
            }
        )
        layout[f"xaxis{axis}"] = {
            "domain": [x0, x1],
            "anchor": f"y{axis}",
            "title": {"text": "lag t − j (steps back)"},
            "dtick": 1 if K <= 16 else None,
        }
        layout[f"yaxis{axis}"] = {
            "domain": [0.0, 1.0],
            "anchor": f"x{axis}",
            "autorange": "reversed",
            "showticklabels": layer == 0,
        }
        if L > 1:
            annotations.append(subplot_title(f"layer {layer}", (x0 + x1) / 2, 1.0))
    layout.update(
        {
            "title": {"text": heading},
            "height": max(300, 160 + 26 * NH),
            "margin": {"l": 70, "r": 20, "t": 60, "b": 50},
            "font": FONT,
            "annotations": annotations,
        }
    )
    return spec_figure(data, layout)


def heads_figure(table: pd.DataFrame, uniform_oldest: float, heading: str) -> go.Figure:
    """Which heads specialise: normalised entropy, share on the oldest slot (uniform marked)
    and accuracy drop when switched off, one bar per head (colour: layer), side by side.

    table: `larnn.split_attention.head_table` (accuracy_drop NaN where not measured).
    """
    labels = [f"L{int(r.layer)} h{int(r.head)}" for r in table.itertuples()]
    colors = [pick_color(LAYER_COLORS, int(layer)) for layer in table["layer"]]
    panels = [
        ("entropy", "normalised entropy (1 = uniform)", "%{y:.3f}"),
        ("oldest_share", "share on the oldest slot (dashed: uniform)", "%{y:.3f}"),
        ("accuracy_drop", "accuracy drop when switched off", "%{y:.2%}"),
    ]
    data, layout, annotations = [], {}, []
    for i, ((column, title, value), (x0, x1)) in enumerate(
        zip(panels, _columns(len(panels)), strict=True)
    ):
        axis = axis_suffix(i)
        values = table[column].to_numpy(dtype=float)
        data.append(
            {
                "type": "bar",
                "x": labels,
                "y": np.where(np.isfinite(values), values, None).tolist(),
                "marker": {"color": colors},
                "xaxis": f"x{axis}",
                "yaxis": f"y{axis}",
                "showlegend": False,
                "hovertemplate": f"%{{x}}: {title} {value}<extra></extra>",
            }
        )
        layout[f"xaxis{axis}"] = {"domain": [x0, x1], "anchor": f"y{axis}", "tickangle": -90}
        layout[f"yaxis{axis}"] = {"domain": [0.0, 0.9], "anchor": f"x{axis}", "rangemode": "tozero"}
        if column == "accuracy_drop":
            layout[f"yaxis{axis}"]["tickformat"] = ".1%"
            if not np.isfinite(values).any():
                layout[f"yaxis{axis}"]["range"] = [0, 0.01]
                annotations.append(
                    {
                        **subplot_title("not measured yet", (x0 + x1) / 2, 0.45),
                        "font": {"size": 12, "color": "#888888"},
                    }
                )
        annotations.append(subplot_title(title, (x0 + x1) / 2, 0.92))
    shapes = []
    if np.isfinite(uniform_oldest):  # what uniform attention would put on the oldest slot
        shapes.append(
            {
                "type": "line",
                "x0": 0,
                "x1": 1,
                "xref": "x2 domain",
                "y0": uniform_oldest,
                "y1": uniform_oldest,
                "yref": "y2",
                "line": {"color": "#444444", "width": 1.5, "dash": "dash"},
            }
        )
    layout.update(
        {
            "title": {"text": heading},
            "height": 380,
            "margin": {"l": 50, "r": 20, "t": 60, "b": 70},
            "font": FONT,
            "annotations": annotations,
            "shapes": shapes,
            "bargap": 0.2,
        }
    )
    return spec_figure(data, layout)


def channel_figure(
    shares: dict[str, np.ndarray], channel_names: Sequence[str], heading: str
) -> go.Figure:
    """Channel importance: each model's share of mean |Integrated Gradients| per channel, one
    horizontal bar per channel and model. shares: {role: (C,)}, each summing to 1."""
    data = [
        {
            "type": "bar",
            "orientation": "h",
            "y": list(channel_names),
            "x": np.asarray(share, dtype=float).tolist(),
            "name": role,
            "marker": {"color": MODEL_COLORS.get(role, "#888888")},
            "text": [f"{v:.0%}" for v in share],
            "textposition": "outside",
            "hovertemplate": f"{role}: %{{y}} %{{x:.1%}} of the attribution<extra></extra>",
        }
        for role, share in shares.items()
    ]
    longest = max((len(name) for name in channel_names), default=4)
    layout = {
        "title": {"text": heading},
        "barmode": "group",
        "height": 140 + 22 * len(channel_names) * max(len(shares), 1),
        "margin": {"l": 20 + 8 * longest, "r": 40, "t": 60, "b": 45},
        "xaxis": {"title": {"text": "share of mean |attribution|"}, "tickformat": ".0%"},
        "yaxis": {"autorange": "reversed"},
        "legend": {"orientation": "h", "y": -0.15},
        "font": FONT,
    }
    return spec_figure(data, layout)
