"""A task: a dataset id resolved into train / validation / test parts, and how to rebuild it.

The split definition is plain JSON, recorded in checkpoint metadata, so `evaluate` and the
app rebuild exactly the parts a model was selected and tested on.

A dataset is UCI HAR, a synthetic probe, or a labelled file of one's own (a `.ts` train file,
whose NAME_TEST.ts beside it is the test file; a long CSV; an npz: see
`larnn.data.labelled`). For a file, the split definition records each file's name, path,
size and sha256, how validation was held out (stratified by class, or whole groups where the
file has a `group` column / `groups` key), the seed, the held-out case indices and the class
names; rebuilding refuses a file whose contents changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from larnn.data import SequenceDataset, load_uci_har, make_probe, subject_split
from larnn.data.labelled import (
    FORMATS,
    file_format,
    labelled_datasets,
    read_labelled,
    sha256_of,
)
from larnn.data.splits import group_cases, group_fold, stratified_cases, stratified_fold
from larnn.data.synthetic import PROBES
from larnn.errors import ConfigError, DataError

UCI_HAR = "uci_har"
PROBE_PREFIX = "probe:"
FILE_PREFIX = "file:"  # dataset_id of a file task: "file:" + the train file's name
FILES = "files"  # split kind of a file task
TEST_WORDS = ("_TEST", "_test", "_Test")  # NAME_TRAIN.ts -> NAME_TEST.ts, name_train -> name_test
TEST_SEED = 0  # seed of a test part held out of a train file, whatever the run's seed
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
    test_file: str | None = None,
    test_fraction: float = 0.2,
    folds: tuple[int, int] = (0, 0),
) -> dict[str, Any]:
    """The split definition for a new training run.

    `dataset_id`: "uci_har", "probe:<name>", or the path of a labelled train file (.ts, .csv,
    .npz). `test_file`: a file's separate test file; by default a .ts NAME_TRAIN.ts is tested
    on the NAME_TEST.ts beside it, and any other file on a held-out `test_fraction` of it.
    """
    if dataset_id == UCI_HAR:
        return {"kind": "subjects", "val_fraction": val_fraction, "seed": seed}
    if test_file is not None or is_file_dataset(dataset_id):
        split = _file_split(dataset_id, test_file, seed, val_fraction, test_fraction)
        return {**split, "folds": folds[0], "fold": folds[1]} if folds[0] else split
    if folds[0]:
        raise ConfigError(f"validation folds apply to labelled files, not to {dataset_id!r}")
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
    """Build the three parts from a split definition (see `make_split`).

    For a file task, `data_dir` is a folder holding the recorded files (by name), for when
    they have moved since training; by default they are read where they were.
    """
    if split.get("kind") == FILES:
        return _load_file_task(split, data_dir)
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
        raise ConfigError(
            f"unknown dataset {dataset_id!r}; choose one of {dataset_ids()}, or the path of a "
            f"labelled file ({', '.join(FORMATS)})"
        )
    return name


# --- labelled files --------------------------------------------------------------------


def is_file_dataset(dataset_id: str) -> bool:
    """True for the path of a labelled file (.ts, .csv, .npz)."""
    return Path(dataset_id).suffix.lower() in FORMATS and not dataset_id.startswith(PROBE_PREFIX)


def _file_split(
    train_file: str, test_file: str | None, seed: int, val_fraction: float, test_fraction: float
) -> dict[str, Any]:
    for fraction, name in ((val_fraction, "val_fraction"), (test_fraction, "test_fraction")):
        if not 0.0 < fraction < 1.0:
            raise ConfigError(f"{name} must lie strictly between 0 and 1, got {fraction}")
    train_path = Path(train_file)
    file_format(train_path)  # a known suffix, or a DataError now
    if test_file is None and train_path.suffix.lower() == ".ts":
        stem = train_path.stem
        if stem.upper().endswith("_TRAIN"):
            names = (stem[: -len("_TRAIN")] + word + train_path.suffix for word in TEST_WORDS)
            beside = [train_path.with_name(name) for name in names]
            test_file = next((str(path) for path in beside if path.is_file()), None)
    files = {"train": {"path": str(train_path.resolve())}}
    if test_file is not None:
        file_format(Path(test_file))
        files["test"] = {"path": str(Path(test_file).resolve())}
    split = {"kind": FILES, "files": files, "seed": seed, "val_fraction": val_fraction}
    if test_file is None:  # the test part is the same for every seed: runs compare on it
        split.update(test_fraction=test_fraction, test_seed=TEST_SEED)
    return split


def _locate(record: dict[str, Any], role: str, data_dir: Path | None) -> Path:
    """The recorded file: in `data_dir` by name when it is there, else at its recorded path
    (the app passes $LARNN_DATA_DIR, UCI HAR's folder, for every dataset)."""
    recorded = Path(record["path"])
    path = Path(data_dir) / record.get("name", recorded.name) if data_dir else recorded
    if not path.is_file() and recorded.is_file():
        path = recorded
    if not path.is_file() and "sha256" not in record:  # a new run: the path as given
        raise DataError(f"no {role} file at {path}")
    if not path.is_file():
        where = f"in {data_dir}" if data_dir else f"at {recorded}"
        raise DataError(
            f"the {role} file {record.get('name', recorded.name)} is not {where}; pass "
            "--data-dir (data_dir) with the folder that holds it now"
        )
    if "sha256" in record:
        digest = sha256_of(path)
        if digest != record["sha256"]:
            raise DataError(
                f"{path} has changed since the model was trained (sha256 {digest[:12]}..., "
                f"recorded {record['sha256'][:12]}...); the train / validation / test parts "
                "cannot be rebuilt from it: use the original file"
            )
    return path


def _load_file_task(split: dict[str, Any], data_dir: Path | None) -> Task:
    try:
        files = split["files"]
        seed, val_fraction = split["seed"], split["val_fraction"]
        train_path = _locate(files["train"], "train", data_dir)
        test_path = _locate(files["test"], "test", data_dir) if files.get("test") else None
    except (KeyError, TypeError) as error:
        raise ConfigError(f"file split definition is incomplete: missing {error}") from None
    train_file = read_labelled(train_path)
    test_file = read_labelled(test_path) if test_path else None
    dataset_id = FILE_PREFIX + train_file.name
    full, test = labelled_datasets(train_file, test_file, dataset_id)
    recorded = split.get("class_names")
    if recorded is not None and list(full.class_names) != list(recorded):
        raise DataError(
            f"{train_file.name}: its classes {list(full.class_names)} differ from the recorded "
            f"{recorded}"
        )
    by = "group" if train_file.groups is not None else "class"
    held_out = group_cases if by == "group" else stratified_cases
    labels = full.groups if by == "group" else full.y
    definition = {
        **split,
        "files": {"train": train_file.record(train_path)},
        "format": train_file.format,
        "by": by,
        "class_names": list(full.class_names),
    }
    everything = np.arange(len(full))
    if test is None:
        test_cases = _cases(split, "test_cases", len(full))
        if test_cases is None:
            grouped = full.groups if by == "group" else None
            test_cases = held_out_test(full.y, grouped, split["test_fraction"], split["test_seed"])
        test = full.subset(test_cases)
        remaining = np.setdiff1d(everything, test_cases)
        definition["test_cases"] = test_cases.tolist()
    else:
        definition["files"]["test"] = test_file.record(test_path)
        remaining = everything
    val_cases = _cases(split, "val_cases", len(full))
    if val_cases is None and split.get("folds"):
        fold_of = group_fold if by == "group" else stratified_fold
        val_cases = remaining[fold_of(labels[remaining], split["folds"], split["fold"], seed)]
    elif val_cases is None:
        picked = held_out(labels[remaining], val_fraction, seed)
        val_cases = remaining[picked]
    definition["val_cases"] = val_cases.tolist()
    train = full.subset(np.setdiff1d(remaining, val_cases))
    val = full.subset(val_cases)
    for name, part in (("training", train), ("validation", val)):
        if len(part) == 0:
            raise DataError(f"{train_file.name}: too few cases to hold out a {name} part")
    units = ("a.u.",) * full.X.shape[2]
    return Task(dataset_id, train, val, test, definition, units)


def held_out_test(
    y: np.ndarray, groups: np.ndarray | None, fraction: float = 0.2, seed: int = TEST_SEED
) -> np.ndarray:
    """The cases a file task holds out as its test part when there is no test file: whole
    groups where the file names them, else a stratified share of each class (a class with
    one case keeps it for training: `untested_classes` names such classes)."""
    if groups is not None:
        return group_cases(groups, fraction, seed)
    return stratified_cases(y, fraction, seed)


def untested_classes(task: Task) -> list[str]:
    """The training part's classes with no case in the test part, whose accuracy no test
    score measures (e.g. a class with a single case, left to training by the hold-out)."""
    trained = set(task.train.y.tolist()) | set(task.val.y.tolist())
    tested = set(task.test.y.tolist())
    return [task.train.class_names[k] for k in sorted(trained - tested)]


def _cases(split: dict[str, Any], key: str, n: int) -> np.ndarray | None:
    """Recorded held-out case indices, checked; None when the split does not record them."""
    if key not in split:
        return None
    cases = np.asarray(split[key], dtype=np.int64)
    if cases.ndim != 1 or (len(cases) and (cases.min() < 0 or cases.max() >= n)):
        raise DataError(f"split {key} must be case indices in 0..{n - 1}")
    return np.sort(cases)
