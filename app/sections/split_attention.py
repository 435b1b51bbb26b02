"""Attention over the whole split (issue 29): widgets and plots only, called from `app.main`.

Where each LARNN head looks, by lag, over every sequence of the split (or one true class of
it); which heads specialise (entropy, share on the oldest slot, accuracy drop when switched
off); and which channels each model's predictions rest on (Integrated Gradients). The numbers
come from `larnn.split_attention` and `larnn.faithfulness` through `app.resources` (cached),
the figures from `app.split_figures`. The sidebar's knobs apply (window, heads, activation);
hidden steps, which name steps of the sequence shown, do not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pandas as pd
import streamlit as st

from app import describe, export, figures, knobs, resources, split_figures
from app.values import DataView, Fit, KnobChoice, Loaded
from larnn.split_attention import SplitAttention, head_table, lag_frame

WHOLE = "the whole split"
HEAD_SAMPLE = 3_000  # head importance: the whole split up to this many sequences (UCI HAR test)
IG_SIZES = (25, 50, 100, 200)  # sequences for Integrated Gradients (~0.2 s each on UCI HAR)
IG_CHUNK = 10  # sequences per cached chunk of Integrated Gradients (and per progress step)


def split_section(
    data: DataView,
    larnn: Loaded | None,
    lstm: Loaded | None,
    fits: dict[str, Fit],
    choice: KnobChoice | None,
) -> dict[str, object]:
    """The model view, the heads' specialisation and channel importance; the figures drawn."""
    if larnn is None or choice is None:
        st.info("Attention over the split needs a LARNN on this data.")
        return {}
    choice = replace(choice, knobs=replace(choice.knobs, hidden_steps=None))
    labelled = data.labels is not None and fits["LARNN"].labels_comparable
    with st.spinner(f"LARNN: attention over {len(data):,} sequences ..."):
        split = resources.split_attention_of(
            larnn.key,
            larnn.checkpoint,
            data.key,
            data.X,
            data.labels if labelled else None,
            choice.knobs,
            data.lengths,
        )
    whole = f"all {len(data):,} sequences"
    context = describe.split_context(data, larnn.name, choice, whole)
    drawn = {"split_attention": _model_view(data, larnn, split, choice, whole)}
    importance = _importance(data, larnn, lstm, fits, choice, labelled)
    heads = head_table(split, importance.get("heads"))
    drawn["split_heads"] = _heads(heads, split, context, importance.get("heads_scope"))
    channels = importance.get("channels")
    if channels is not None:
        drawn["split_channels"] = _channels(
            data, channels, choice, larnn, lstm, importance["ig_scope"]
        )
    _downloads(data, larnn, choice, split, heads, channels)
    return drawn


def _model_view(
    data: DataView, larnn: Loaded, split: SplitAttention, choice: KnobChoice, whole: str
) -> object:
    by_lag, scope = split.by_lag, whole
    over = f"every real query step of {split.sequences:,} sequences ({split.steps:,} steps; "
    if split.by_lag_class is not None:
        names, counts = larnn.class_names, split.class_sequences
        g = st.selectbox(
            "Sequences of",
            range(-1, len(names)),
            format_func=lambda g: WHOLE if g < 0 else f"true class {names[g]} ({counts[g]:,})",
            key="split_class",
        )
        if g >= 0:
            by_lag, scope = split.by_lag_class[g], f"true class {names[g]}: {counts[g]:,} sequences"
            over = f"every real query step of the {counts[g]:,} sequences of {names[g]} ("
    heading = (
        f"Where each head looks over the split: mean attention by lag, window k' = {choice.window}"
    )
    fig = split_figures.lag_figure(by_lag, heading)
    figures.titled(fig, describe.split_context(data, larnn.name, choice, scope))
    st.plotly_chart(fig, key="split_lags")
    accuracy = (
        ""
        if split.accuracy is None
        else f" Accuracy with these knobs, whole split: {split.accuracy:.1%}."
    )
    patch = f" One lag is one encoder step of {split.patch} samples." if split.patch > 1 else ""
    st.caption(
        f"Mean attention weight each head puts on the slot at each lag (1 = the step before), "
        f"over {over}padding never counts) whose slot at that lag is filled. A head spread "
        f"evenly over a full window gives 1/k' = {1 / choice.window:.2f} at every lag; "
        f"switched-off heads are blank.{patch}{accuracy}"
    )
    return fig


