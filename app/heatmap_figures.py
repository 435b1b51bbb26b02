"""Attention heatmaps: of the layer shown (heads averaged) and of each head, with the
ground-truth band. Data in, Plotly figure out. Shape letters: T time steps, K window slots,
R heatmap rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from app.figures import (
    FONT,
    HEATMAP_SCALE,
    TIMELINE_MARGIN,
    TRUTH_COLOR,
    axis_suffix,
    runs,
    spec_figure,
    stack,
    subplot_title,
    time_marker,
)
from larnn.inference import AttentionGrid

HOVER_INPUTS_MAX_CELLS = 20_000  # heatmaps with inputs in their hover: UCI HAR's 128 x 128 fits
# The attention heatmap's subtitle holds this many lines whatever it says (`figures.titled`):
# one more hidden step must not wrap it and move the cells under the mouse.
SUBTITLE_LINES = 2


def _axis_title(axis: str, patch: int = 1) -> str:
    """The past-step axis: lag in steps, or slots back where a slot holds P samples (a stem's
    patch; the hover gives the lag in samples)."""
    if axis != "lag":
        return "past time step j"
    return "lag t - j (steps back)" if patch == 1 else f"slots back (each {patch} samples)"


def truth_band(
    truth_steps: Sequence[int], axis: str, window: int, length: int
) -> tuple[list[float | None], list[float | None]]:
    """Lines (x, y; None between segments) enclosing the heatmap cells whose j is ground truth.

    For each run a..b of truth steps: on the lag axis the cells with t - lag in a..b form a
    diagonal band between lag = t - a + 1/2 and lag = t - b - 1/2; on the time axis a row band
    between j = a - 1/2 and j = b + 1/2. Each line spans the steps t whose window reaches it.
    """
    mask = np.zeros(length, dtype=bool)
    mask[np.asarray(truth_steps, dtype=int)] = True
    xs: list[float | None] = []
    ys: list[float | None] = []
    last_x = length - 0.5
    for a, b in runs(mask):
        if axis == "lag":
            for start in (a, b + 1):  # lower-left end of each line, at lag 1/2
                x1 = min(start + window, last_x)
                if x1 > start:
                    xs += [start, x1, None]
                    ys += [0.5, 0.5 + (x1 - start), None]
        else:
            x0, x1 = a + 0.5, min(b + window, length - 1) + 0.5
            for y in (a - 0.5, b + 0.5):
                xs += [x0, min(x1, last_x), None]
                ys += [y, y, None]
    return xs, ys


def _truth_trace(grid: AttentionGrid, truth_steps: Sequence[int], axis: str, legend: bool) -> dict:
    window = int(grid.lag.max()) if grid.axis == "time" else len(grid.y)
    x, y = truth_band(truth_steps, grid.axis, max(window, 1), int(grid.t[-1]) + 1)
    return {
        "type": "scatter",
        "x": x,
        "y": y,
        "xaxis": f"x{axis}",
        "yaxis": f"y{axis}",
        "mode": "lines",
        "line": {"color": TRUTH_COLOR, "width": 1.5},
        "name": "between the red lines: j is a ground-truth step",
        "hoverinfo": "skip",
        "showlegend": legend,
    }


def attention_heatmap(
    grid: AttentionGrid,
    title: str,
    *,
    truth_steps: Sequence[int] | None = None,
    X: np.ndarray | None = None,  # (T, C), the whole series: hover shows X[j]
    channel_names: Sequence[str] = (),
    channel_units: Sequence[str] = (),
    zmax: float | None = None,
    t: int | None = None,
    patch: int = 1,
) -> go.Figure:
    """Query step t (x) against past step (y: lag or time j); z is the attention weight.

    Hover shows t, j, lag and weight, and the inputs at j when X (T, C) is given and the grid
    has at most HOVER_INPUTS_MAX_CELLS cells (a long stretch on the time axis would carry
    megabytes of them). truth_steps: ground-truth time steps, enclosed by red lines. t: the
    page's time step, its column outlined (`figures.time_marker`). patch: samples per slot
    (a stem's P), which the lag axis's title names.
    Margins match `timeline_figure`, so the two time axes line up one above the other.
    """
    first, last = int(grid.t[0]), int(grid.t[-1])
    custom = [grid.j, grid.lag]
    lines = ["t = %{x}", "j = %{customdata[0]}", "lag = %{customdata[1]}", "weight = %{z:.3f}"]
    if X is not None and grid.z.size <= HOVER_INPUTS_MAX_CELLS:
        X = np.asarray(X, dtype=np.float32)
        at_j = np.where((grid.j >= 0)[..., None], X[np.clip(grid.j, 0, None)], np.nan)  # (R,T,C)
        custom.extend(at_j[..., c] for c in range(X.shape[1]))
        for c, name in enumerate(channel_names):
            unit = channel_units[c] if c < len(channel_units) else ""
            lines.append(f"{name} at j = %{{customdata[{2 + c}]:.3g}} {unit}")
    data = [
        {
            "type": "heatmap",
            "z": grid.z.astype(np.float32),
            "x": grid.t,
            "y": grid.y,
            "customdata": np.stack(custom, axis=-1).astype(np.float32),
            "hovertemplate": "<br>".join(lines) + "<extra></extra>",
            "hoverongaps": False,
            "colorscale": HEATMAP_SCALE,
            "zmin": 0.0,
            "zmax": zmax if zmax is not None else _finite_max(grid.z) or 1.0,
            "colorbar": {"title": {"text": "weight"}, "x": 1.02, "xanchor": "left"},
        }
    ]
    if truth_steps is not None and len(truth_steps):
        data.append(_truth_trace(grid, truth_steps, "", legend=True))
    layout = {
        "title": {"text": title, "font": {"size": 15}},
        "height": 380,
        "margin": TIMELINE_MARGIN,
        "font": FONT,
        "plot_bgcolor": "white",
        "legend": {"orientation": "h", "x": 0, "y": -0.18},
        "xaxis": {
            "title": {"text": "query time step t"},
            "range": [first - 0.5, last + 0.5],
            "tickformat": "d",
        },
        "yaxis": {"title": {"text": _axis_title(grid.axis, patch)}, **_integer_ticks(grid.y)},
        "shapes": [] if t is None else [time_marker(t, "")],
    }
    return spec_figure(data, layout)


def head_grid_figure(
    grids: Sequence[AttentionGrid],
    head_titles: Sequence[str],
    *,
    truth_steps: Sequence[int] | None = None,
    cols: int = 4,
    t: int | None = None,
) -> go.Figure:
    """One small heatmap per head on a shared colour scale; hover shows head, t, j, lag, weight.
    t: the page's time step, its column outlined on each head."""
    n = len(grids)
    cols = max(1, min(cols, n))
    rows = -(-n // cols)
    hgap, vgap = 0.03, 0.1
    width = (1.0 - hgap * (cols - 1)) / cols
    vgap = 75 / (250 * rows) if rows > 1 else vgap  # room for tick labels and the next titles
    heights = stack([1.0] * rows, vgap)
    tops = [_finite_max(g.z) for g in grids]  # None for a head switched off: it sets no scale
    zmax = max((top for top in tops if top is not None), default=1.0)
    axis_kind = grids[0].axis if grids else "lag"
    ticks = _integer_ticks(grids[0].y) if grids else {}
    data: list[dict] = []
    annotations: list[dict] = []
    shapes: list[dict] = []
    layout: dict = {}
    for h, (grid, name) in enumerate(zip(grids, head_titles, strict=True)):
        r, c = divmod(h, cols)
        a = axis_suffix(h)
        x0 = c * (width + hgap)
        bottom, top = heights[r]
        first, last = int(grid.t[0]), int(grid.t[-1])
        layout[f"xaxis{a}"] = {
            "anchor": f"y{a}",
            "domain": [x0, x0 + width],
            "range": [first - 0.5, last + 0.5],
            "tickformat": "d",
            **({"matches": "x"} if h else {}),
            **({"title": {"text": "t"}} if r == rows - 1 else {}),
        }
        layout[f"yaxis{a}"] = {
            "anchor": f"x{a}",
            "domain": [bottom, top],
            "showticklabels": c == 0,
            **ticks,
            **({"matches": "y"} if h else {}),
            **({"title": {"text": "lag" if axis_kind == "lag" else "j"}} if c == 0 else {}),
        }
        data.append(
            {
                "type": "heatmap",
                "z": grid.z.astype(np.float32),
                "x": grid.t,
                "y": grid.y,
                "xaxis": f"x{a}",
                "yaxis": f"y{a}",
                "customdata": np.stack([grid.j, grid.lag], axis=-1).astype(np.int16),
                "hovertemplate": f"{name}<br>t = %{{x}}<br>j = %{{customdata[0]}}"
                "<br>lag = %{customdata[1]}<br>weight = %{z:.3f}<extra></extra>",
                "hoverongaps": False,
                "coloraxis": "coloraxis",
            }
        )
        if truth_steps is not None and len(truth_steps):
            data.append(_truth_trace(grid, truth_steps, a, legend=False))
        annotations.append(subplot_title(name, x0 + width / 2, top))
        if t is not None:
            shapes.append(time_marker(t, a))
    layout.update(
        coloraxis={
            "colorscale": HEATMAP_SCALE,
            "cmin": 0.0,
            "cmax": zmax,
            "colorbar": {"title": {"text": "weight"}},
        },
        height=40 + 250 * rows,
        margin={"l": 60, "r": 90, "t": 40, "b": 40, "autoexpand": False},  # r: the colour bar
        font=FONT,
        plot_bgcolor="white",
        showlegend=False,
        annotations=annotations,
        shapes=shapes,
    )
    return spec_figure(data, layout)


def _finite_max(z: np.ndarray, percentile: float = 99.0) -> float | None:
    """Top of the colour scale: a high percentile of the weights, so that the first steps
    (one or two filled slots, weights near 1) do not wash out the rest. None when no weight
    is above zero (a head switched off): such a grid has no scale to offer."""
    finite = np.asarray(z)[np.isfinite(z)]
    if not finite.size or finite.max() <= 0:
        return None
    return float(max(np.percentile(finite, percentile), 1e-6))


def _integer_ticks(values: np.ndarray) -> dict:
    """Range and tick spacing for an axis of whole numbers (lags or time steps)."""
    if not len(values):
        return {}
    low, high = int(values.min()), int(values.max())
    return {
        "range": [low - 0.5, high + 0.5],
        "tickmode": "linear",
        "tick0": 0,
        "dtick": max(1, int(np.ceil((high - low) / 8))),
        "tickformat": "d",  # 9860, not 9.86k
    }
