"""The summary row over the results, and the probabilities after the last step."""

from __future__ import annotations

import streamlit as st

from app import chart_figures, describe, export, figures
from app.live_chart import live_chart
from app.values import DataView, Fit, KnobChoice, ModelRun

# The summary's values wrap (class names break after underscores, see describe.breakable)
# instead of being cut to "WALKING_..." in a narrow column.
SUMMARY_STYLE = """<style>
[data-testid="stMetricValue"] { font-size: 1.75rem; }
[data-testid="stMetricValue"] .stMarkdownEllipsis, [data-testid="stMetricValue"] p {
  white-space: normal; overflow-wrap: anywhere; text-overflow: clip; line-height: 1.25;
}
</style>"""


def summary_row(
    data: DataView,
    index: int,
    runs: dict[str, ModelRun],
    fits: dict[str, Fit],
    choice: KnobChoice | None,
) -> None:
    """One row of metrics: the sequence, both predictions, attention on truth, the knobs."""
    metrics = describe.summary_metrics(data, index, runs, fits, choice)
    st.html(SUMMARY_STYLE)
    for column, metric in zip(st.columns(5), metrics, strict=False):
        column.metric(**metric)


def predictions_section(
    data: DataView, index: int, runs: dict[str, ModelRun], choice: KnobChoice | None
) -> dict[str, object]:
    st.subheader("Predictions for this sequence")
    if not runs:
        st.info("No model runs on this data; choose or upload a checkpoint in the sidebar.")
        return {}
    names = {run.model.class_names for run in runs.values()}
    if len(names) > 1:
        st.warning("The two models predict different classes; they are shown one by one.")
    class_names = next(iter(runs.values())).model.class_names
    true_class = None
    if data.labels is not None and data.class_names == class_names:
        true_class = int(data.labels[index])
    shown = {role: run for role, run in runs.items() if run.model.class_names == class_names}
    probabilities = {role: run.inference.probabilities for role, run in shown.items()}
    left, right = st.columns([3, 2])
    fig = chart_figures.probabilities_figure(
        probabilities,
        class_names,
        true_class=true_class,
        model_names={role: run.model.name for role, run in shown.items()},
    )
    context = describe.context_line(data, index, runs, choice)
    figures.titled(fig, context, "Probabilities after the last step", line_chars=90)
    with left:
        live_chart(fig, key="probabilities")
    right.dataframe(
        export.probability_table(probabilities, class_names, true_class), hide_index=True
    )
    right.caption("Probabilities after the last step; the running values are on the timeline.")
    return {"probabilities": fig}