def _importance(
    data: DataView,
    larnn: Loaded,
    lstm: Loaded | None,
    fits: dict[str, Fit],
    choice: KnobChoice,
    labelled: bool,
) -> dict[str, object]:
    """Head importance and channel importance, measured on request (tens of seconds)."""
    left, right = st.columns([1, 2])
    kept = "split_ig_size_kept"
    size = left.selectbox(
        "Sample for Integrated Gradients",
        IG_SIZES,
        index=IG_SIZES.index(st.session_state.get(kept, 50)),
        key="split_ig_size",
    )
    st.session_state[kept] = size
    models = [m for m in (larnn, lstm) if m is not None]
    request = (tuple(m.key for m in models), data.key, size, choice.knobs)
    requested = st.session_state.setdefault("split_importance_runs", set())
    if left.button("Measure importance", key="run_split_importance"):
        requested.add(request)
    heads_sample = knobs.sweep_sample(len(data), HEAD_SAMPLE)
    heads_scope = (
        f"all {len(data):,} sequences"
        if len(heads_sample) == len(data)
        else f"a fixed random sample of {len(heads_sample):,} sequences"
    )
    ig_sample = knobs.sweep_sample(len(data), size, seed=1)
    right.caption(
        "Measures, for the LARNN, the accuracy lost when each head alone is switched off "
        f"(beside those the sidebar switches off) on {heads_scope}, and Integrated Gradients "
        f"for {' and '.join(m.role for m in models)} on a fixed random sample of "
        f"{len(ig_sample)} sequences (Integrated Gradients costs 32 passes with gradients a "
        "sequence, 0.1-0.2 s for UCI HAR's LARNN: its whole test split would take "
        "minutes). Results are kept for these models, knobs and sample."
    )
    if request not in requested:
        return {}
    found: dict[str, object] = {}
    if labelled:
        with st.spinner(f"LARNN: switching each head off on {heads_scope} ..."):
            found["heads"] = resources.head_importance(
                larnn.key,
                larnn.checkpoint,
                f"{data.key}|sample{HEAD_SAMPLE}",
                data.X[heads_sample],
                data.labels[heads_sample],
                choice.knobs,
                data.sample_lengths(heads_sample),
            )
            found["heads_scope"] = heads_scope
    bar = st.progress(0.0, text="Integrated Gradients ...")
    chunks = [
        tuple(ig_sample[i : i + IG_CHUNK].tolist()) for i in range(0, len(ig_sample), IG_CHUNK)
    ]
    shares, done = {}, 0
    for model in models:
        parts = []
        for chunk in chunks:
            parts.append(
                resources.channel_importance_chunk(
                    model.key,
                    model.checkpoint,
                    data.key,
                    chunk,
                    data.X,
                    choice.knobs if model.role == "LARNN" else None,
                    data.lengths,
                )
            )
            done += 1
            bar.progress(
                done / (len(chunks) * len(models)),
                text=f"{model.role}: Integrated Gradients on {sum(p.sequences for p in parts)} "
                f"of {len(ig_sample)} sequences",
            )
        shares[model.role] = sum(parts[1:], parts[0]).share
    bar.empty()
    found["channels"] = shares
    found["ig_scope"] = f"a fixed random sample of {len(ig_sample)} sequences"
    return found


def _heads(
    heads: pd.DataFrame, split: SplitAttention, context: str, heads_scope: str | None
) -> object:
    fig = split_figures.heads_figure(
        heads, split.uniform_oldest, "Which heads specialise: entropy, oldest slot, importance"
    )
    drop = f" · accuracy drop on {heads_scope}" if heads_scope else ""
    figures.titled(fig, context + drop)
    st.plotly_chart(fig, key="split_heads")
    shown = heads.rename(
        columns={
            "entropy": "entropy (normalised)",
            "oldest_share": "share on the oldest slot",
            "accuracy_drop": "accuracy drop when off (points)",
        }
    )
    shown["accuracy drop when off (points)"] *= 100  # as the chart beside it: in points
    st.dataframe(shown.round(4), hide_index=True)
    measured = (
        f"Accuracy drop: with that head switched off too, on {heads_scope}."
        if heads_scope
        else "Accuracy drop: press **Measure importance** above."
    )
    st.caption(
        "Entropy of each query step's attention over its filled slots divided by ln(filled "
        "slots): 0 = all on one slot, 1 = uniform; share on the oldest filled slot (dashed: "
        f"what uniform attention would give, {split.uniform_oldest:.2f}). Both are means over "
        "the real query steps with at least two filled slots, over the whole split (the "
        "class chosen above applies to the lag view only). " + measured
    )
    return fig


def _channels(
    data: DataView,
    shares: dict[str, np.ndarray],
    choice: KnobChoice,
    larnn: Loaded,
    lstm: Loaded | None,
    scope: str,
) -> object:
    fig = split_figures.channel_figure(
        shares, data.channel_names, "Channel importance: Integrated Gradients over the split"
    )
    lstm_name = lstm.name if lstm is not None else None
    figures.titled(fig, describe.split_context(data, larnn.name, choice, scope, lstm_name))
    st.plotly_chart(fig, key="split_channels")
    st.caption(
        "Captum's Integrated Gradients of each model's logit for the class it predicts "
        "(baseline: the training mean; 32 steps), |attribution| averaged over every real step "
        f"and sequence of {scope}, per channel, as shares of each model's total. The LARNN "
        "with the sidebar's knobs, the LSTM as trained."
    )
    return fig


def _downloads(
    data: DataView,
    larnn: Loaded,
    choice: KnobChoice,
    split: SplitAttention,
    heads: pd.DataFrame,
    channels: dict[str, np.ndarray] | None,
) -> None:
    columns = export.split_columns(data, larnn.name, choice)
    tables: dict[str, Callable[[], pd.DataFrame]] = {  # each built on a click
        "lags": lambda: lag_frame(split, list(larnn.class_names)),
        "heads": lambda: heads.assign(uniform_oldest_share=split.uniform_oldest),
    }
    if channels is not None:
        tables["channels"] = lambda: pd.DataFrame(
            [
                {"model": role, "channel": name, "share": float(v)}
                for role, share in channels.items()
                for name, v in zip(data.channel_names, share, strict=True)
            ]
        )

    def document() -> dict[str, object]:
        return {
            **columns,
            "sequences": split.sequences,
            "steps": split.steps,
            "accuracy": split.accuracy,
            **{name: table().to_dict(orient="records") for name, table in tables.items()},
        }

    stem = f"larnn_{(data.dataset_id or 'upload').replace(':', '_')}_split"
    row = st.container(horizontal=True)
    for name, table in tables.items():
        row.download_button(
            f"{name} (CSV)",
            lambda table=table: export.csv_bytes(table().assign(**columns)),
            file_name=f"{stem}_{name}.csv",
            mime="text/csv",
            on_click="ignore",
            key=f"split_csv_{name}",
        )
    row.download_button(
        "all (JSON)",
        lambda: export.json_bytes(document()),
        file_name=f"{stem}.json",
        mime="application/json",
        on_click="ignore",
        key="split_json",
    )
