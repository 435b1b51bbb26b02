"""UCI HAR (Human Activity Recognition Using Smartphones): find, parse, verify, cache, download.

Each window is 128 steps (2.56 s at 50 Hz) of the 9 raw inertial channels; labels are the 6
activities; groups are the 30 volunteers (train and test hold disjoint volunteers).

A data folder may hold any of:
  (a) ``uci_har.npz``: the prepared form (keys X_train, y_train, subject_train, X_test,
      y_test, subject_test, channels, activity_names; labels 1..6), read first;
  (b) the official extracted folder ``UCI HAR Dataset/`` (or the folder itself is it);
  (c) a zip of that folder, or the UCI download, which is a zip holding that zip.
Forms (b) and (c) are parsed once and then cached as (a) in the same folder.

Dataset: D. Anguita, A. Ghio, L. Oneto, X. Parra, J. L. Reyes-Ortiz, "A Public Domain
Dataset for Human Activity Recognition Using Smartphones", ESANN 2013.
"""

from __future__ import annotations

import io
import os
import tempfile
import warnings
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from larnn.data.dataset import SequenceDataset
from larnn.data.download import ProgressCallback, download_file
from larnn.errors import DataError, DownloadError

CHANNELS = (
    "body_acc_x",
    "body_acc_y",
    "body_acc_z",
    "body_gyro_x",
    "body_gyro_y",
    "body_gyro_z",
    "total_acc_x",
    "total_acc_y",
    "total_acc_z",
)
CLASS_NAMES = (
    "WALKING",
    "WALKING_UPSTAIRS",
    "WALKING_DOWNSTAIRS",
    "SITTING",
    "STANDING",
    "LAYING",
)
DATASET_ID = "uci_har"
DEFAULT_URL = (
    "https://archive.ics.uci.edu/static/public/240/human+activity+recognition+using+smartphones.zip"
)
ENV_VAR = "LARNN_DATA_DIR"
CACHE_NAME = "uci_har.npz"
LAYOUT_DIR = "UCI HAR Dataset"
ZIP_NAMES = ("uci_har.zip", "UCI HAR Dataset.zip", DEFAULT_URL.rsplit("/", 1)[-1])

_SPLITS = ("train", "test")
_MARKER = "train/y_train.txt"  # a file every copy of the official layout has
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError)


@dataclass(frozen=True)
class UciHarSpec:
    """What a correct copy contains; the defaults are the published dataset."""

    n_steps: int = 128
    train_counts: tuple[int, ...] = (1226, 1073, 986, 1286, 1374, 1407)  # labels 1..6
    test_counts: tuple[int, ...] = (496, 471, 420, 491, 532, 537)
    train_subjects: frozenset[int] = frozenset(
        {1, 3, 5, 6, 7, 8, 11, 14, 15, 16, 17, 19, 21, 22, 23, 25, 26, 27, 28, 29, 30}
    )
    test_subjects: frozenset[int] = frozenset({2, 4, 9, 10, 12, 13, 18, 20, 24})


def cache_dir() -> Path:
    """The per-user cache folder: platformdirs' if installed, else $XDG_CACHE_HOME or ~/.cache."""
    try:
        from platformdirs import user_cache_dir
    except ImportError:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        return Path(base) / "larnn"
    return Path(user_cache_dir("larnn"))


def default_data_dir() -> Path:
    """Where downloads go: $LARNN_DATA_DIR if set, else the per-user cache folder."""
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else cache_dir()


def find_uci_har(data_dir: Path | None = None) -> Path | None:
    """Path of the first UCI HAR copy found (npz, extracted folder or zip), or None.

    Looks only in `data_dir` when given (a folder, or the npz/zip file itself); otherwise in
    $LARNN_DATA_DIR, then in the per-user cache folder.
    """
    for folder in _search_path(data_dir):
        found = _find_in(folder)
        if found is not None:
            return found
    return None


def _search_path(data_dir: Path | None) -> list[Path]:
    if data_dir is not None:
        return [Path(data_dir)]
    env = os.environ.get(ENV_VAR)
    return [Path(env), cache_dir()] if env else [cache_dir()]


