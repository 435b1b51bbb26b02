"""Figures of the faithfulness sections (issue 13): data in, Plotly figure out. No Streamlit.

The attention heatmap gets a hover line saying that a click hides or shows a step (the click
itself is reported by app.live_chart) and marks on the cells of hidden steps. The others:
what hiding steps changes, the erasure curves, and Captum attribution over (time, channel)
under the input. Figures with a time axis use the timeline's margins, so their time axes
line up with it on the page.
Shape letters: T time steps, C channels, R heatmap rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from app.faithfulness import EditedRun, steps_text
from app.figures import FONT, MODEL_COLORS, STEP_COLOR, TIMELINE_MARGIN, TRUTH_COLOR

# The timeline's margins, but free to grow: channel names and legends here are wider, and
# these figures are not redrawn on every knob change.
MARGIN = {**TIMELINE_MARGIN, "autoexpand": True}
HIDDEN_COLOR = "#ffffff"  # the marks on hidden cells, over the dark "no attention" colour
HIDDEN_FILL = "rgba(120, 120, 120, 0.18)"  # hidden steps shaded on time axes
RANKING_COLORS = {
    "attention": "#4c72b0",
    "integrated_gradients": "#55a868",
    "saliency": "#c44e52",
    "random": "#8c8c8c",
}
RANKING_NAMES = {
    "attention": "attention",
    "integrated_gradients": "Integrated Gradients",
    "saliency": "saliency",
    "random": "random",
}
RANKING_SYMBOLS = {
    "attention": "circle",
    "integrated_gradients": "square",
    "saliency": "diamond",
    "random": "x",
}
MODEL_DASH = {"LARNN": "solid", "LSTM": "dash"}
CURVE_SPREAD = 1.1  # each ranking's n drawn this factor apart (log axis): equal curves show
ATTRIBUTION_SCALE = "RdBu_r"  # negative blue, positive red, 0 white
CLICK_HINT = "<br><i>click: hide or show step j</i>"
SELECT_HINT = "<br><i>click: select step t</i>"


# --- the attention heatmap: clicks and hidden steps -----------------------------------------------


def clickable(
    fig: go.Figure, hidden_steps: Sequence[int] = (), hint: str = CLICK_HINT
) -> go.Figure:
    """The attention heatmap `fig` (its first trace the heatmap of `attention_heatmap`)
    whose hover says what a click does (`hint`: CLICK_HINT, hide or show the cell's step j,
    or SELECT_HINT, select its t), with an x on each cell whose step is hidden. A click
    reports the cell's customdata, j first (app.live_chart). Returns `fig`, changed in place."""
    heat = fig.data[0]
    heat.hovertemplate = (heat.hovertemplate or "").replace(
        "<extra></extra>", hint + "<extra></extra>"
    )
    z = np.asarray(heat.z, dtype=np.float64)  # (R, T)
    rows, cols = np.nonzero(np.isfinite(z))  # the filled cells
    step = np.asarray(heat.customdata, dtype=np.float64)[rows, cols, 0]  # (F,) their j
    y = np.asarray(heat.y)[rows]
    x = np.asarray(heat.x)[cols]
    hidden = np.isin(step, np.asarray(hidden_steps, dtype=np.float64))
    if hidden.any():
        fig.add_trace(
            go.Scatter(
                x=x[hidden],
                y=y[hidden],
                mode="markers",
                marker={"symbol": "x-thin", "size": 6, "line": {"color": HIDDEN_COLOR, "width": 1}},
                name="hidden step",
                hoverinfo="skip",
                showlegend=False,  # the caption says it: the heatmap's legend row is full
            )
        )
    return fig


# --- what hiding steps changes --------------------------------------------------------------------


def _shade_steps(fig: go.Figure, steps: Sequence[int], row: int) -> None:
    ordered = np.unique(np.asarray(steps, dtype=int))
    if not len(ordered):
        return
    for stretch in np.split(ordered, np.flatnonzero(np.diff(ordered) != 1) + 1):
        fig.add_vrect(
            x0=stretch[0] - 0.5,
            x1=stretch[-1] + 0.5,
            fillcolor=HIDDEN_FILL,
            line_width=0,
            layer="below",
            row=row,
            col=1,
        )


