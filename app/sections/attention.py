"""The attention sections: the heatmap of the layer shown, the timeline with its time-step
slider, the heatmap of each head, and an overview of a long series. Each live chart sits in
its own container, so that lines which come and go above it (with k', say) do not move it: a
moved chart is a new iframe, loaded anew.

The three charts share one time step t, moved in the browser (`app.live_chart`): by the
timeline's slider and play button, the arrow keys, or a click on a heatmap column (while
"A click on the heatmap" says so; else a click hides or shows the cell's step j).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
import streamlit as st

from app import (
    describe,
    downsample,
    faithfulness,
    faithfulness_figures,
    figures,
    heatmap_figures,
    knobs,
    memory_use,
    resources,
    timeline_figures,
)
from app.guard import guard
from app.live_chart import live_chart
from app.sidebar import toggle_clicked
from app.values import DataView, KnobChoice, ModelRun
from larnn.inference import attention_grid, head_weights, step_attention
from larnn.model import InferenceKnobs


def pick_span(T: int) -> tuple[int, int]:
    """(first, stop): the steps the heatmaps and the timeline draw. All of a short series; of a
    long one a stretch of VIEW_STEPS chosen here, while the models run the whole series."""
    if T <= downsample.VIEW_STEPS:
        return 0, T
    st.session_state.setdefault(
        downsample.span_key(T), T - downsample.VIEW_STEPS
    )  # widgets take no default
    first = st.slider(
        f"First of the {downsample.VIEW_STEPS} steps drawn (the models ran all {T:,} steps)",
        min_value=0,
        max_value=T - downsample.VIEW_STEPS,
        step=1,
        key=downsample.span_key(T),
        help="A long series is drawn a stretch at a time: the heatmaps and the timeline show "
        "these steps, the overview below shows the whole series, thinned to its peaks.",
    )
    return downsample.drawn_span(T, first)


@dataclass(frozen=True)
class Shown:
    """What the attention sections draw of one sequence: its steps, the stretch drawn, the
    ground truth where known, the LARNN's run and knobs, and the context every title names."""

    x: np.ndarray  # (T, C) raw, without padding
    span: tuple[int, int]  # (first, stop): the steps drawn
    relevant: np.ndarray | None  # (T,) ground-truth steps, None when unknown
    larnn_run: ModelRun | None  # None when no LARNN runs (or has no knobs)
    choice: KnobChoice | None
    context: str

    @property
    def truth_steps(self) -> np.ndarray | None:
        return None if self.relevant is None else np.flatnonzero(self.relevant)

    @property
    def attending(self) -> bool:
        """Whether a LARNN runs with at least one head on: there is attention to draw."""
        return self.larnn_run is not None and self.choice is not None and bool(self.choice.heads_on)


def attention_sections(
    data: DataView,
    index: int,
    runs: dict[str, ModelRun],
    choice: KnobChoice | None,
) -> dict[str, object]:
    """Heatmap, timeline (with its time-step slider) and head grid; returns the figures drawn."""
    drawn: dict[str, object] = {}
    x = data.sequence(index)  # (T, C), without padding
    T = len(x)
    relevant = None if data.relevant_steps is None else data.relevant_steps[index, :T]  # (T,)
    larnn_run = runs.get("LARNN") if choice is not None else None
    context = describe.context_line(data, index, runs, choice)

    st.subheader("Signal, attention and running predictions")
    first, stop = pick_span(T)
    left, right = st.columns(2)
    axis = left.radio(
        "Past steps on the heatmaps' vertical axis",
        ["lag", "time"],
        format_func={"lag": "lag t − j (steps back)", "time": "absolute time j"}.get,
        horizontal=True,
        key="axis",
    )
    standardise = right.toggle(
        "Show the inputs standardised, as the models see them",
        key="standardise",
        help="Each channel minus its training mean, divided by its training std "
        "(the normaliser stored in the checkpoint). Hover values stay raw.",
    )
    shown_x, shown_units, value_label = x, data.channel_units, "value"
    if standardise and runs:
        first_model = next(iter(runs.values())).model
        shown_x = resources.normalizer(first_model.checkpoint).apply(x)
        shown_units, value_label = ("std",) * len(data.channel_names), "standardised"
    shown = Shown(x, (first, stop), relevant, larnn_run, choice, context)
    if larnn_run is not None and choice is not None:
        with st.container(), guard("Attention heatmap"):
            drawn.update(heatmap_section(data, shown, axis))
    with st.container(), guard("Signal and running predictions"):
        drawn.update(timeline_section(data, index, runs, shown, shown_x, shown_units, value_label))
    if T > downsample.VIEW_STEPS:
        with guard("Overview of the whole series"):
            drawn["overview"] = overview_section(
                shown_x, runs, shown.span, context, value_label, data
            )
    if shown.attending:
        with st.container(), guard("Per-head heatmaps"):
            drawn.update(head_grid_section(shown, axis))
    return drawn


