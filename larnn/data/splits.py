"""Subject-wise train/validation split and per-channel normalisation fitted on training data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from larnn.data.dataset import SequenceDataset
from larnn.errors import ConfigError, DataError

STD_FLOOR = 1e-8


@dataclass(frozen=True)
class Split:
    """A train/validation split; `val_groups` (sorted) is what checkpoint metadata records."""

    train: SequenceDataset
    val: SequenceDataset
    val_groups: tuple[int, ...]


def subject_split(train: SequenceDataset, val_fraction: float = 0.2, seed: int = 0) -> Split:
    """Hold out whole groups (subjects) for validation; the same seed gives the same split.

    round(val_fraction * n_groups) groups, at least one and at most all but one, are drawn
    at random; every sequence of a drawn group goes to validation, every other to training.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"val_fraction must lie strictly between 0 and 1, got {val_fraction}")
    groups = np.unique(train.groups)  # sorted
    if len(groups) < 2:
        raise DataError(
            f"{train.dataset_id}: a subject split needs at least 2 groups, found {len(groups)}"
        )
    n_val = min(max(round(val_fraction * len(groups)), 1), len(groups) - 1)
    rng = np.random.default_rng(seed)
    val_groups = np.sort(rng.permutation(groups)[:n_val])
    is_val = np.isin(train.groups, val_groups)
    return Split(
        train=train.subset(~is_val),
        val=train.subset(is_val),
        val_groups=tuple(int(g) for g in val_groups),
    )


@dataclass(frozen=True)
class Normalizer:
    """Per-channel standardisation ``(x - mean) / std``; fit it on training data only."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.mean) != len(self.std) or not self.mean:
            raise DataError(
                f"Normalizer needs one mean and one std per channel, got {len(self.mean)} "
                f"means and {len(self.std)} stds"
            )
        if not all(np.isfinite(self.mean)) or not all(s > 0 for s in self.std):
            raise DataError("Normalizer: means must be finite and stds positive")

    @classmethod
    def fit(cls, X: np.ndarray) -> Normalizer:
        """Mean and std of each channel of X (N, T, C) over all sequences and steps."""
        if X.ndim != 3 or X.shape[0] * X.shape[1] == 0:
            raise DataError(f"Normalizer.fit needs a non-empty (N, T, C) array, got {X.shape}")
        flat = X.reshape(-1, X.shape[-1]).astype(np.float64)  # (N*T, C)
        std = np.maximum(flat.std(axis=0), STD_FLOOR)
        return cls(mean=tuple(flat.mean(axis=0).tolist()), std=tuple(std.tolist()))

    def apply(self, X: np.ndarray) -> np.ndarray:
        """Standardised float32 copy of X (..., C)."""
        if X.shape[-1] != len(self.mean):
            raise DataError(
                f"Normalizer was fitted on {len(self.mean)} channels, got {X.shape[-1]}"
            )
        mean = np.asarray(self.mean, dtype=np.float64)
        std = np.asarray(self.std, dtype=np.float64)
        return ((X - mean) / std).astype(np.float32)

    def to_dict(self) -> dict[str, list[float]]:
        """JSON-ready form."""
        return {"mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Normalizer:
        """Inverse of `to_dict`; DataError names a missing or malformed key."""
        values = {}
        for key in ("mean", "std"):
            raw = data.get(key)
            if not isinstance(raw, list | tuple) or not all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in raw
            ):
                raise DataError(
                    f"Normalizer: key '{key}' must be a list of numbers, got {raw!r:.80}"
                )
            values[key] = tuple(float(v) for v in raw)
        return cls(**values)
