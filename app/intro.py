"""What the page says first about the data shown (pure, no Streamlit): the task in words, how
the sequence shown is answered (the recall probe), and the test accuracies the models recorded.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from app.values import Loaded
from larnn.data import PROBES
from larnn.data.synthetic import RECALL_KEYS, RECALL_VALUES, recall_answer

RECALL = "probe:recall"

RECALL_TASK = (
    f"**The task: recall.** {RECALL_KEYS} **key** → **value** pairs are stored late in the "
    f"sequence, one step each (a key channel key_0 … key_{RECALL_KEYS - 1} fires with a value "
    f"channel value_0 … value_{RECALL_VALUES - 1}); the last step, the **query**, names one key. "
    "The class is the value stored with that key, so a model must find the step that stored "
    "it: the LARNN by attending over its past cell states, an LSTM by carrying every pair in "
    "its state."
)


def task_text(dataset_id: str | None) -> str | None:
    """The task of a synthetic probe in words; None for other data (it describes itself)."""
    if dataset_id == RECALL:
        return RECALL_TASK
    if dataset_id is not None and dataset_id.startswith("probe:"):
        probe = dataset_id.removeprefix("probe:")
        if probe in PROBES:
            return f"**The task: {probe.replace('_', ' ')}.** {PROBES[probe]}"
    return None


def recall_sequence_text(x: np.ndarray, window: int | None) -> str:
    """Why this recall sequence (T, C) has its class: the key queried, where it was stored, the
    value stored with it; and whether that step is within the LARNN's window k' at the end."""
    answer = recall_answer(x)
    lag = len(x) - 1 - answer.stored_step
    where = f"{lag} steps back"
    if window is not None:
        where += f", {'inside' if lag <= window else 'outside'} the LARNN's window k' = {window}"
    return (
        f"**This sequence:** the query names key_{answer.key}, stored at step "
        f"{answer.stored_step} with value_{answer.value} ({where}): the answer is "
        f"**value_{answer.value}**."
    )


def _size(model: Loaded) -> str:
    encoder = model.checkpoint.config.encoder_config()
    layers = "layer" if encoder.num_layers == 1 else "layers"
    window = f", k = {encoder.window}" if model.role == "LARNN" else ""
    weights = sum(p.numel() for p in model.checkpoint.model.parameters())
    return (
        f"{encoder.num_layers} {layers} of {encoder.hidden_size} units{window}, {weights:,} weights"
    )


def headline(models: Sequence[Loaded], dataset_id: str | None, split: str) -> str | None:
    """'Recorded on this test split when trained: LARNN m 100.0% (…) · LSTM m 39.0% (…)', for
    the models trained on this dataset that recorded a test accuracy; None when none did."""
    if split != "test" or dataset_id is None:
        return None
    parts = []
    for model in models:
        metadata = model.checkpoint.metadata
        accuracy = metadata.metrics.get("test", {}).get("accuracy")
        if metadata.dataset_id == dataset_id and isinstance(accuracy, float):
            parts.append(f"{model.role} {model.name} **{accuracy:.1%}** ({_size(model)})")
    if not parts:
        return None
    return "**Recorded on this test split when trained:** " + " · ".join(parts)