def _find_in(folder: Path) -> Path | None:
    """The fastest form in `folder`: npz, then extracted layout, then zip."""
    if folder.is_file():
        return folder
    if (folder / CACHE_NAME).is_file():
        return folder / CACHE_NAME
    for root in (folder / LAYOUT_DIR, folder):
        if (root / _MARKER).is_file():
            return root
    for name in ZIP_NAMES:
        if (folder / name).is_file():
            return folder / name
    return None


def uci_har_available(data_dir: Path | None = None) -> bool:
    """Whether `find_uci_har` finds a copy (it is not parsed or verified here)."""
    return find_uci_har(data_dir) is not None


def load_uci_har(
    data_dir: Path | None = None, spec: UciHarSpec = UciHarSpec()
) -> tuple[SequenceDataset, SequenceDataset]:
    """Load, verify and return (train, test); labels 0..5, groups = volunteer ids.

    A text or zip copy is cached as ``uci_har.npz`` beside it so that later loads are fast.
    Raises DataError when no copy is found or the copy fails `verify_uci_har`.
    """
    source = find_uci_har(data_dir)
    if source is None:
        where = " or ".join(str(folder) for folder in _search_path(data_dir))
        raise DataError(
            f"UCI HAR not found in {where}. Run larnn.data.download_uci_har(), or put "
            f"{CACHE_NAME}, the '{LAYOUT_DIR}' folder or its zip in a folder and set {ENV_VAR} "
            "to that folder."
        )
    train, test = read_uci_har(source, spec)
    verify_uci_har(train, test, spec)
    if source.suffix != ".npz":
        folder = source.parent if source.is_file() or source.name == LAYOUT_DIR else source
        try:
            save_uci_har(folder / CACHE_NAME, train, test)
        except OSError as err:
            warnings.warn(
                f"Could not cache UCI HAR in {folder} ({err}); it will be parsed again next time.",
                stacklevel=2,
            )
    return train, test


def read_uci_har(
    source: Path, spec: UciHarSpec = UciHarSpec()
) -> tuple[SequenceDataset, SequenceDataset]:
    """Parse (train, test) from an npz, an extracted folder or a zip, without verifying counts."""
    source = Path(source)
    if source.suffix == ".npz":
        return _read_npz(source)
    if source.is_dir():
        return _read_layout(lambda rel: _read_file(source / rel), str(source), spec)
    return _read_zip(source, str(source), spec, nested_ok=True)


def verify_uci_har(
    train: SequenceDataset, test: SequenceDataset, spec: UciHarSpec = UciHarSpec()
) -> None:
    """Raise DataError unless shapes, label counts, subjects and values match `spec`."""
    for ds, split, counts, subjects in (
        (train, "train", spec.train_counts, spec.train_subjects),
        (test, "test", spec.test_counts, spec.test_subjects),
    ):
        shape = (sum(counts), spec.n_steps, len(CHANNELS))
        if ds.X.shape != shape:
            raise DataError(f"UCI HAR {split}: X has shape {ds.X.shape}, expected {shape}")
        if ds.channel_names != CHANNELS:
            raise DataError(f"UCI HAR {split}: channels {ds.channel_names}, expected {CHANNELS}")
        found = np.bincount(ds.y, minlength=len(CLASS_NAMES)).tolist()
        if found != list(counts):
            raise DataError(
                f"UCI HAR {split}: label counts {found}, expected {list(counts)} "
                f"(in the order {', '.join(CLASS_NAMES)})"
            )
        found_subjects = set(np.unique(ds.groups).tolist())
        if found_subjects != set(subjects):
            raise DataError(
                f"UCI HAR {split}: subjects missing {sorted(set(subjects) - found_subjects)}, "
                f"unexpected {sorted(found_subjects - set(subjects))}"
            )
        bad = np.argwhere(~np.isfinite(ds.X))
        if len(bad):
            row, step, channel = bad[0]
            raise DataError(
                f"UCI HAR {split}: non-finite value at row {row + 1}, step {step + 1}, "
                f"channel {CHANNELS[channel]}"
            )
    shared = set(train.groups.tolist()) & set(test.groups.tolist())
    if shared:
        raise DataError(f"UCI HAR: subjects {sorted(shared)} are in both train and test")