CLICKS = {
    "select": "selects its time step t",
    "hide": "hides or shows its past step j (memory edits)",
}


def heatmap_section(data: DataView, shown: Shown, axis: str) -> dict[str, object]:
    """The attention heatmap of the layer shown (its heads averaged), with the lines under it."""
    run, choice = shown.larnn_run, shown.choice
    if not choice.heads_on:
        st.warning("Every head is switched off: there is no attention to show.")
        return {}
    click = st.radio(
        "A click on a heatmap cell",
        list(CLICKS),
        format_func=CLICKS.get,
        horizontal=True,
        key="heatmap_click",
    )
    grid = attention_grid(run.inference, choice.layer, choice.heads_on, axis, shown.span)
    fig = heatmap_figures.attention_heatmap(
        grid,
        describe.heatmap_title(choice),
        truth_steps=shown.truth_steps,
        X=shown.x,
        channel_names=data.channel_names,
        channel_units=data.channel_units,
        t=shown.span[1] - 1,
        patch=run.model.checkpoint.config.patch,
    )
    figures.titled(fig, shown.context, lines=heatmap_figures.SUBTITLE_LINES)
    heatmap_chart(fig, choice.knobs.hidden_steps, run.model.key, shown.span, click)
    st.caption(
        "Colour: attention weight (the scale tops out at the 99th percentile, so "
        "the first steps, with only one or two past steps to share it, do not wash "
        "out the rest). White: no such past step (before the start, or beyond k'). "
        "Red outline: the time step t, the same as the timeline's red line below. Hover a "
        "cell for t, j, lag, weight and the inputs at j; "
        + (
            "click it to select its t (on this heatmap, the timeline and the heads'), then "
            "step t with the arrow keys. To hide a step j instead, choose 'hides or shows' "
            "above (x: a hidden step)."
            if click == "select"
            else "click it to hide or show step j (x: hidden). To select a time step t "
            "instead, choose 'selects its time step t' above."
        )
    )
    attention_notes(run, choice, shown.relevant, shown.span)
    memory_use_note(data, run, choice)
    return {"attention_heatmap": fig}


def timeline_section(
    data: DataView,
    index: int,
    runs: dict[str, ModelRun],
    shown: Shown,
    shown_x: np.ndarray,
    shown_units: tuple[str, ...],
    value_label: str,
) -> dict[str, object]:
    """The input, where step t looks and the running predictions, with the time-step slider."""
    first, stop = shown.span
    T = len(shown.x)
    run, choice, relevant = shown.larnn_run, shown.choice, shown.relevant
    steps = None
    if shown.attending:
        weights = head_weights(run.inference, choice.layer, choice.heads_on, shown.span)
        steps = timeline_figures.StepAttention(weights, run.inference.slot_time[first:stop])
    running = {role: r.inference.step_probabilities[first:stop] for role, r in runs.items()}
    class_names = next(reversed(runs.values())).model.class_names if runs else ()
    same_classes = data.class_names is None or class_names == data.class_names
    true_class = None if data.labels is None else int(data.labels[index])
    fig = timeline_figures.timeline_figure(
        shown_x[first:stop],
        stop - 1,
        channel_names=data.channel_names,
        channel_units=shown_units,
        start=first,
        step_attention=steps,
        window=choice.window if run is not None and choice is not None else None,
        patch=1 if run is None else run.model.checkpoint.config.patch,
        relevant_steps=None if relevant is None else relevant[first:stop],
        running=running,
        class_names=class_names,
        true_class=true_class if same_classes else None,
        value_label=value_label,
    )
    figures.titled(fig, shown.context, "Signal, where step t looks, running predictions")
    live_chart(fig, key="timeline", steps=shown.span, playback=True)
    st.caption(
        (
            "Drag the slider under the plot to move the time step t (the red dotted line), "
            "press Play to step through time, or click the plot and step t with the arrow "
            "keys; t moves in your browser, without rerunning the models, and the heatmaps "
            "above and below mark it too. Top: the input. "
            "Middle: how step t spreads its attention over the past steps j in its window"
            + (" (red bars: ground-truth steps)" if relevant is not None else "")
            + ", on one scale for every t, so a step that looks at one place stands taller"
            " than one that spreads its attention. Bottom: each model's class probabilities if "
            "the sequence ended at that step."
            if steps is not None
            else "Drag the slider under the plot to move the time step t (the red dotted "
            "line), press Play, or click the plot and use the arrow keys. Top: the input. "
            "Bottom: each model's class probabilities if the sequence ended at that step."
        )
        + " The models were trained to classify whole sequences after their last step, "
        "not mid-way: earlier values show what they say there, not what they learned to say."
    )
    if steps is not None:  # the step that makes the prediction
        last = step_attention(run.inference, choice.layer, T - 1, choice.heads_on)
        if len(last):
            st.markdown(
                describe.most_attended(last, T - 1)
                + describe.prediction_step(run.model.checkpoint.config.readout)
            )
    return {"timeline": fig}


