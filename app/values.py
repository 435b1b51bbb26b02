"""The explorer page's value types: what its sections hand each other (pure, no Streamlit).

`DataView` (the sequences shown), `Loaded` (a checkpoint on the page), `ModelRun` (one
model's inference on the sequence shown), `KnobChoice` (what the knob widgets set) and `Fit`
(whether a model fits the data). Each is frozen: built once where it is decided, passed whole.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from larnn.checkpoint import Checkpoint
from larnn.inference import SequenceInference
from larnn.model import InferenceKnobs, LARNNConfig

# --- the models on the page -----------------------------------------------------------------------

ROLES = {"larnn": "LARNN", "lstm": "LSTM"}  # architecture -> how the page names the model


@dataclass(frozen=True)
class Loaded:
    """A checkpoint on the page: the shared model, its cache key and the name people see."""

    checkpoint: Checkpoint
    key: str  # identifies the checkpoint in caches (folder and mtime, or the upload's hash)
    name: str
    role: str  # "LARNN" or "LSTM"

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.checkpoint.metadata.class_names)


@dataclass(frozen=True)
class ModelRun:
    """One model's inference on the sequence shown."""

    model: Loaded
    inference: SequenceInference


@dataclass(frozen=True)
class Fit:
    """Whether a checkpoint can run on a dataset, and what a person should know if so."""

    usable: bool  # False: the channel count differs, the model cannot read this data
    problems: tuple[str, ...]  # why it cannot run
    notes: tuple[str, ...]  # it runs, but ...
    labels_comparable: bool  # its classes are the data's classes, in the same order
    belongs: bool = True  # False: not the kind of data it was trained on (notes say why)


@dataclass(frozen=True)
class KnobChoice:
    """What the sidebar's knob widgets set: the knobs, the layer shown, the trained settings."""

    knobs: InferenceKnobs  # built once by `make_knobs`, passed whole down to the model
    layer: int  # the layer whose attention is shown; the knobs act on every layer
    trained: LARNNConfig  # the checkpoint's settings: window, heads, kv_activation, queue_size

    @property
    def heads_on(self) -> tuple[int, ...]:
        """The heads switched on, ascending."""
        mask = self.knobs.head_mask
        if mask is None:
            return tuple(range(self.trained.heads))
        return tuple(h for h, keep in enumerate(mask) if keep)

    def _in_use(self, name: str):
        """A knob's value in use: the trained setting where the knobs leave it unset (None),
        as the model resolves it."""
        value = getattr(self.knobs, name)
        return getattr(self.trained, name) if value is None else value

    @property
    def window(self) -> int:
        """The window k' in use."""
        return self._in_use("window")

    @property
    def kv_activation(self) -> str:
        """The activation on keys/values in use."""
        return self._in_use("kv_activation")

    @property
    def changed(self) -> bool:
        """Whether any knob differs from the trained settings."""
        return (
            self.window != self.trained.window
            or self.knobs.head_mask is not None
            or self.kv_activation != self.trained.kv_activation
            or self.knobs.hidden_steps is not None
        )


# --- the data a page shows ------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class DataView:
    """The sequences on the page: a split of a dataset, or a user's uploaded series.

    X: (N, T, C) raw, right-padded where series differ in length; lengths: (N,) real
    steps of each, None when all have T. labels, class_names, relevant_steps: None for
    uploads (no labels). key: identifies the data in caches; case_names: names to pick cases
    by (uploads).
    """

    X: np.ndarray
    labels: np.ndarray | None
    class_names: tuple[str, ...] | None
    channel_names: tuple[str, ...]
    channel_units: tuple[str, ...]
    relevant_steps: np.ndarray | None
    dataset_id: str | None
    key: str
    description: str  # a sentence for the page: what, how many, how long
    name: str  # a few words for titles: "UCI HAR (smartphone activity), test split"
    case_names: tuple[str, ...] | None = None
    lengths: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.X)

    def sequence(self, index: int) -> np.ndarray:
        """Sequence `index` without its padding: (T_i, C)."""
        end = None if self.lengths is None else int(self.lengths[index])
        return self.X[index, :end]

    def sample_lengths(self, indices: np.ndarray) -> np.ndarray | None:
        """The real lengths of sequences `indices`, or None where no series is padded."""
        return None if self.lengths is None else self.lengths[indices]

    @property
    def length(self) -> int:
        return int(self.X.shape[1])

    def sequence_name(self, index: int) -> str:
        """'UCI HAR (smartphone activity), test split, sequence #12' (uploads: 'case ...')."""
        if self.case_names is not None:
            return f"{self.name}, case {self.case_names[index]}"
        return f"{self.name}, sequence #{index}"
