"""Figure builders: data in, Plotly figure out. No Streamlit, no model: tests call them alone.

The figures redrawn on every knob change (timeline, heatmaps) are written as plain Plotly
specs (trace and layout dicts, subplot domains computed here) and wrapped without Plotly's
per-property validation, which costs ~10x the drawing itself; the tests validate each of
them in full. Shape letters: T time steps, C channels, K window slots, R heatmap rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative

from larnn.inference import AttentionGrid

CHANNEL_COLORS = qualitative.D3
CLASS_COLORS = qualitative.Set2
MODEL_COLORS = {"LARNN": "#4c72b0", "LSTM": "#dd8452"}
TRUTH_COLOR = "#e45756"
STEP_COLOR = "#d62728"
WINDOW_FILL = "rgba(76, 114, 176, 0.10)"
HEATMAP_SCALE = "Viridis"
FONT = {"size": 13}
TITLE_HEIGHT = 48  # px the top margin grows by for a title and a one-line subtitle (`titled`)
SUBTITLE_LINE = 16  # px for each further line of the subtitle
SWEEP_LABEL_ROW = 18  # px between the sweep's two rows of window labels
# The heatmap uses it too, so the time axes align. Fixed (no autoexpand): Plotly otherwise
# measures its legends, colour bars and slider after drawing and draws the whole figure again
# to make room (doAutoMargin: ~30% of the browser's time on a knob change, Chrome's profiler).
TIMELINE_MARGIN = {"l": 60, "r": 210, "t": 40, "b": 45, "autoexpand": False}
SLIDER_HEIGHT = 100  # px under the time axis for the time-step slider and its text
# How a timeline slider step is drawn: Plotly.animate with no transition and no redraw, which
# redraws the traces and the shapes but not the rest of the layout (titles, axes, legends).
# Plotly.update recomputed and redrew the whole timeline (a shape's x0 and an annotation's
# text are "calc" edits to it): a median 172-209 ms a step against 110 ms in the timeline's
# iframe, on the AVX2 VM (benchmarks/README.md).
STEP_AT_ONCE = {
    "mode": "immediate",
    "frame": {"duration": 0, "redraw": False},
    "transition": {"duration": 0},
}
HOVER_INPUTS_MAX_CELLS = 20_000  # heatmaps with inputs in their hover: UCI HAR's 128 x 128 fits


def _color(colors: Sequence[str], i: int) -> str:
    return colors[i % len(colors)]


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) of each run of True in a 1-D bool array."""
    padded = np.concatenate([[False], np.asarray(mask, dtype=bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _figure(data: list[dict], layout: dict) -> go.Figure:
    """A Figure from specs this module wrote, skipping Plotly's validation (tests do it)."""
    return go.Figure({"data": data, "layout": layout}, _validate=False)


def _axis(i: int) -> str:
    """Subplot i (0-based) -> the axis suffix Plotly uses: '', '2', '3', ..."""
    return "" if i == 0 else str(i + 1)


def _stack(heights: Sequence[float], gap: float) -> list[tuple[float, float]]:
    """Vertical domains (bottom, top) of stacked rows, first row on top."""
    scale = (1.0 - gap * (len(heights) - 1)) / sum(heights)
    domains, top = [], 1.0
    for h in heights:
        bottom = max(top - h * scale, 0.0)
        domains.append((bottom, top))
        top = bottom - gap
    return domains


def _title(text: str, x: float, y: float) -> dict:
    return {
        "text": text,
        "x": x,
        "y": y,
        "xref": "paper",
        "yref": "paper",
        "xanchor": "center",
        "yanchor": "bottom",
        "showarrow": False,
        "font": {"size": 13},
    }


def _vline(x: float, axis: str, color: str = STEP_COLOR, width: float = 2) -> dict:
    return {
        "type": "line",
        "x0": x,
        "x1": x,
        "y0": 0,
        "y1": 1,
        "xref": f"x{axis}",
        "yref": f"y{axis} domain",
        "line": {"color": color, "width": width, "dash": "dot"},
    }


def _vrect(x0: float, x1: float, axis: str, color: str, opacity: float = 1.0) -> dict:
    return {
        "type": "rect",
        "x0": x0,
        "x1": x1,
        "y0": 0,
        "y1": 1,
        "xref": f"x{axis}",
        "yref": f"y{axis} domain",
        "fillcolor": color,
        "opacity": opacity,
        "line": {"width": 0},
        "layer": "below",
    }


def _legend_marker(name: str, color: str, legend: str = "legend") -> dict:
    """A legend entry without data, for a shaded band."""
    return {
        "type": "scatter",
        "x": [None],
        "y": [None],
        "mode": "markers",
        "marker": {"color": color, "symbol": "square", "size": 12},
        "name": name,
        "legend": legend,
    }


# --- the timeline: signal, attention of step t, running predictions on one time axis --------


@dataclass(frozen=True)
class StepAttention:
    """Where every drawn step t attends: the weights and absolute time of each queue slot."""

    weights: np.ndarray  # (T, K) averaged over the heads on (`larnn.inference.head_weights`)
    slot_time: np.ndarray  # (T, K) time step j held by each slot, -1 where empty


def timeline_figure(
    X: np.ndarray,
    t: int,
    *,
    channel_names: Sequence[str],
    channel_units: Sequence[str],
    start: int = 0,
    step_attention: StepAttention | None = None,
    window: int | None = None,
    relevant_steps: np.ndarray | None = None,
    running: dict[str, np.ndarray] | None = None,
    class_names: Sequence[str] = (),
    true_class: int | None = None,
    value_label: str = "value",
) -> go.Figure:
    """Rows sharing the time axis: the input channels, where step t attends, running predictions,
    and a slider under them that moves t in the browser (no rerun of the app).

    X: (T, C) input as drawn (raw or standardised; value_label says which), the steps
    start .. start + T - 1 of the series. t: the absolute step marked first. step_attention:
    rows of the same steps, None for no attention row. window: k', shaded left of t on the
    signal. relevant_steps: (T,) bool ground truth, shaded. running: {model role: (T, classes)}.
    """
    X = np.asarray(X)
    T = X.shape[0]
    steps = start + np.arange(T)
    running = running or {}
    titles, heights = ["Input channels"], [0.42]
    if step_attention is not None:
        titles.append(
            "Where step t looks: attention on each past step j (the largest under the plot)"
        )
        heights.append(0.2)
    for name in running:
        titles.append(f"{name}: running prediction (probability of each class after step t)")
        heights.append(0.19)
    n = len(titles)
    domains = _stack(heights, gap=0.07)
    data: list[dict] = []
    shapes: list[dict] = []  # first the n lines at t, then the window: the slider moves them
    layout: dict = {}
    for i, (bottom, top) in enumerate(domains):
        a = _axis(i)
        layout[f"xaxis{a}"] = {
            "anchor": f"y{a}",
            "domain": [0, 1],
            "range": [start - 0.5, start + T - 0.5],
            "tickformat": "d",  # 19750, not 19.75k
            "showticklabels": i == n - 1,
            **({"matches": "x"} if i else {}),
            **({"title": {"text": "time step"}} if i == n - 1 else {}),
        }
        layout[f"yaxis{a}"] = {"anchor": f"x{a}", "domain": [bottom, top]}
        shapes.append(_vline(t, a))
    if window is not None:
        shapes.append(_vrect(*_window_edges(t, window), "", WINDOW_FILL))
        data.append(_legend_marker(f"window of step t (k' = {window})", "rgba(76, 114, 176, 0.35)"))

    for c, name in enumerate(channel_names):
        unit = channel_units[c] if c < len(channel_units) else ""
        data.append(
            {
                "type": "scatter",
                "x": steps,
                "y": X[:, c],
                "name": name,
                "mode": "lines",
                "line": {"color": _color(CHANNEL_COLORS, c), "width": 1.5},
                "hovertemplate": f"{name} = %{{y:.3g}} {unit}<extra></extra>",
                "legend": "legend",
            }
        )
    layout["yaxis"]["title"] = {"text": value_label}
    if relevant_steps is not None:
        for first, last in runs(relevant_steps):
            for i in range(2 if step_attention is not None else 1):
                shapes.append(
                    _vrect(start + first - 0.5, start + last + 0.5, _axis(i), TRUTH_COLOR, 0.18)
                )
        data.append(_legend_marker("ground-truth steps", "rgba(228, 87, 86, 0.4)"))

    row = 0
    bars: list[int] = []  # trace indices of the attention bars: plain, then ground truth
    if step_attention is not None:
        row += 1
        a = _axis(row)
        for color, truth in ((MODEL_COLORS["LARNN"], False), (TRUTH_COLOR, True)):
            bars.append(len(data))
            data.append(
                {
                    "type": "bar",
                    **_step_bars(step_attention, start, relevant_steps, t, truth),
                    "xaxis": f"x{a}",
                    "yaxis": f"y{a}",
                    "marker": {"color": color},
                    "hovertemplate": "j = %{x}<br>lag = %{customdata}<br>weight = %{y:.3f}"
                    "<extra></extra>",
                    "name": "attention of step t",
                    "showlegend": False,
                }
            )
        layout[f"yaxis{a}"].update(title={"text": "weight"}, range=_weight_range(step_attention))
    for m, (model, probabilities) in enumerate(running.items()):
        row += 1
        a = _axis(row)
        for k, name in enumerate(class_names):
            is_true = k == true_class
            data.append(
                {
                    "type": "scatter",
                    "x": steps,
                    "y": np.asarray(probabilities)[:, k],
                    "xaxis": f"x{a}",
                    "yaxis": f"y{a}",
                    "name": f"{name} (true class)" if is_true else name,
                    "legendgroup": name,
                    "showlegend": m == 0,
                    "mode": "lines",
                    "line": {"color": _color(CLASS_COLORS, k), "width": 3.5 if is_true else 1.6},
                    "hovertemplate": f"{model} P({name}) = %{{y:.3f}}<extra></extra>",
                    "legend": "legend2",
                }
            )
        layout[f"yaxis{a}"].update(title={"text": "P(class)"}, range=[-0.02, 1.02])
    class_top = domains[1 + (step_attention is not None)][1] if running else 1.0
    slider_steps = [
        _slider_step(u, n, window, step_attention, start, relevant_steps, bars, len(data))
        for u in steps
    ]
    layout.update(
        height=370 + 160 * (n - 1),
        margin={**TIMELINE_MARGIN, "b": 45 + SLIDER_HEIGHT},
        hovermode="x unified",
        font=FONT,
        shapes=shapes,
        annotations=[
            _title(text, 0.5, top) for text, (_, top) in zip(titles, domains, strict=True)
        ],
        legend={"title": {"text": "channels"}, "x": 1.01, "y": 1.0, "yanchor": "top"},
        legend2={"title": {"text": "classes"}, "x": 1.01, "y": class_top, "yanchor": "top"},
        bargap=0.1,
        sliders=[
            {
                "active": int(t - start),
                "steps": slider_steps,
                "currentvalue": {
                    "prefix": "drag the red handle to move the time step: t = ",
                    "font": {"size": 14, "color": "black"},
                },
                "font": {"color": "rgba(0, 0, 0, 0)"},  # no label under every step
                # Rail and handle (Plotly colours both with bgcolor) in the t line's red, so
                # they stand out: Plotly's own pale grey was easy to miss.
                "bgcolor": "#f4b6b6",
                "bordercolor": STEP_COLOR,
                "borderwidth": 1.5,
                "activebgcolor": STEP_COLOR,
                "ticklen": 0,
                "minorticklen": 0,
                "len": 1.0,
                "x": 0,
                "y": 0,
                "yanchor": "top",
                "pad": {"t": 70, "b": 0},  # its text under the axis title
                "transition": {"duration": 0},
            }
        ],
    )
    return _figure(data, layout)


def _window_edges(t: int, window: int) -> tuple[float, float]:
    """The shaded window of step t: the past steps max(t - k', 0) .. t - 1 (none at t = 0)."""
    return (max(t - window, 0) - 0.5, t - 0.5) if t >= 1 else (-0.5, -0.5)


def _visible_slots(step_attention: StepAttention, start: int, t: int) -> tuple[np.ndarray, ...]:
    """(j, weight) of step t's filled slots, oldest first."""
    j = step_attention.slot_time[t - start]  # (K,)
    keep = j >= 0
    return j[keep], step_attention.weights[t - start][keep]


def _step_bars(
    step_attention: StepAttention,
    start: int,
    relevant_steps: np.ndarray | None,
    t: int,
    truth: bool,
) -> dict:
    """x (j), y (weight) and customdata (lag) of step t's bars on (truth) or off the truth."""
    j, weight = _visible_slots(step_attention, start, t)
    on_truth = np.zeros(len(j), dtype=bool)
    if relevant_steps is not None:
        inside = (j >= start) & (j < start + len(relevant_steps))
        on_truth[inside] = np.asarray(relevant_steps)[j[inside] - start]
    keep = on_truth == truth
    return {"x": j[keep], "y": weight[keep], "customdata": t - j[keep]}


def _weight_range(step_attention: StepAttention) -> list[float]:
    """The attention row's y range, the same for every t: a peaked step then reads higher
    than a diffuse one (a range fitted to each step drew both as tall), and a slider step
    leaves the axis alone (moving a range costs Plotly a second redraw of the timeline)."""
    weight = step_attention.weights[step_attention.slot_time >= 0]
    top = float(weight.max()) if weight.size else 1.0
    return [0.0, max(top, 1e-6) * 1.1]


def _step_label(step_attention: StepAttention | None, start: int, t: int, top: int = 3) -> str:
    """The slider's text for step t: '9 · looks most at j = 8 (0.40), j = 2 (0.21), ...'."""
    if step_attention is None:
        return str(t)
    j, weight = _visible_slots(step_attention, start, t)
    order = np.argsort(-weight, kind="stable")[:top]
    most = ", ".join(f"j = {j[i]} ({weight[i]:.2f})" for i in order)
    return f"{t} · " + (f"looks most at {most}" if most else "nothing in its window yet")


def _slider_step(
    t: int,
    rows: int,
    window: int | None,
    step_attention: StepAttention | None,
    start: int,
    relevant_steps: np.ndarray | None,
    bars: list[int],
    traces: int,
) -> dict:
    """One slider position: a Plotly.animate frame moving the lines, the window and the bars
    to t, drawn at once (STEP_AT_ONCE). Its label, shown beside the slider, names t and where
    it looks most (a title in the plot would need a full redraw to change)."""
    # The first shapes, merged into the layout's (animate takes nested objects, not paths).
    shapes = [{"x0": int(t), "x1": int(t)} for _ in range(rows)]
    if window is not None:
        x0, x1 = map(float, _window_edges(t, window))
        shapes.append({"x0": x0, "x1": x1})
    # Every trace, the unchanged ones with nothing to change: a transition draws the traces
    # it names and takes the others off the page.
    data: list[dict] = [{} for _ in range(traces)]
    if step_attention is not None:
        for index, truth in zip(bars, (False, True), strict=True):
            spec = _step_bars(step_attention, start, relevant_steps, t, truth)
            # plain lists: Plotly.animate gets these as they are, not as the decoded typed
            # arrays plotly.py writes for trace data
            data[index] = {key: value.tolist() for key, value in spec.items()}
    frame = {"data": data, "traces": list(range(traces)), "layout": {"shapes": shapes}}
    label = _step_label(step_attention, start, int(t))
    return {"label": label, "method": "animate", "args": [frame, STEP_AT_ONCE]}


def overview_figure(
    signal: tuple[np.ndarray, np.ndarray],
    running: dict[str, tuple[np.ndarray, np.ndarray]],
    span: tuple[int, int],
    length: int,
    *,
    channel_names: Sequence[str],
    class_names: Sequence[str],
    value_label: str = "value",
) -> go.Figure:
    """A whole long series, thinned for drawing, with the stretch drawn in full shaded.

    signal: (steps, values), each (P, C) from `app.downsample.min_max` (every trace its own
    steps). running: {model role: (steps, values)}, each (P, classes), likewise. span:
    (first, stop) of the stretch the heatmaps and the timeline draw; length: the series' T.
    """
    rows = [
        (
            "Input channels, each bucket of steps as its lowest and highest value",
            signal,
            channel_names,
        )
    ]
    rows += [(f"{role}: running prediction", pair, class_names) for role, pair in running.items()]
    domains = _stack([0.5] + [0.25] * (len(rows) - 1), gap=0.12)
    data: list[dict] = []
    shapes: list[dict] = []
    layout: dict = {}
    for i, ((_, (steps, values), names), (bottom, top)) in enumerate(
        zip(rows, domains, strict=True)
    ):
        a = _axis(i)
        colors = CHANNEL_COLORS if i == 0 else CLASS_COLORS
        layout[f"xaxis{a}"] = {
            "anchor": f"y{a}",
            "domain": [0, 1],
            "range": [-0.5, length - 0.5],
            "tickformat": "d",
            **({"matches": "x"} if i else {}),
            **({"title": {"text": "time step"}} if i == len(rows) - 1 else {}),
        }
        layout[f"yaxis{a}"] = {
            "anchor": f"x{a}",
            "domain": [bottom, top],
            "title": {"text": value_label if i == 0 else "P(class)"},
        }
        for c, name in enumerate(names):
            data.append(
                {
                    "type": "scatter",
                    "x": steps[:, c],
                    "y": values[:, c],
                    "xaxis": f"x{a}",
                    "yaxis": f"y{a}",
                    "name": name,
                    "mode": "lines",
                    "line": {"color": _color(colors, c), "width": 1},
                    "legend": "legend" if i == 0 else "legend2",
                    "showlegend": i <= 1,
                    "hoverinfo": "skip",
                }
            )
        stretch = _vrect(span[0] - 0.5, span[1] - 0.5, a, "rgba(214, 39, 40, 0.12)")
        shapes.append({**stretch, "layer": "above", "line": {"color": STEP_COLOR, "width": 1.5}})
    layout.update(
        height=220 + 110 * len(rows),
        margin={**TIMELINE_MARGIN, "autoexpand": True},  # drawn once per upload, legends grow
        font=FONT,
        shapes=shapes,
        annotations=[
            _title(t, 0.5, top) for (t, _, _), (_, top) in zip(rows, domains, strict=True)
        ],
        legend={"title": {"text": "channels"}, "x": 1.01, "y": 1.0, "yanchor": "top"},
        legend2={"title": {"text": "classes"}, "x": 1.01, "y": domains[-1][1], "yanchor": "top"},
    )
    return _figure(data, layout)


# --- attention heatmaps --------------------------------------------------------------------


def _axis_title(axis: str) -> str:
    return "lag t - j (steps back)" if axis == "lag" else "past time step j"


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
) -> go.Figure:
    """Query step t (x) against past step (y: lag or time j); z is the attention weight.

    Hover shows t, j, lag and weight, and the inputs at j when X (T, C) is given and the grid
    has at most HOVER_INPUTS_MAX_CELLS cells (a long stretch on the time axis would carry
    megabytes of them). truth_steps: ground-truth time steps, enclosed by red lines.
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
        "yaxis": {"title": {"text": _axis_title(grid.axis)}, **_integer_ticks(grid.y)},
    }
    return _figure(data, layout)


def head_grid_figure(
    grids: Sequence[AttentionGrid],
    head_titles: Sequence[str],
    *,
    truth_steps: Sequence[int] | None = None,
    cols: int = 4,
) -> go.Figure:
    """One small heatmap per head on a shared colour scale; hover shows head, t, j, lag, weight."""
    n = len(grids)
    cols = max(1, min(cols, n))
    rows = -(-n // cols)
    hgap, vgap = 0.03, 0.1
    width = (1.0 - hgap * (cols - 1)) / cols
    vgap = 75 / (250 * rows) if rows > 1 else vgap  # room for tick labels and the next titles
    heights = _stack([1.0] * rows, vgap)
    tops = [_finite_max(g.z) for g in grids]  # None for a head switched off: it sets no scale
    zmax = max((top for top in tops if top is not None), default=1.0)
    axis_kind = grids[0].axis if grids else "lag"
    ticks = _integer_ticks(grids[0].y) if grids else {}
    data: list[dict] = []
    annotations: list[dict] = []
    layout: dict = {}
    for h, (grid, name) in enumerate(zip(grids, head_titles, strict=True)):
        r, c = divmod(h, cols)
        a = _axis(h)
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
        annotations.append(_title(name, x0 + width / 2, top))
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
    )
    return _figure(data, layout)


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


# --- predictions and the window sweep ------------------------------------------------------


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
    return _figure(data, layout)


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
    shapes = [_vline(trained_window, "", color="gray", width=1.5)]
    notes = [_note(f"trained k = {trained_window}", trained_window, 1.0, inward(trained_window))]
    if current_window is not None and current_window != trained_window:
        shapes.append(_vline(current_window, "", width=1.5))
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
    return _figure(data, layout)


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


def titled(
    fig: go.Figure, subtitle: str, title: str | None = None, line_chars: int = 160
) -> go.Figure:
    """The figure with a title at the top (its own when `title` is None) and, under it, what
    it shows (models, knobs, data), broken at ' · ' into lines of about `line_chars`
    characters; the top margin grows to hold them."""
    lines = wrap_parts(subtitle, line_chars)
    top = fig.layout.margin.t if fig.layout.margin.t is not None else 40
    # Assigned, not passed to update_layout: that took ten times as long (4 ms a figure), on
    # every figure of every run.
    fig.layout.title = {
        "text": fig.layout.title.text if title is None else title,
        "subtitle": {"text": "<br>".join(lines), "font": {"size": 12}},
        "x": 0,
        "xanchor": "left",
        "xref": "paper",
        "y": 1,
        "yref": "container",
        "yanchor": "top",
        "pad": {"t": 8},
        "font": {"size": 15},
    }
    fig.layout.margin.t = top + TITLE_HEIGHT + SUBTITLE_LINE * (len(lines) - 1)
    return fig


def wrap_parts(text: str, line_chars: int, separator: str = " · ") -> list[str]:
    """Lines of at most about `line_chars` characters, broken only between parts."""
    lines: list[str] = []
    for part in text.split(separator):
        if lines and len(lines[-1]) + len(separator) + len(part) <= line_chars:
            lines[-1] += separator + part
        else:
            lines.append(part)
    return lines


def figure_html(fig: go.Figure, offline: bool = True) -> str:
    """A standalone HTML page of the figure; offline embeds plotly.js (~4.5 MB), else a CDN link.

    The page's <title> is the figure's title and subtitle (what it shows).
    """
    html = fig.to_html(include_plotlyjs=True if offline else "cdn", full_html=True)
    title = fig.layout.title
    words = " · ".join(t for t in (title.text, title.subtitle.text) if t) or "LARNN figure"
    return html.replace("<head>", f"<head>\n    <title>{escape(words, quote=False)}</title>", 1)