def edits_figure(
    edited: Sequence[EditedRun],
    hidden_steps: Sequence[int],
    t: int,
    *,
    step_before: pd.DataFrame | None = None,
    step_after: pd.DataFrame | None = None,
    span: tuple[int, int] | None = None,
) -> go.Figure:
    """What hiding steps changes, on the time axis of the timeline: steps [first, stop) of
    `span` (None: every step), as the timeline draws them.

    A row per model: its running probability of the class it predicts with every step
    (solid: every step; dotted: steps hidden, or occluded for the LSTM). A last row, when the
    LARNN's step attention is given (`larnn.inference.step_attention` rows j, lag, weight):
    where step t looks, with every step and with the steps hidden. Hidden steps are shaded.
    """
    titles = [
        f"{run.role}: probability of '{run.class_names[run.before.predicted]}' after each "
        f"step ({'steps hidden from attention' if run.role == 'LARNN' else 'input occluded'})"
        for run in edited
    ]
    with_step = step_before is not None and step_after is not None
    if with_step:
        titles.append(f"LARNN: where step t = {t} looks, with every step and with steps hidden")
    rows = len(titles)
    fig = make_subplots(
        rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.12, subplot_titles=titles
    )
    T = len(edited[0].before.step_probabilities) if edited else t + 1
    first, stop = (0, T) if span is None else span
    for r, run in enumerate(edited, start=1):
        k = run.before.predicted
        color = MODEL_COLORS.get(run.role, "#444444")
        for label, inference, dash in (
            ("every step", run.before, "solid"),
            ("steps hidden", run.after, "dot"),
        ):
            fig.add_trace(
                go.Scatter(
                    x=np.arange(first, stop),
                    y=inference.step_probabilities[first:stop, k],
                    mode="lines",
                    line={"color": color, "dash": dash, "width": 2},
                    name=f"{run.role}, {label}",
                    hovertemplate=f"{run.role}, {label}<br>t = %{{x}}<br>p = %{{y:.3f}}"
                    "<extra></extra>",
                ),
                row=r,
                col=1,
            )
        fig.update_yaxes(range=[0, 1.05], title_text="p", row=r, col=1)
        _shade_steps(fig, hidden_steps, r)
    if with_step:
        for label, step, color in (
            ("every step", step_before, MODEL_COLORS["LARNN"]),
            ("steps hidden", step_after, "#9ecae1"),
        ):
            fig.add_trace(
                go.Bar(
                    x=step["j"],
                    y=step["weight"],
                    marker_color=color,
                    name=f"attention of t = {t}, {label}",
                    hovertemplate=f"{label}<br>j = %{{x}}<br>weight = %{{y:.3f}}<extra></extra>",
                ),
                row=rows,
                col=1,
            )
        fig.update_yaxes(title_text="weight", row=rows, col=1)
        _shade_steps(fig, hidden_steps, rows)
    for r in range(1, rows + 1):
        fig.add_vline(x=t, line={"color": STEP_COLOR, "dash": "dot", "width": 1.5}, row=r, col=1)
    fig.update_xaxes(range=[first - 0.5, stop - 0.5])
    fig.update_xaxes(title_text="time step t (bars: past step j)", row=rows, col=1)
    fig.update_layout(
        title={"text": f"Hidden steps j = {steps_text(hidden_steps)}: what changes"},
        height=120 + 170 * rows,
        margin=MARGIN,
        font=FONT,
        barmode="group",
        bargap=0.1,
        plot_bgcolor="white",
        legend={"x": 1.02, "xanchor": "left", "y": 1},
    )
    return fig


# --- faithfulness ---------------------------------------------------------------------------------