def save_uci_har(path: Path, train: SequenceDataset, test: SequenceDataset) -> Path:
    """Write the prepared npz (labels stored as 1..6) atomically: temp file, then os.replace."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            np.savez_compressed(
                out,
                X_train=train.X,
                y_train=train.y + 1,
                subject_train=train.groups,
                X_test=test.X,
                y_test=test.y + 1,
                subject_test=test.groups,
                channels=np.array(CHANNELS),
                activity_names=np.array(CLASS_NAMES),
            )
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def download_uci_har(
    dest_dir: Path | None = None,
    url: str = DEFAULT_URL,
    progress: bool = True,
    expected_size: int | None = None,
    expected_sha256: str | None = None,
    progress_callback: ProgressCallback | None = None,
    spec: UciHarSpec = UciHarSpec(),
) -> Path:
    """Download the UCI zip, parse and verify it, and return the path of the cached npz.

    `dest_dir` defaults to $LARNN_DATA_DIR, else the per-user cache folder. The zip goes to
    a temporary folder inside it and is deleted afterwards, also when it fails to parse or
    verify (then DataError). Network failures raise DownloadError.
    """
    folder = Path(dest_dir) if dest_dir is not None else default_data_dir()
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".larnn-download-") as tmp:
        archive = Path(tmp) / ZIP_NAMES[0]
        try:
            download_file(
                url,
                archive,
                progress=progress,
                expected_size=expected_size,
                expected_sha256=expected_sha256,
                progress_callback=progress_callback,
            )
        except DownloadError as err:
            raise DownloadError(
                f"{err} To use a copy you already have, put {CACHE_NAME}, the '{LAYOUT_DIR}' "
                f"folder or its zip in a folder and set {ENV_VAR} to that folder."
            ) from err
        train, test = read_uci_har(archive, spec)
    verify_uci_har(train, test, spec)
    return save_uci_har(folder / CACHE_NAME, train, test)


def _read_npz(path: Path) -> tuple[SequenceDataset, SequenceDataset]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = [f"{k}_{s}" for s in _SPLITS for k in ("X", "y", "subject")]
            arrays = {key: npz[key] for key in keys}
    except KeyError as err:
        raise DataError(f"{path} lacks the key {err}; delete it to parse the source again") from err
    except (ValueError, *_ZIP_ERRORS) as err:
        raise DataError(f"{path} is not a readable npz ({err}); delete it and load again") from err
    for key, arr in arrays.items():
        kind = "f" if key.startswith("X") else "iu"
        if arr.dtype.kind not in kind:
            raise DataError(f"{path}: key {key} has dtype {arr.dtype}, expected numbers")
    return tuple(  # type: ignore[return-value]
        _make_split(
            arrays[f"X_{s}"].astype(np.float32),
            arrays[f"y_{s}"].astype(np.int64),
            arrays[f"subject_{s}"].astype(np.int64),
            f"{path} ({s})",
        )
        for s in _SPLITS
    )


def _read_zip(
    source: Path | IO[bytes], where: str, spec: UciHarSpec, nested_ok: bool
) -> tuple[SequenceDataset, SequenceDataset]:
    """Parse the layout from a zip; with `nested_ok`, also from a zip inside the zip."""
    try:
        with zipfile.ZipFile(source) as archive:
            names = archive.namelist()
            roots = [n[: -len(_MARKER)] for n in names if n.endswith(_MARKER)]
            roots = [r for r in roots if not r.startswith("__MACOSX")]
            if roots:

                def read(rel: str) -> bytes:
                    try:
                        return archive.read(roots[0] + rel)
                    except KeyError:
                        raise DataError(f"{where} lacks {roots[0] + rel}") from None

                return _read_layout(read, where, spec)
            inner = [n for n in names if n.endswith(".zip") and not n.startswith("__MACOSX")]
            if nested_ok and inner:
                data = io.BytesIO(archive.read(inner[0]))
                return _read_zip(data, f"{where}/{inner[0]}", spec, nested_ok=False)
    except _ZIP_ERRORS as err:
        raise DataError(
            f"{where} is not a readable zip archive ({err}); delete it and download again"
        ) from err
    raise DataError(f"{where} does not contain the '{LAYOUT_DIR}/' folder ({_MARKER} not found)")


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path} is missing") from None


def _read_layout(
    read: Callable[[str], bytes], where: str, spec: UciHarSpec
) -> tuple[SequenceDataset, SequenceDataset]:
    """Parse both splits of the official text layout; `read` maps a relative path to bytes."""
    splits = []
    for split in _SPLITS:
        y = _parse_column(read(f"{split}/y_{split}.txt"), f"{where}: {split}/y_{split}.txt")
        subject_name = f"{split}/subject_{split}.txt"
        subjects = _parse_column(read(subject_name), f"{where}: {subject_name}")
        columns = []
        for channel in CHANNELS:
            name = f"{split}/Inertial Signals/{channel}_{split}.txt"
            columns.append(_parse_matrix(read(name), spec.n_steps, f"{where}: {name}"))
        for name, n in ((f"y_{split}.txt", len(y)), (subject_name, len(subjects))):
            if n != len(columns[0]):
                raise DataError(
                    f"{where}: {name} has {n} rows, but the {split} signals have {len(columns[0])}"
                )
        for channel, col in zip(CHANNELS, columns, strict=True):
            if len(col) != len(columns[0]):
                raise DataError(
                    f"{where}: {channel}_{split}.txt has {len(col)} rows, "
                    f"{CHANNELS[0]}_{split}.txt has {len(columns[0])}"
                )
        X = np.stack(columns, axis=-1).astype(np.float32)  # (N, T, C)
        splits.append(_make_split(X, y, subjects, f"{where} ({split})"))
    return splits[0], splits[1]


def _parse_column(data: bytes, name: str) -> np.ndarray:
    """One integer per non-blank line."""
    values = []
    for row, line in enumerate((ln for ln in data.splitlines() if ln.strip()), 1):
        try:
            values.append(int(line))
        except ValueError:
            raise DataError(f"{name}: row {row} is not a whole number: {line[:40]!r}") from None
    return np.array(values, dtype=np.int64)


def _parse_matrix(data: bytes, n_cols: int, name: str) -> np.ndarray:
    """Whitespace-separated numbers, `n_cols` per line, as float64 (rows, n_cols)."""
    try:
        values = pd.read_csv(io.BytesIO(data), sep=r"\s+", header=None, dtype=np.float64)
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise DataError(f"{name}: not a table of numbers ({err})") from err
    if values.shape[1] != n_cols:
        raise DataError(f"{name}: {values.shape[1]} values per row, expected {n_cols}")
    arr = values.to_numpy()
    missing = np.isnan(arr).any(axis=1)
    if missing.any():
        raise DataError(f"{name}: row {np.argmax(missing) + 1} has missing or NaN values")
    return arr


def _make_split(X: np.ndarray, y: np.ndarray, subjects: np.ndarray, where: str) -> SequenceDataset:
    """Dataset from raw labels 1..6."""
    if len(y) and (y.min() < 1 or y.max() > len(CLASS_NAMES)):
        raise DataError(
            f"{where}: labels must be 1..{len(CLASS_NAMES)}, found {y.min()}..{y.max()}"
        )
    if X.ndim != 3 or X.shape[0] != len(y) or len(subjects) != len(y):
        raise DataError(
            f"{where}: X {X.shape}, {len(y)} labels and {len(subjects)} subjects do not match"
        )
    return SequenceDataset(
        X=X,
        y=y - 1,
        groups=subjects,
        channel_names=CHANNELS,
        class_names=CLASS_NAMES,
        dataset_id=DATASET_ID,
    )
