"""A task: a dataset id resolved into train / validation / test parts, and how to rebuild it.

The split definition is plain JSON, recorded in checkpoint metadata, so `evaluate` and the
app rebuild exactly the parts a model was selected and tested on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from larnn.data import SequenceDataset, load_uci_har, make_probe, subject_split
from larnn.data.synthetic import PROBES
from larnn.errors import ConfigError

UCI_HAR = "uci_har"
PROBE_PREFIX = "probe:"
UCI_HAR_UNITS = ("g",) * 3 + ("rad/s",) * 3 + ("g",) * 3
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Task:
    dataset_id: str
    train: SequenceDataset
    val: SequenceDataset
    test: SequenceDataset
    split: dict[str, Any]  # JSON definition: enough to rebuild the three parts
    channel_units: tuple[str, ...]

    def part(self, name: str) -> SequenceDataset:
        if name not in SPLITS:
            raise ConfigError(f"split must be one of {SPLITS}, got {name!r}")
        return getattr(self, name)


def dataset_ids() -> list[str]:
    return [UCI_HAR] + [PROBE_PREFIX + name for name in PROBES]


def make_split(
    dataset_id: str,
    *,
    seed: int = 0,
    val_fraction: float = 0.2,
    probe_sizes: tuple[int, int, int] = (3000, 600, 1000),
    probe_length: int = 64,
) -> dict[str, Any]:
    """The split definition for a new training run."""
    if dataset_id == UCI_HAR:
        return {"kind": "subjects", "val_fraction": val_fraction, "seed": seed}
    probe = _probe_name(dataset_id)
    seeds = (10_000 + seed, 20_000 + seed, 30_000 + seed)  # disjoint streams per part
    return {
        "kind": "probe",
        "probe": probe,
        "length": probe_length,
        **{
            part: {"n": n, "seed": s} for part, n, s in zip(SPLITS, probe_sizes, seeds, strict=True)
        },
    }


def load_task(dataset_id: str, split: dict[str, Any], data_dir: Path | None = None) -> Task:
    """Build the three parts from a split definition (see `make_split`)."""
    if dataset_id == UCI_HAR:
        full_train, test = load_uci_har(data_dir)
        if "val_subjects" in split:
            is_val = np.isin(full_train.groups, split["val_subjects"])
            train, val = full_train.subset(~is_val), full_train.subset(is_val)
            val_subjects = list(split["val_subjects"])
        else:
            parts = subject_split(full_train, split["val_fraction"], split["seed"])
            train, val, val_subjects = parts.train, parts.val, list(parts.val_groups)
        definition = {**split, "val_subjects": val_subjects, "test": "official test subjects"}
        return Task(dataset_id, train, val, test, definition, UCI_HAR_UNITS)
    probe = _probe_name(dataset_id)
    try:
        parts = [
            make_probe(probe, split[part]["n"], split[part]["seed"], split["length"])
            for part in SPLITS
        ]
    except (KeyError, TypeError) as error:
        raise ConfigError(f"probe split definition is incomplete: {error}") from None
    units = ("a.u.",) * parts[0].X.shape[2]
    return Task(dataset_id, *parts, split=dict(split), channel_units=units)


def _probe_name(dataset_id: str) -> str:
    name = dataset_id.removeprefix(PROBE_PREFIX)
    if not dataset_id.startswith(PROBE_PREFIX) or name not in PROBES:
        raise ConfigError(f"unknown dataset {dataset_id!r}; choose one of {dataset_ids()}")
    return name