def erasure_figure(frame: pd.DataFrame, title: str) -> go.Figure:
    """Erasure curves from an `app.faithfulness.erasure_table` frame: the drop in the predicted
    class's probability against n when the top-n steps of each ranking are hidden
    (comprehensiveness, left: higher = those steps mattered) or all but them are
    (sufficiency, right: lower = those steps suffice). Colour and marker: ranking; line:
    model. Curves that coincide (a model that barely uses its memory ranks steps alike) would
    hide behind each other: each ranking is drawn a little apart in n (CURVE_SPREAD, the
    hover says the true n) and the earlier ones wider, so every one shows."""
    fig = make_subplots(
        rows=1,
        cols=2,
        horizontal_spacing=0.1,
        subplot_titles=[
            "Comprehensiveness: top n hidden (higher: they mattered)",
            "Sufficiency: only the top n kept (lower: they suffice)",
        ],
    )
    curves = list(frame.groupby(["model", "ranking"], sort=False))
    rankings = list(dict.fromkeys(ranking for (_, ranking), _ in curves))
    for i, ((model, ranking), curve) in enumerate(curves):
        shift = CURVE_SPREAD ** (rankings.index(ranking) - (len(rankings) - 1) / 2)
        for col, measure in ((1, "comprehensiveness"), (2, "sufficiency")):
            fig.add_trace(
                go.Scatter(
                    x=curve["n"] * shift,
                    y=curve[measure],
                    customdata=curve["n"],
                    mode="lines+markers",
                    line={
                        "color": RANKING_COLORS.get(ranking, "#444444"),
                        "dash": MODEL_DASH.get(model, "dot"),
                        "width": 2 + 2 * (len(curves) - 1 - i) / max(len(curves) - 1, 1),
                    },
                    marker={"symbol": RANKING_SYMBOLS.get(ranking, "circle"), "size": 9},
                    name=f"{model}, {RANKING_NAMES.get(ranking, ranking)}",
                    legendgroup=f"{model}{ranking}",
                    showlegend=col == 1,
                    hovertemplate=f"{model}, {RANKING_NAMES.get(ranking, ranking)}"
                    "<br>n = %{customdata}"
                    f"<br>{measure} = %{{y:.3f}}<extra></extra>",
                ),
                row=1,
                col=col,
            )
    ns = sorted(frame["n"].unique().tolist()) if len(frame) else []
    fig.update_xaxes(title_text="n steps", type="log", tickvals=ns, ticktext=[str(n) for n in ns])
    fig.update_yaxes(title_text="drop in p(predicted class)", col=1)
    fig.update_layout(
        title={"text": title},
        height=430,
        margin={"l": 60, "r": 20, "t": 70, "b": 45},
        font=FONT,
        plot_bgcolor="white",
        legend={"orientation": "h", "x": 0, "y": -0.3, "yanchor": "top"},
    )
    return fig


def attribution_figure(
    X: np.ndarray,
    attributions: dict[str, np.ndarray],
    *,
    channel_names: Sequence[str],
    t: int | None = None,
    truth_steps: Sequence[int] | None = None,
    titles: dict[str, str] | None = None,
) -> go.Figure:
    """The input (T, C) as the models see it (standardised) and each model's attribution
    {role: (T, C)} as heatmaps over (time, channel), one above the other on the timeline's
    time axis. Each attribution is divided by its largest |value| (its own colour scale,
    -1 .. 1): the models' logits differ in scale, so the pattern is compared, not the size.
    truth_steps: ground-truth steps, marked by red lines; t: the step marked on the page."""
    X = np.asarray(X, dtype=np.float64)
    T, C = X.shape
    names = list(channel_names)
    titles = titles or {}
    row_titles = ["Input, standardised (as the models see it)"] + [
        titles.get(role, f"{role}: attribution") for role in attributions
    ]
    rows = len(row_titles)
    fig = make_subplots(
        rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.06, subplot_titles=row_titles
    )
    limit = float(np.nanmax(np.abs(X))) or 1.0
    panels = [("input", X / limit)] + [
        (role, np.asarray(a, dtype=np.float64) / (float(np.abs(a).max()) or 1.0))
        for role, a in attributions.items()
    ]
    raw = [X] + [np.asarray(a, dtype=np.float64) for a in attributions.values()]
    for r, ((role, z), values) in enumerate(zip(panels, raw, strict=True), start=1):
        label = "value" if role == "input" else "attribution"
        fig.add_trace(
            go.Heatmap(
                z=z.T,
                x=np.arange(T),
                y=names,
                customdata=values.T,
                coloraxis="coloraxis",
                hovertemplate=f"{role}<br>t = %{{x}}<br>%{{y}}<br>{label} = %{{customdata:.3g}}"
                "<extra></extra>",
            ),
            row=r,
            col=1,
        )
        for step in truth_steps if truth_steps is not None else ():
            fig.add_vline(x=step, line={"color": TRUTH_COLOR, "width": 1}, row=r, col=1)
        if t is not None:
            fig.add_vline(
                x=t, line={"color": STEP_COLOR, "dash": "dot", "width": 1.5}, row=r, col=1
            )
    fig.update_xaxes(range=[-0.5, T - 0.5])
    fig.update_xaxes(title_text="time step t", row=rows, col=1)
    fig.update_yaxes(autorange="reversed", tickfont={"size": 10})
    fig.update_layout(
        title={"text": "Integrated Gradients over (time, channel), beside the input"},
        height=90 + rows * max(120, 14 * C + 40),
        margin=MARGIN,
        font=FONT,
        coloraxis={
            "colorscale": ATTRIBUTION_SCALE,
            "cmin": -1.0,
            "cmax": 1.0,
            "colorbar": {"title": {"text": "÷ largest |value|"}, "x": 1.02, "xanchor": "left"},
        },
    )
    return fig
