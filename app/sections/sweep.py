"""The window sweep: the LARNN's accuracy against k' on a sample of the split, beside the LSTM."""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

from app import chart_figures, describe, export, figures, knobs, memory_use, resources
from app.guard import guard
from app.sections.downloads import numbers_downloads
from app.sections.faithfulness import sample_size
from app.values import DataView, Fit, KnobChoice, Loaded


def sweep_section(
    data: DataView,
    larnn_model: Loaded | None,
    lstm_model: Loaded | None,
    fits: dict[str, Fit],
    choice: KnobChoice | None,
) -> dict[str, object]:
    if (
        larnn_model is None
        or choice is None
        or data.labels is None
        or not fits["LARNN"].labels_comparable
    ):
        st.info("The sweep needs a LARNN and labelled data with the LARNN's classes.")
        return {}
    windows = knobs.sweep_windows(choice.trained.queue_size, choice.trained.window)
    left, right = st.columns([1, 3])
    size = sample_size(left, "sweep_size")
    sample = knobs.sweep_sample(len(data), size)
    request = (larnn_model.key, data.key, size, replace(choice.knobs, window=None))
    requested = st.session_state.setdefault("sweeps", set())
    if left.button("Run the sweep", type="primary", key="run_sweep"):
        requested.add(request)
    right.caption(
        f"Runs the LARNN on {len(sample)} sequences of this split (a fixed random sample) for "
        f"each k' in {windows}, with the heads and activation chosen in the sidebar, and the "
        "LSTM once on the same sample. Results are kept for this model and sample."
    )
    if request not in requested:
        return {}
    with guard("Window sweep"):
        X, y = data.X[sample], data.labels[sample]  # (S, T, C), (S,)
        lengths = data.sample_lengths(sample)
        sample_key = f"{data.key}|sample{size}"
        sweep = resources.window_sweep(
            larnn_model.key,
            larnn_model.checkpoint,
            sample_key,
            X,
            y,
            tuple(windows),
            choice.knobs,
            lengths,
        )
        baseline = None
        if lstm_model is not None and fits.get("LSTM") and fits["LSTM"].labels_comparable:
            baseline = resources.accuracy(
                lstm_model.key, lstm_model.checkpoint, sample_key, X, y, lengths
            )
        fig = chart_figures.window_sweep_figure(
            sweep,
            baseline_accuracy=baseline,
            trained_window=choice.trained.window,
            current_window=choice.window,
            sample_size=len(sample),
        )
        lstm_name = lstm_model.name if baseline is not None else None
        context = describe.sweep_context(data, larnn_model.name, lstm_name, choice, len(sample))
        figures.titled(fig, context)
        st.plotly_chart(fig, key="sweep")
        verdict = memory_use.sweep_verdict(sweep, choice.trained.window, len(sample))
        if verdict:
            st.markdown(verdict)
        checkpoints = {"LARNN": larnn_model.name, **({"LSTM": lstm_name} if lstm_name else {})}
        numbers = export.sweep_context(data, checkpoints, choice, sample)
        table = export.sweep_table(sweep, baseline, choice.trained.window)
        numbers_downloads(
            "Window sweep",
            export.file_stem(data, None),
            lambda: export.with_context(table, numbers),
            lambda: {**numbers, "windows": table.to_dict(orient="records")},
        )
        return {"window_sweep": fig}
    return {}
