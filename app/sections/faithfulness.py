"""The faithfulness sections (issue 13): widgets and plots only, called from `app.main`.

What hiding past steps changes (they are picked in `app.sidebar`, or by a click on the
attention heatmap); Captum attribution beside the input for both models; the erasure test and head
importance. What they show comes from pure functions: `app.faithfulness` (steps, tables),
`app.faithfulness_figures` (figures) and `larnn.faithfulness` through `app.resources` (cached).
The faithfulness numbers are measured on the models as trained: the sidebar's knobs do not
apply to them (the hidden steps are what the erasure test varies).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from app import (
    describe,
    export,
    faithfulness,
    faithfulness_figures,
    figures,
    knobs,
    resources,
)
from app.faithfulness import EditedRun, FaithfulnessNumbers
from app.sidebar import span_drawn
from app.values import DataView, Fit, KnobChoice, ModelRun
from larnn.inference import step_attention

SAMPLE_SIZES = (50, 100, 200, 500)  # sequences of a split, for the sweep and the erasure test
SPLIT_CHUNK = 25  # sequences per cached chunk of the split's erasure test (and per progress)


# --- what hiding changes, and attribution beside the input ----------------------------------------


def edit_sections(
    data: DataView, index: int, runs: dict[str, ModelRun], choice: KnobChoice | None
) -> tuple[dict[str, object], FaithfulnessNumbers]:
    """The memory-edit comparison and the attribution view; the figures drawn and numbers."""
    drawn: dict[str, object] = {}
    numbers = FaithfulnessNumbers()
    hidden = () if choice is None else tuple(choice.knobs.hidden_steps or ())
    st.subheader("Memory edits: what hiding past steps changes")
    if "LARNN" not in runs or choice is None:
        st.info("Memory edits need a LARNN on this data.")
    elif not hidden:
        st.info(
            "No step is hidden. Switch on **Hide a range of past steps** in the sidebar "
            "(5 · Memory edits), or set 'A click on a heatmap cell' above the attention heatmap "
            "to 'hides or shows its past step j' and click a cell to hide its step j."
        )
    else:
        drawn["memory_edits"], numbers = _edits(data, index, runs, choice, hidden)
    with_attribution = _attribution(data, index, runs)
    if with_attribution is not None:
        drawn["attribution"] = with_attribution
    return drawn, numbers


def _edits(
    data: DataView,
    index: int,
    runs: dict[str, ModelRun],
    choice: KnobChoice,
    hidden: tuple[int, ...],
) -> tuple[object, FaithfulnessNumbers]:
    x = data.sequence(index)  # (T, C), without padding
    T = len(x)
    larnn = runs["LARNN"]
    every_step = replace(choice.knobs, hidden_steps=None)  # the counterfactual's baseline
    before = resources.infer(larnn.model.key, larnn.model.checkpoint, x, every_step)
    edited = [
        EditedRun(
            "LARNN", before, larnn.inference, larnn.model.class_names, "hidden from attention"
        )
    ]
    if "LSTM" in runs:
        lstm = runs["LSTM"]
        occluded = faithfulness.occluded(x, hidden, resources.normalizer(lstm.model.checkpoint))
        after = resources.infer(lstm.model.key, lstm.model.checkpoint, occluded)
        edited.append(
            EditedRun("LSTM", lstm.inference, after, lstm.model.class_names, "input occluded")
        )
    table = faithfulness.edits_table(edited)
    span = span_drawn(T)
    t = span[1] - 1  # the bars' step: the series' last, or the last of the stretch drawn
    step_before = step_after = None
    if choice.heads_on:
        step_before = step_attention(before, choice.layer, t, choice.heads_on)
        step_after = step_attention(larnn.inference, choice.layer, t, choice.heads_on)
    fig = faithfulness_figures.edits_figure(
        edited, hidden, t, step_before=step_before, step_after=step_after, span=span
    )
    figures.titled(fig, describe.context_line(data, index, runs, choice, lstm_occluded=True))
    st.plotly_chart(fig, key="memory_edits")  # full width: its time axis lines up above
    st.dataframe(table.round(3), hide_index=True)
    st.caption(
        f"Steps j = {faithfulness.steps_text(hidden)} hidden. LARNN: no layer may attend to them "
        "(the other knobs as set). LSTM: their input set to the training mean (0 after "
        "standardisation), since it has no attention to hide them from. 'drop': how much "
        "probability the class predicted with every step loses after the last step "
        f"(t = {T - 1}), where the prediction is made. Grey bands: the hidden steps."
    )
    notes = {"edits": f"steps {faithfulness.steps_text(hidden)} hidden; LARNN knobs as in 'knobs'"}
    return fig, FaithfulnessNumbers(hidden_steps=hidden, edits=table, notes=notes)


def _attribution(data: DataView, index: int, runs: dict[str, ModelRun]) -> object | None:
    st.subheader("Attribution beside attention: Integrated Gradients over (time, channel)")
    if not runs:
        st.info("No model runs on this data.")
        return None
    x = data.sequence(index)  # (T, C), without padding
    if len(x) > faithfulness.ANALYSIS_MAX_STEPS:
        st.info(too_long_text("Integrated Gradients", len(x)))
        return None
    attributions, titles, sums = {}, {}, []
    for role, run in runs.items():
        model = run.model
        values = resources.attribution(model.key, model.checkpoint, x)  # (T, C)
        predicted = resources.infer(model.key, model.checkpoint, x).predicted  # as trained
        attributions[role] = values
        titles[role] = f"{role} {model.name}: attribution to '{model.class_names[predicted]}'"
        sums.append(f"{role} {values.sum():+.2f}")
    first = next(iter(runs.values())).model
    relevant = None if data.relevant_steps is None else np.flatnonzero(data.relevant_steps[index])
    names = " · ".join(f"{role} {run.model.name}" for role, run in runs.items())
    fig = _attribution_chart(
        tuple(run.model.key for run in runs.values()),
        x,
        tuple(data.channel_names),
        None if relevant is None else tuple(relevant.tolist()),
        tuple(titles.items()),
        f"{names} (as trained) · {data.sequence_name(index)}",
        _shown=resources.normalizer(first.checkpoint).apply(x),
        _attributions=attributions,
    )
    st.plotly_chart(fig, key="attribution")
    st.caption(
        "Captum's Integrated Gradients of each model's logit for the class it predicts as "
        "trained (baseline: the training mean, 0 after standardisation; 32 steps). Red: the "
        "value pushed towards that class, blue: away from it. Each model on its own scale "
        "(divided by its largest |value|). Red vertical lines: ground-truth steps. The time "
        f"axis lines up with the timeline above. Sums (= logit(x) - logit(baseline)): "
        f"{', '.join(sums)}."
    )
    return fig


# The attribution and erasure figures show the models as trained: a knob change leaves them as
# they were, so each is built once per model pair and sequence and shared, never changed after
# (rebuilding them took about half of a knob change's run on the server). Arguments with a
# leading underscore are not hashed: the ones before them determine them.


@st.cache_resource(max_entries=32, show_spinner=False)
def _attribution_chart(
    model_keys: tuple[str, ...],
    raw: np.ndarray,
    channel_names: tuple[str, ...],
    truth_steps: tuple[int, ...] | None,
    titles: tuple[tuple[str, str], ...],
    subtitle: str,
    *,
    _shown: np.ndarray,
    _attributions: dict[str, np.ndarray],
) -> go.Figure:
    """The Integrated Gradients figure of `raw` (T, C); `_shown` is it standardised."""
    fig = faithfulness_figures.attribution_figure(
        _shown,
        _attributions,
        channel_names=channel_names,
        t=len(raw) - 1,
        truth_steps=truth_steps,
        titles=dict(titles),
    )
    return figures.titled(fig, subtitle)


@st.cache_resource(max_entries=32, show_spinner=False)
def _erasure_chart(
    model_keys: tuple[str, ...],
    raw: np.ndarray,
    ns: tuple[int, ...],
    subtitle: str,
    *,
    _frame: pd.DataFrame,
) -> go.Figure:
    """The erasure curves of the sequence `raw` (1, T, C), from their
    `faithfulness.erasure_table`."""
    fig = faithfulness_figures.erasure_figure(_frame, "Erasure test on this sequence")
    return figures.titled(fig, subtitle)


def too_long_text(analysis: str, length: int) -> str:
    return (
        f"{analysis} runs on sequences of up to {faithfulness.ANALYSIS_MAX_STEPS:,} steps; "
        f"this one has {length:,}. Crop the series to the stretch that matters and upload that."
    )


# --- faithfulness ---------------------------------------------------------------------------------


def faithfulness_section(
    data: DataView,
    index: int,
    runs: dict[str, ModelRun],
    fits: dict[str, Fit],
    numbers: FaithfulnessNumbers,
) -> tuple[dict[str, object], FaithfulnessNumbers]:
    """The erasure test on the sequence shown and, on request, over a sample of the split
    with the head-importance table; the figures drawn and the numbers, added to `numbers`."""
    if not runs:
        st.info("No model runs on this data.")
        return {}, numbers
    ns = faithfulness.ERASURE_NS
    raw = data.sequence(index)[None]  # (1, T, C), without padding
    if raw.shape[1] > faithfulness.ANALYSIS_MAX_STEPS:
        st.info(too_long_text("The erasure test", raw.shape[1]))
        return {}, numbers
    curves = {
        role: resources.erasure_curves(run.model.key, run.model.checkpoint, raw, ns)
        for role, run in runs.items()
    }
    frame = faithfulness.erasure_table(curves, f"{data.sequence_name(index)}, models as trained")
    names = " · ".join(f"{role} {run.model.name}" for role, run in runs.items())
    fig = _erasure_chart(
        tuple(run.model.key for run in runs.values()),
        raw,
        ns,
        f"{names} (as trained) · {data.sequence_name(index)}",
        _frame=frame,
    )
    st.plotly_chart(fig, key="erasure")
    st.caption(
        "Hide the n past steps a ranking puts first (LARNN: from attention in every layer; "
        "LSTM: input occluded) and see how much probability the predicted class loses "
        "(comprehensiveness), or keep only those n (sufficiency; DeYoung et al. 2020). "
        "Rankings: the last step's attention (LARNN only), Captum's Integrated Gradients and "
        "Saliency summed over channels, and random steps. A LARNN's candidates are the steps "
        "in its trained window; the LSTM's, every step but the last. Models as trained."
    )
    drawn: dict[str, object] = {"erasure": fig}
    notes = {**numbers.notes, "erasure": f"{data.sequence_name(index)}, models as trained"}
    numbers = replace(numbers, erasure=frame, notes=notes)
    split_drawn, numbers = _over_the_split(data, runs, fits, numbers)
    return {**drawn, **split_drawn}, numbers


def sample_size(column: DeltaGenerator, key: str) -> int:
    """The sample-size picker of a test over the split. Streamlit forgets a widget's value in a
    run that does not draw it (its section closed), so the choice is also kept aside."""
    kept = f"{key}_kept"
    size = column.selectbox(
        "Sample size",
        SAMPLE_SIZES,
        index=SAMPLE_SIZES.index(st.session_state.get(kept, 200)),
        key=key,
    )
    st.session_state[kept] = size
    return size


def _over_the_split(
    data: DataView,
    runs: dict[str, ModelRun],
    fits: dict[str, Fit],
    numbers: FaithfulnessNumbers,
) -> tuple[dict[str, object], FaithfulnessNumbers]:
    labelled = {
        role: run for role, run in runs.items() if fits.get(role) and fits[role].labels_comparable
    }
    st.markdown("**Over the split**")
    if data.labels is None or not labelled:
        st.info("The test over a split needs labelled data with the models' classes.")
        return {}, numbers
    left, right = st.columns([1, 3])
    size = sample_size(left, "faithfulness_size")
    sample = knobs.sweep_sample(len(data), size)
    request = (tuple(run.model.key for run in labelled.values()), data.key, size)
    requested = st.session_state.setdefault("faithfulness_runs", set())
    if left.button("Run over the split", type="primary", key="run_faithfulness"):
        requested.add(request)
    right.caption(
        f"Runs the erasure test on {len(sample)} sequences of this split (a fixed random "
        "sample, the sweep's) for each model, and, for the LARNN, the accuracy lost when each "
        "head alone is switched off beside that head's mean attention entropy. Models as "
        "trained. Results are kept for these models and this sample."
    )
    if request not in requested:
        return {}, numbers
    curves = _split_curves(data, labelled, sample)
    scope = f"{data.name}, a fixed sample of {len(sample)} sequences"
    frame = faithfulness.erasure_table(curves, f"{scope}, models as trained")
    fig = faithfulness_figures.erasure_figure(frame, f"Erasure test over {len(sample)} sequences")
    names = " · ".join(f"{role} {run.model.name}" for role, run in labelled.items())
    figures.titled(fig, f"{names} (as trained) · {scope}")
    st.plotly_chart(fig, key="split_erasure")
    heads = None
    if "LARNN" in labelled:
        model = labelled["LARNN"].model
        X, y = data.X[sample], data.labels[sample]  # (S, T, C), (S,)
        with st.spinner(f"LARNN: switching each head off on {len(sample)} sequences ..."):
            heads = resources.head_importance(
                model.key,
                model.checkpoint,
                f"{data.key}|sample{size}",
                X,
                y,
                _lengths=data.sample_lengths(sample),
            )
        st.markdown(f"**LARNN heads** ({len(sample)} sequences)")
        st.dataframe(_heads_shown(heads), hide_index=True)
        st.caption(
            "Accuracy with that head alone switched off (every layer's other heads on), the "
            "drop from the accuracy with every head on, and the head's mean attention entropy "
            "over its filled slots, normalised: 0 = all on one slot, 1 = uniform (as in "
            "'Attention over the whole split')."
        )
    notes = {**numbers.notes, "split": f"{scope}, models as trained"}
    numbers = replace(numbers, split_erasure=frame, head_importance=heads, notes=notes)
    return {"split_erasure": fig}, numbers


def _split_curves(data: DataView, runs: dict[str, ModelRun], sample: np.ndarray) -> dict[str, list]:
    """The erasure curves of each model over the sample, in cached chunks, with progress."""
    bar = st.progress(0.0, text="Starting the erasure test ...")
    chunks = [
        tuple(sample[i : i + SPLIT_CHUNK].tolist()) for i in range(0, len(sample), SPLIT_CHUNK)
    ]
    total, done, curves = len(chunks) * len(runs), 0, {}
    for role, run in runs.items():
        parts = []
        for chunk in chunks:
            model = run.model
            parts.append(
                (
                    len(chunk),
                    resources.erasure_chunk(
                        model.key,
                        model.checkpoint,
                        data.key,
                        chunk,
                        data.X,
                        faithfulness.ERASURE_NS,
                        data.lengths,
                    ),
                )
            )
            done += 1
            seen = sum(size for size, _ in parts)
            bar.progress(
                done / total, text=f"{role}: erasure test on {seen} of {len(sample)} sequences"
            )
        curves[role] = faithfulness.mean_curves(parts)
    bar.empty()
    return curves


def _heads_shown(heads: pd.DataFrame) -> pd.DataFrame:
    return heads.rename(
        columns={
            "accuracy_without": "accuracy without it",
            "accuracy_drop": "accuracy drop",
            "entropy": "entropy (normalised)",
        }
    ).round(3)


# --- exports --------------------------------------------------------------------------------------


def export_buttons(numbers: FaithfulnessNumbers, context: dict, stem: str) -> None:
    """CSV downloads of the faithfulness numbers measured, each with what it shows as columns."""
    tables = numbers.tables()
    if not tables:
        return
    st.caption("Memory tests as CSV (the knobs, hidden steps included, as columns):")
    for column, (name, frame) in zip(st.columns(len(tables)), tables.items(), strict=True):
        column.download_button(
            f"{name.replace('_', ' ')} (CSV)",
            lambda frame=frame: export.csv_bytes(export.with_context(frame, context)),
            file_name=f"{stem}_{name}.csv",
            mime="text/csv",
            on_click="ignore",
            key=f"csv_{name}",
        )