def head_grid_section(shown: Shown, axis: str) -> dict[str, object]:
    """One heatmap per head of the layer shown, on one colour scale (none for one head)."""
    run, choice = shown.larnn_run, shown.choice
    heads = choice.trained.heads
    if heads <= 1:
        return {}
    st.subheader(f"Each head of layer {choice.layer}")
    grids = [
        attention_grid(run.inference, choice.layer, [h], axis, shown.span) for h in range(heads)
    ]
    titles = describe.head_titles(run, choice, shown.relevant)
    fig = heatmap_figures.head_grid_figure(
        grids, titles, truth_steps=shown.truth_steps, t=shown.span[1] - 1
    )
    figures.titled(fig, shown.context, "One heatmap per head, on one colour scale")
    live_chart(fig, key="head_grid", steps=shown.span, select_on_click=True)
    st.caption(
        "One colour scale for all heads. A head switched off attends nowhere. "
        "'truth 2.0×': twice the attention on ground-truth steps that chance gives."
        if shown.relevant is not None
        else "One colour scale for all heads. A head switched off attends nowhere."
    )
    return {"head_grid": fig}


def overview_section(
    x: np.ndarray,
    runs: dict[str, ModelRun],
    span: tuple[int, int],
    context: str,
    value_label: str,
    data: DataView,
) -> object:
    """The whole of a long series, thinned to each stretch's extremes, the drawn stretch shaded."""
    st.subheader("The whole series")
    class_names = next(reversed(runs.values())).model.class_names if runs else ()
    running = {
        role: downsample.min_max(run.inference.step_probabilities) for role, run in runs.items()
    }
    fig = timeline_figures.overview_figure(
        downsample.min_max(x),
        running,
        span,
        len(x),
        channel_names=data.channel_names,
        class_names=class_names,
        value_label=value_label,
    )
    figures.titled(fig, context, f"All {len(x):,} steps; shaded: the steps drawn above")
    st.plotly_chart(fig, key="overview")
    st.caption(
        f"Each line keeps its lowest and highest value in every stretch of "
        f"{-(-len(x) // (downsample.MAX_POINTS // 2)):,} steps, so short spikes stay visible. "
        f"Move the 'First of the {downsample.VIEW_STEPS} steps drawn' slider above to draw another "
        "stretch in full."
    )
    return fig


# --- the heatmap's clicks and the lines under it --------------------------------------------------


def heatmap_chart(
    fig,
    hidden_steps: tuple[int, ...] | None,
    model_key: str,
    span: tuple[int, int],
    click: str,
) -> None:
    """Draw the attention heatmap, following the page's time step t over `span`. A click on
    a cell selects its t (click "select", in the browser) or toggles its step j (hidden or
    shown: "hide", a rerun)."""
    key = f"heatmap_{model_key}"
    if click == "select":
        faithfulness_figures.clickable(fig, hidden_steps or (), faithfulness_figures.SELECT_HINT)
        live_chart(fig, key=key, steps=span, select_on_click=True)
    else:
        faithfulness_figures.clickable(fig, hidden_steps or ())
        live_chart(fig, key=key, steps=span, on_click=partial(toggle_clicked, key, model_key))


MEMORY_CHECK_SIZE = 200  # sequences of the split on which k' = 1 is set against the trained k'


def memory_use_note(data: DataView, run: ModelRun, choice: KnobChoice) -> None:
    """Whether the prediction rests on the memory drawn above: the model as trained, at k' = 1
    and at its trained k', on a fixed sample of the split (cached: run once per model and
    data, not per knob change)."""
    trained = choice.trained.window
    if trained == 1 or data.labels is None or data.class_names != run.model.class_names:
        return
    sample = knobs.sweep_sample(len(data), MEMORY_CHECK_SIZE)
    sweep = resources.window_sweep(
        run.model.key,
        run.model.checkpoint,
        f"{data.key}|sample{MEMORY_CHECK_SIZE}",
        data.X[sample],
        data.labels[sample],
        (1, trained),
        InferenceKnobs(),
        data.sample_lengths(sample),
    )
    verdict = memory_use.sweep_verdict(sweep, trained, len(sample))
    if verdict:
        st.markdown(f"{verdict} (The model as trained, on a fixed sample of this split.)")


def attention_notes(
    run: ModelRun,
    choice: KnobChoice,
    relevant: np.ndarray | None,
    span: tuple[int, int] | None = None,
) -> None:
    """Lines under the heatmap: the last step's attention on the ground-truth steps (when
    known and in its window), and where attention piles onto the oldest filled slot over
    the query steps drawn (`span`, all when None)."""
    if relevant is not None:
        retrieval = faithfulness.last_step_retrieval(
            run.inference, choice.layer, relevant, choice.heads_on
        )
        if retrieval is not None:
            st.markdown(faithfulness.retrieval_text(retrieval))
    oldest = faithfulness.oldest_slot_share(run.inference, choice.layer, choice.heads_on, span)
    st.markdown(faithfulness.oldest_slot_text(oldest, choice.layer))
