"""Train/validation splits (by subject, or stratified by class) and per-channel normalisation
fitted on training data."""

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


def stratified_cases(y: np.ndarray, fraction: float, seed: int = 0) -> np.ndarray:
    """Sorted indices of about `fraction` of each class's cases, drawn at random (seeded).

    Each class gives round(fraction * n_c) cases, at least one and at most all but one; a
    class with a single case keeps it. The same labels and seed give the same indices.
    """
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"a held-out fraction must lie strictly between 0 and 1, got {fraction}")
    rng = np.random.default_rng(seed)
    held = []
    for label in np.unique(y):  # sorted: the draw order does not depend on case order
        members = np.flatnonzero(y == label)
        n = min(max(round(fraction * len(members)), 1), len(members) - 1)
        held.append(rng.permutation(members)[:n])
    return np.sort(np.concatenate(held)) if held else np.zeros(0, dtype=np.int64)


def group_cases(groups: np.ndarray, fraction: float, seed: int = 0) -> np.ndarray:
    """Sorted indices of the cases of round(fraction * n_groups) groups drawn at random (seeded).

    At least one group and at most all but one are drawn; every case of a drawn group is held
    out. DataError when there are fewer than two groups.
    """
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"a held-out fraction must lie strictly between 0 and 1, got {fraction}")
    unique = np.unique(groups)  # sorted
    if len(unique) < 2:
        raise DataError(f"holding out whole groups needs at least 2 groups, found {len(unique)}")
    n = min(max(round(fraction * len(unique)), 1), len(unique) - 1)
    drawn = np.random.default_rng(seed).permutation(unique)[:n]
    return np.flatnonzero(np.isin(groups, drawn))


def stratified_fold(y: np.ndarray, folds: int, fold: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of fold `fold` of `folds` (k-fold, stratified by class, seeded).

    Each class's cases are shuffled and dealt round-robin, the deal continuing from class to
    class, so every fold holds about N / folds cases and each class spreads evenly; a class
    with fewer cases than folds is absent from some folds. The folds partition the cases.
    """
    _check_fold(folds, fold)
    rng = np.random.default_rng(seed)
    order = np.concatenate(
        [rng.permutation(np.flatnonzero(y == label)) for label in np.unique(y)]
    )  # class by class, each shuffled
    return np.sort(order[fold::folds])


def group_fold(groups: np.ndarray, folds: int, fold: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of the cases of fold `fold` of `folds` over whole groups (seeded): no
    group is on both sides. DataError when there are fewer groups than folds."""
    _check_fold(folds, fold)
    unique = np.unique(groups)
    if len(unique) < folds:
        raise DataError(
            f"{folds} folds of whole groups need at least {folds} groups, found {len(unique)}"
        )
    drawn = np.random.default_rng(seed).permutation(unique)[fold::folds]
    return np.flatnonzero(np.isin(groups, drawn))


def _check_fold(folds: int, fold: int) -> None:
    if not (isinstance(folds, int) and folds >= 2 and isinstance(fold, int) and 0 <= fold < folds):
        raise ConfigError(
            f"fold must lie in 0..folds-1 with folds >= 2, got fold {fold} of {folds}"
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
    def fit(cls, X: np.ndarray, lengths: np.ndarray | None = None) -> Normalizer:
        """Mean and std of each channel of X (N, T, C) over all sequences and real steps.

        `lengths` (N,): only the first lengths[n] steps of sequence n count (padding does not).
        """
        if X.ndim != 3 or X.shape[0] * X.shape[1] == 0:
            raise DataError(f"Normalizer.fit needs a non-empty (N, T, C) array, got {X.shape}")
        if lengths is None:
            flat = X.reshape(-1, X.shape[-1]).astype(np.float64)  # (N*T, C)
        else:
            flat = X[real_steps(lengths, X.shape[1])].astype(np.float64)  # (sum(lengths), C)
        std = np.maximum(flat.std(axis=0), STD_FLOOR)
        return cls(mean=tuple(flat.mean(axis=0).tolist()), std=tuple(std.tolist()))

    def apply(self, X: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
        """Standardised float32 copy of X (..., C); with `lengths`, padding stays zero."""
        if X.shape[-1] != len(self.mean):
            raise DataError(
                f"Normalizer was fitted on {len(self.mean)} channels, got {X.shape[-1]}"
            )
        mean = np.asarray(self.mean, dtype=np.float64)
        std = np.asarray(self.std, dtype=np.float64)
        out = ((X - mean) / std).astype(np.float32)
        if lengths is not None:
            out[~real_steps(lengths, X.shape[1])] = 0.0
        return out

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


def real_steps(lengths: np.ndarray, length: int) -> np.ndarray:
    """bool (N, T): True at the first lengths[n] steps of each sequence, False on padding."""
    return np.arange(length)[None, :] < np.asarray(lengths)[:, None]
