"""`SequenceDataset`: labelled multichannel sequences held as numpy arrays.

Shape letters: `N` sequences, `T` time steps (the longest series), `C` channels. Series of
different lengths are right-padded with zeros to `T`; `lengths` keeps each one's real length.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from larnn.errors import DataError


@dataclass(frozen=True, eq=False)
class SequenceDataset:
    """Labelled sequences, validated on construction.

    Attributes:
        X: float32 (N, T, C) signals.
        y: int64 (N,) class indices in 0..n_classes-1.
        groups: int64 (N,) group of each sequence (subject id, or sample id); splits
            keep a group on one side.
        channel_names: C names, in the order of the last axis of `X`.
        class_names: names of classes 0..n_classes-1.
        dataset_id: short name of the source, e.g. ``"uci_har"``.
        relevant_steps: optional bool (N, T): the steps that decide the class (synthetic
            probes only).
        lengths: optional int64 (N,) real length of each series, 1..T; steps from
            `lengths[n]` on are zero padding. None: every series has all T steps.
    """

    X: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    channel_names: tuple[str, ...]
    class_names: tuple[str, ...]
    dataset_id: str
    relevant_steps: np.ndarray | None = None
    lengths: np.ndarray | None = None

    def __post_init__(self) -> None:
        X, y, groups = self.X, self.y, self.groups
        name = self.dataset_id
        if not isinstance(X, np.ndarray) or X.dtype != np.float32 or X.ndim != 3:
            raise DataError(f"{name}: X must be a float32 array (N, T, C), got {_describe(X)}")
        n, t, c = X.shape
        if t < 1 or c < 1:
            raise DataError(f"{name}: X needs at least one time step and channel, got {X.shape}")
        for field, arr in (("y", y), ("groups", groups)):
            if not isinstance(arr, np.ndarray) or arr.dtype != np.int64 or arr.shape != (n,):
                raise DataError(
                    f"{name}: {field} must be an int64 array of shape ({n},), got {_describe(arr)}"
                )
        if len(self.channel_names) != c:
            raise DataError(
                f"{name}: {len(self.channel_names)} channel names for {c} channels in X"
            )
        if not self.class_names:
            raise DataError(f"{name}: class_names is empty")
        if n and (y.min() < 0 or y.max() >= len(self.class_names)):
            raise DataError(
                f"{name}: labels must lie in 0..{len(self.class_names) - 1}, "
                f"found {y.min()}..{y.max()}"
            )
        rel = self.relevant_steps
        if rel is not None and (
            not isinstance(rel, np.ndarray) or rel.dtype != np.bool_ or rel.shape != (n, t)
        ):
            raise DataError(
                f"{name}: relevant_steps must be a bool array of shape ({n}, {t}), "
                f"got {_describe(rel)}"
            )
        lengths = self.lengths
        if lengths is not None:
            if (
                not isinstance(lengths, np.ndarray)
                or lengths.dtype != np.int64
                or lengths.shape != (n,)
            ):
                raise DataError(
                    f"{name}: lengths must be an int64 array of shape ({n},), "
                    f"got {_describe(lengths)}"
                )
            if n and (lengths.min() < 1 or lengths.max() > t):
                raise DataError(
                    f"{name}: lengths must lie in 1..{t} (the padded length), "
                    f"found {lengths.min()}..{lengths.max()}"
                )

    def __len__(self) -> int:
        return len(self.y)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def series_lengths(self) -> np.ndarray:
        """int64 (N,): each series' real length (T for all when `lengths` is None)."""
        if self.lengths is not None:
            return self.lengths
        return np.full(len(self.y), self.X.shape[1], dtype=np.int64)

    @property
    def is_ragged(self) -> bool:
        """True when some series are shorter than others (and so padded in a batch)."""
        lengths = self.series_lengths
        return bool(len(lengths)) and bool(lengths.min() != lengths.max())

    def concatenate(self, other: SequenceDataset) -> SequenceDataset:
        """These sequences then `other`'s (same channels and classes), right-padded to the
        longer T; lengths kept."""
        if (other.channel_names, other.class_names) != (self.channel_names, self.class_names):
            raise DataError(
                f"cannot join {other.dataset_id} to {self.dataset_id}: channels or classes differ"
            )
        T = max(self.X.shape[1], other.X.shape[1])

        def padded(array: np.ndarray | None, n: int, fill) -> np.ndarray | None:
            if array is None:
                return None
            out = np.full((n, T, *array.shape[2:]), fill, dtype=array.dtype)
            out[:, : array.shape[1]] = array
            return out

        parts = (self, other)
        relevant = None
        if all(p.relevant_steps is not None for p in parts):
            relevant = np.concatenate([padded(p.relevant_steps, len(p), False) for p in parts])
        lengths = np.concatenate([p.series_lengths for p in parts])
        return SequenceDataset(
            X=np.concatenate([padded(p.X, len(p), 0.0) for p in parts]),
            y=np.concatenate([p.y for p in parts]),
            groups=np.concatenate([p.groups for p in parts]),
            channel_names=self.channel_names,
            class_names=self.class_names,
            dataset_id=self.dataset_id,
            relevant_steps=relevant,
            lengths=None if lengths.min() == T else lengths,
        )

    def subset(self, index: np.ndarray) -> SequenceDataset:
        """The sequences at `index` (integer indices or a bool mask), same names and id."""
        rel = None if self.relevant_steps is None else self.relevant_steps[index]
        lengths = None if self.lengths is None else self.lengths[index]
        return SequenceDataset(
            X=self.X[index],
            y=self.y[index],
            groups=self.groups[index],
            channel_names=self.channel_names,
            class_names=self.class_names,
            dataset_id=self.dataset_id,
            relevant_steps=rel,
            lengths=lengths,
        )


def _describe(arr: object) -> str:
    if isinstance(arr, np.ndarray):
        return f"{arr.dtype} array of shape {arr.shape}"
    return type(arr).__name__
