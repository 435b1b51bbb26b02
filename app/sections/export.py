"""The export section: a link to the view, attention and predictions as CSV and JSON,
figures as HTML pages."""

from __future__ import annotations

import streamlit as st

from app import export, faithfulness, figures, page_state, resources, sidebar
from app.faithfulness import FaithfulnessNumbers, faithfulness_document
from app.sections.downloads import numbers_downloads
from app.sections.faithfulness import export_buttons
from app.values import DataView, KnobChoice, ModelRun


def export_section(
    data: DataView,
    index: int,
    runs: dict[str, ModelRun],
    choice: KnobChoice | None,
    drawn: dict[str, object],
    numbers: FaithfulnessNumbers,
) -> None:
    st.markdown("**Link to this view**")
    state = sidebar.view_state(index, runs, choice)
    st.code(page_state.link(st.context.url or "", state), language=None, wrap_lines=True)
    st.caption(
        "Opens the page with this dataset, split, models, sequence, knobs and hidden steps "
        "(copy it with the button at its right). Not in it: the time step t, the sections "
        "open, the heatmaps' axis, the click mode, the standardised-inputs toggle, and "
        "uploaded files (upload them again). The address bar does not follow the page: copy "
        "this link."
    )
    if not runs:
        st.info("Nothing to export yet.")
        return
    stem = export.file_stem(data, index)
    context = export.export_context(data, index, runs, choice)
    inferences = export.with_class_names(runs)
    columns = st.columns(4)
    if "LARNN" in runs:
        larnn_inference = runs["LARNN"].inference
        columns[0].download_button(
            "Attention (CSV)",
            lambda: export.csv_bytes(
                export.with_context(export.attention_table(larnn_inference), context)
            ),
            file_name=f"{stem}_attention.csv",
            mime="text/csv",
            on_click="ignore",
        )
    columns[1].download_button(
        "Predictions (CSV)",
        lambda: export.csv_bytes(
            export.with_context(
                export.predictions_table(inferences, context["true_class"]), context
            )
        ),
        file_name=f"{stem}_predictions.csv",
        mime="text/csv",
        on_click="ignore",
    )
    columns[2].download_button(
        "Attention and predictions (JSON)",
        lambda: export.json_bytes(
            {**export.export_document(context, inferences), **faithfulness_document(numbers)}
        ),
        file_name=f"{stem}.json",
        mime="application/json",
        on_click="ignore",
    )
    export_buttons(numbers, context, stem)
    attribution_downloads(data, index, runs, stem)
    st.caption(
        "Figures drawn on the page now, as standalone HTML pages (plotly.js included, they "
        "open offline). Open the window sweep or the faithfulness section above to add "
        "their figures and numbers (the sweep's as CSV and JSON under its figure):"
    )
    row = st.container(horizontal=True)  # buttons as wide as their names, wrapped
    for name, fig in drawn.items():
        row.download_button(
            f"{name.replace('_', ' ')} (HTML)",
            lambda fig=fig: figures.figure_html(fig),
            file_name=f"{stem}_{name}.html",
            mime="text/html",
            on_click="ignore",
            key=f"html_{name}",
        )


def attribution_downloads(data: DataView, index: int, runs: dict[str, ModelRun], stem: str) -> None:
    """The numbers of the attribution figure (Integrated Gradients of each model as trained,
    drawn by the memory-edit sections above) as CSV and JSON."""
    x = data.sequence(index)  # (T, C), without padding
    if len(x) > faithfulness.ANALYSIS_MAX_STEPS:
        return  # not computed for so long a series (the attribution section says so)
    attributions, attributed = {}, {}
    for role, run in runs.items():
        model = run.model
        attributions[role] = resources.attribution(model.key, model.checkpoint, x)  # (T, C)
        predicted = resources.infer(model.key, model.checkpoint, x).predicted  # as trained
        attributed[role] = model.class_names[predicted]
    context = export.export_context(data, index, runs, None)  # as trained: no knobs
    st.caption("The attribution figure's numbers (each model as trained):")
    numbers_downloads(
        "Attribution",
        stem,
        lambda: export.with_context(
            export.attribution_table(x, data.channel_names, attributions), context
        ),
        lambda: export.attribution_document(
            context, x, data.channel_names, attributions, attributed
        ),
    )
