"""Does a model fit the data shown? (pure, no Streamlit)

Channels and classes compared with a checkpoint's records (`model_fit`), a warning when the
inputs lie far outside the model's training distribution (`distribution_note`), and both
together for the page (`data_fit`). A model runs on any data with its channel count; whether
the data *belongs* with it (same kind of data: its dataset, its channels by name, inputs in
its training range) is said plainly, in `Fit.notes`, and `Fit.belongs` is False then: the
page shows no success box and the prediction's p comes with a caveat.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from app.catalog import dataset_label
from app.values import DataView, Fit
from larnn.checkpoint import CheckpointMetadata
from larnn.tasks import PROBE_PREFIX


# --- does a model fit the data? -------------------------------------------------------------------
def model_fit(
    role: str,
    metadata_channels: Sequence[str],
    metadata_classes: Sequence[str],
    metadata_dataset: str,
    channel_names: Sequence[str],
    class_names: Sequence[str] | None,
    dataset_id: str | None,
) -> Fit:
    """Compare a checkpoint's recorded channels, classes and dataset with the data shown.

    role: how the page names the model ("LARNN", "LSTM baseline"). class_names and
    dataset_id are None for an uploaded series (no labels, no known source): a model trained
    on a synthetic probe never belongs with one (whatever it is, it is not a probe's signals).
    """
    model_ch, data_ch = list(metadata_channels), list(channel_names)
    if len(model_ch) != len(data_ch):
        return Fit(
            False,
            (
                f"The {role} checkpoint reads {len(model_ch)} channels ({', '.join(model_ch)}) "
                f"but this data has {len(data_ch)} ({', '.join(data_ch)}), so it cannot run on "
                f"it. Choose a checkpoint trained on {_data_name(dataset_id)} or other data.",
            ),
            (),
            False,
        )
    unlike = []  # why the data is not the kind the model was trained on
    if dataset_id is not None and metadata_dataset != dataset_id:
        unlike.append(
            f"The {role} was trained on {dataset_label(metadata_dataset)}, not on "
            f"{dataset_label(dataset_id)}: its predictions here say little."
        )
    if dataset_id is None and metadata_dataset.startswith(PROBE_PREFIX):
        unlike.append(
            f"The {role} was trained on synthetic signals ({dataset_label(metadata_dataset)}), "
            "made to test its memory, not on recordings: on your series its predictions, and "
            "how sure they look, say nothing about what the series is."
        )
    if [c.casefold() for c in model_ch] != [c.casefold() for c in data_ch]:
        unlike.append(
            f"The {role} names its channels {', '.join(model_ch)}; the data's are "
            f"{', '.join(data_ch)}. They are matched by position only, so the {role} may be "
            "reading other quantities than it was trained on."
        )
    notes = list(unlike)
    comparable = class_names is not None and list(metadata_classes) == list(class_names)
    if class_names is not None and not comparable:
        notes.append(
            f"The {role}'s classes ({', '.join(metadata_classes)}) are not the data's "
            f"({', '.join(class_names)}): right or wrong cannot be judged."
        )
    return Fit(True, (), tuple(notes), comparable, belongs=not unlike)


def data_fit(role: str, metadata: CheckpointMetadata, data: DataView) -> Fit:
    """`model_fit` of a checkpoint on the data shown, with `distribution_note` among its
    notes when the model can run: what the page says about the pair, whole."""
    fit = model_fit(
        role,
        metadata.channel_names,
        metadata.class_names,
        metadata.dataset_id,
        data.channel_names,
        data.class_names,
        data.dataset_id,
    )
    if not fit.usable:
        return fit
    far = distribution_note(role, data.X, metadata.normalizer, data.channel_names)
    if far is None:
        return fit
    return Fit(True, (), (*fit.notes, far), fit.labels_comparable, False)


def _data_name(dataset_id: str | None) -> str:
    return "this data" if dataset_id is None else dataset_label(dataset_id)


OFFSET_LIMIT = 3.0  # |channel mean - training mean| in training stds
SPREAD_LIMITS = (0.01, 5.0)  # channel std / training std: flat (a padded channel) .. 5x


MAX_STEPS_LOOKED_AT = 4096  # of each sampled sequence, evenly spaced: enough for a mean and std


def distribution_note(
    role: str, X: np.ndarray, normalizer: dict, channel_names: Sequence[str], sample: int = 64
) -> str | None:
    """A warning when the inputs lie far outside the model's training distribution, per the
    normaliser's statistics stored in its checkpoint; None when every channel is in range.

    X: (N, T, C) raw inputs, of which `sample` evenly spaced sequences are looked at (the
    warning is about the data, not one sequence; the sample keeps it cheap on every rerun,
    and evenly spaced, it is not one subject or class of a sorted split). A channel
    is out of range when its mean sits more than OFFSET_LIMIT training stds from the training
    mean, or its spread is outside SPREAD_LIMITS times the training spread.
    """
    mean = np.asarray(normalizer["mean"], dtype=np.float64)  # (C,)
    std = np.asarray(normalizer["std"], dtype=np.float64)  # (C,)
    spaced = X[:: max(1, len(X) // sample)][:sample]  # (S, T, C)
    spaced = spaced[:, :: max(1, spaced.shape[1] // MAX_STEPS_LOOKED_AT)]  # a long one thinned
    values = np.asarray(spaced, dtype=np.float64).reshape(-1, len(mean))  # (S*T', C)
    values = values[np.isfinite(values).all(axis=1)]
    if not len(values):
        return None
    offset = np.abs(values.mean(axis=0) - mean) / std  # (C,)
    spread = values.std(axis=0) / std  # (C,)
    low, high = SPREAD_LIMITS
    far = []
    for c, name in enumerate(channel_names):
        if offset[c] > OFFSET_LIMIT:
            far.append(f"{name} is centred {offset[c]:.1f} training stds from its training mean")
        elif not low <= spread[c] <= high:
            far.append(f"{name} spreads {spread[c]:.2g}× as widely as in training")
    if not far:
        return None
    return (
        f"These inputs lie far outside what the {role} was trained on: {'; '.join(far)}. "
        "Its predictions, and how sure they look, say little here."
    )
