"""The introduction above the results: the test accuracies the models recorded on this data,
the task of a synthetic probe in words, and how the recall sequence shown is answered."""

from __future__ import annotations

import streamlit as st

from app import intro
from app.values import DataView, KnobChoice, Loaded


def intro_section(
    data: DataView, split: str, index: int, models: list[Loaded], choice: KnobChoice | None
) -> None:
    headline = intro.headline(models, data.dataset_id, split)
    if headline:
        st.markdown(headline)
    task = intro.task_text(data.dataset_id)
    if task is None:
        return
    lines = [task]
    if data.dataset_id == intro.RECALL:
        window = None if choice is None else choice.window
        lines.append(intro.recall_sequence_text(data.sequence(index), window))
    st.info("\n\n".join(lines))
