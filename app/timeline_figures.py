"""The timeline (signal, where step t looks, running predictions on one time axis, with the
browser's time-step slider) and the overview of a long series. Data in, Plotly figure out.
Shape letters: T time steps, C channels, K window slots.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from app.figures import (
    CHANNEL_COLORS,
    CLASS_COLORS,
    FONT,
    MODEL_COLORS,
    STEP_COLOR,
    TIMELINE_MARGIN,
    TRUTH_COLOR,
    WINDOW_FILL,
    axis_suffix,
    legend_marker,
    pick_color,
    runs,
    spec_figure,
    stack,
    subplot_title,
    vline,
    vrect,
)

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
    patch: int = 1,
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
    signal; patch: samples per encoder step (a stem's P), so the window spans k' patches.
    relevant_steps: (T,) bool ground truth, shaded. running: {model role: (T, classes)}.
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
    domains = stack(heights, gap=0.07)
    data: list[dict] = []
    shapes: list[dict] = []  # first the n lines at t, then the window: the slider moves them
    layout: dict = {}
    for i, (bottom, top) in enumerate(domains):
        a = axis_suffix(i)
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
        shapes.append(vline(t, a))
    if window is not None:
        shapes.append(vrect(*_window_edges(t, window, patch), "", WINDOW_FILL))
        slots = f"k' = {window}" + (f" slots of {patch} samples" if patch > 1 else "")
        data.append(legend_marker(f"window of step t ({slots})", "rgba(76, 114, 176, 0.35)"))

    for c, name in enumerate(channel_names):
        unit = channel_units[c] if c < len(channel_units) else ""
        data.append(
            {
                "type": "scatter",
                "x": steps,
                "y": X[:, c],
                "name": name,
                "mode": "lines",
                "line": {"color": pick_color(CHANNEL_COLORS, c), "width": 1.5},
                "hovertemplate": f"{name} = %{{y:.3g}} {unit}<extra></extra>",
                "legend": "legend",
            }
        )
    layout["yaxis"]["title"] = {"text": value_label}
    if relevant_steps is not None:
        for first, last in runs(relevant_steps):
            for i in range(2 if step_attention is not None else 1):
                shapes.append(
                    vrect(
                        start + first - 0.5, start + last + 0.5, axis_suffix(i), TRUTH_COLOR, 0.18
                    )
                )
        data.append(legend_marker("ground-truth steps", "rgba(228, 87, 86, 0.4)"))

    row = 0
    bars: list[int] = []  # trace indices of the attention bars: plain, then ground truth
    if step_attention is not None:
        row += 1
        a = axis_suffix(row)
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
        a = axis_suffix(row)
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
                    "line": {
                        "color": pick_color(CLASS_COLORS, k),
                        "width": 3.5 if is_true else 1.6,
                    },
                    "hovertemplate": f"{model} P({name}) = %{{y:.3f}}<extra></extra>",
                    "legend": "legend2",
                }
            )
        layout[f"yaxis{a}"].update(title={"text": "P(class)"}, range=[-0.02, 1.02])
    class_top = domains[1 + (step_attention is not None)][1] if running else 1.0
    slider_steps = [
        _slider_step(u, n, window, patch, step_attention, start, relevant_steps, bars, len(data))
        for u in steps
    ]
    layout.update(
        height=370 + 160 * (n - 1),
        margin={**TIMELINE_MARGIN, "b": 45 + SLIDER_HEIGHT},
        hovermode="x unified",
        font=FONT,
        shapes=shapes,
        annotations=[
            subplot_title(text, 0.5, top) for text, (_, top) in zip(titles, domains, strict=True)
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
    return spec_figure(data, layout)


def _window_edges(t: int, window: int, patch: int = 1) -> tuple[float, float]:
    """The shaded window of step t: the samples of its k' past patches, max(p - k', 0) * P ..
    p * P - 1 with p = t // P its own patch (P = 1: steps t - k' .. t - 1; none at p = 0)."""
    p = t // patch
    return (max(p - window, 0) * patch - 0.5, p * patch - 0.5) if p >= 1 else (-0.5, -0.5)


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
    patch: int,
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
        x0, x1 = map(float, _window_edges(t, window, patch))
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
    domains = stack([0.5] + [0.25] * (len(rows) - 1), gap=0.12)
    data: list[dict] = []
    shapes: list[dict] = []
    layout: dict = {}
    for i, ((_, (steps, values), names), (bottom, top)) in enumerate(
        zip(rows, domains, strict=True)
    ):
        a = axis_suffix(i)
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
                    "line": {"color": pick_color(colors, c), "width": 1},
                    "legend": "legend" if i == 0 else "legend2",
                    "showlegend": i <= 1,
                    "hoverinfo": "skip",
                }
            )
        stretch = vrect(span[0] - 0.5, span[1] - 0.5, a, "rgba(214, 39, 40, 0.12)")
        shapes.append({**stretch, "layer": "above", "line": {"color": STEP_COLOR, "width": 1.5}})
    layout.update(
        height=220 + 110 * len(rows),
        margin={**TIMELINE_MARGIN, "autoexpand": True},  # drawn once per upload, legends grow
        font=FONT,
        shapes=shapes,
        annotations=[
            subplot_title(t, 0.5, top) for (t, _, _), (_, top) in zip(rows, domains, strict=True)
        ],
        legend={"title": {"text": "channels"}, "x": 1.01, "y": 1.0, "yanchor": "top"},
        legend2={"title": {"text": "classes"}, "x": 1.01, "y": domains[-1][1], "yanchor": "top"},
    )
    return spec_figure(data, layout)
