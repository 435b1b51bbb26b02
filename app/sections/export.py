"""The export section: attention and predictions as CSV and JSON, figures as HTML pages."""

from __future__ import annotations

import streamlit as st

from app import export, figures
from app.faithfulness import FaithfulnessNumbers, faithfulness_document
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
    st.caption(
        "Figures drawn on the page now, as standalone HTML pages (plotly.js included, they "
        "open offline). Open the window sweep or the faithfulness section above to add "
        "their figures and numbers:"
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
