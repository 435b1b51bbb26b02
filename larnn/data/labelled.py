"""Labelled time-series classification sets from files: a UEA/UCR `.ts` file, a long CSV, an npz.

Formats (chosen by the file's suffix, then checked against its contents):
  * `.ts`, the UEA/UCR archive format, read by aeon's `load_from_ts_file` (an optional extra:
    ``pip install -e ".[aeon]"``): univariate or multivariate, equal or unequal length,
    string or numeric class labels. Channels are named dim_0, dim_1, ... as in aeon.
  * long CSV: one row per time step, with the columns `case_id`, `label`, optionally `time`
    (each case's rows are sorted by it; numbers or ISO 8601 date-times) and `group` (e.g. the
    subject: validation then holds out whole groups), and one column per channel (every other
    column, named by its header). Without `time`, rows are taken in file order.
  * `.npz`: `X` (N, T, C) numbers, `y` (N,) integers or strings, optional `lengths` (N,) for
    right-padded series and `groups` (N,). Read with ``allow_pickle=False``.

Series may differ in length: they are right-padded with zeros to the longest and each keeps
its length. Every problem raises DataError naming the file and the line, row, case, column or
key at fault, and what was expected. Sizes are checked against `FileLimits` before parsing.

Shape letters: `N` cases, `T` time steps (the longest case), `C` channels.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from larnn.data.csv_cells import F32_MAX, TIME_COLUMNS, Rows, check_unique, is_float
from larnn.data.dataset import SequenceDataset
from larnn.errors import ConfigError, DataError

FORMATS = {".ts": "ts", ".csv": "csv", ".npz": "npz"}
CASE_COLUMN = "case_id"
LABEL_COLUMN = "label"
GROUP_COLUMN = "group"
MIN_LENGTH = 2  # a series of one step has no dynamics to learn
INSTALL_AEON = 'pip install -e ".[aeon]" (or: pip install aeon)'

_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, ValueError)


@dataclass(frozen=True)
class FileLimits:
    """The largest file a reader accepts: bytes on disk, cases, and time steps per case."""

    max_bytes: int = 500_000_000
    max_cases: int = 200_000
    max_length: int = 100_000

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_cases", "max_length"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"FileLimits.{name}: must be an integer >= 1, got {value!r}")


@dataclass(frozen=True, eq=False)
class LabelledFile:
    """One file's labelled cases, as read, before class names are fixed across files.

    Attributes:
        X: float32 (N, T, C), each case right-padded with zeros to T.
        lengths: int64 (N,) real length of each case, >= 2.
        labels: (N,) str class label of each case.
        groups: (N,) str group of each case, or None when the file names none.
        channel_names: C names, in the order of the last axis of `X`.
        class_order: the classes in the order the file declares them (.ts @classLabel),
            or None.
        case_where: N short phrases naming each case for messages ("line 12", "case_id 'a7'").
        name: the file's name; sha256, size: its contents' hash and byte count.
        format: "ts", "csv" or "npz".
    """

    X: np.ndarray
    lengths: np.ndarray
    labels: np.ndarray
    groups: np.ndarray | None
    channel_names: tuple[str, ...]
    class_order: tuple[str, ...] | None
    case_where: tuple[str, ...]
    name: str
    sha256: str
    size: int
    format: str

    def record(self, path: Path) -> dict[str, object]:
        """What checkpoint metadata keeps about the file: enough to find it and spot a change."""
        return {"name": self.name, "path": str(path), "sha256": self.sha256, "bytes": self.size}


def file_format(path: Path) -> str:
    """'ts', 'csv' or 'npz' from the suffix; DataError for anything else."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise DataError(
            f"{Path(path).name}: unsupported file type {suffix or '(no suffix)'!r}; a labelled "
            "data set is a .ts file (UEA/UCR), a long .csv or an .npz"
        )
    return FORMATS[suffix]


def read_labelled(path: str | Path, limits: FileLimits | None = None) -> LabelledFile:
    """Read a labelled set from `path` in the format its suffix names (see the module doc)."""
    path = Path(path)
    limits = limits or FileLimits()
    kind = file_format(path)
    data = _read_bytes(path, limits)
    name = path.name
    if not data:
        raise DataError(f"{name} is empty")
    if kind == "ts":
        parts = _read_ts(path, data, limits)
    elif kind == "csv":
        parts = _read_csv(data, name, limits)
    else:
        parts = _read_npz(data, name, limits)
    series, labels, groups, channels, class_order, where = parts
    X, lengths = _pad(series, labels, name, where, channels, limits)
    return LabelledFile(
        X=X,
        lengths=lengths,
        labels=labels,
        groups=groups,
        channel_names=channels,
        class_order=class_order,
        case_where=tuple(where),
        name=name,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        format=kind,
    )


def labelled_datasets(
    train: LabelledFile, test: LabelledFile | None, dataset_id: str
) -> tuple[SequenceDataset, SequenceDataset | None]:
    """The train (and test) files as SequenceDatasets sharing class indices and channel order.

    Class names are the training file's classes, in the order the file declares them, else
    sorted (numerically when every label is an integer). Refuses a single class, a class
    found only in the test file, and channels that differ between the files.
    """
    present = set(train.labels.tolist())
    if train.class_order is not None:
        class_names = [c for c in train.class_order if c in present]
    else:
        class_names = _natural_sort(present)
    if len(class_names) < 2:
        raise DataError(
            f"{train.name}: every case has the class {class_names[0]!r}; a classifier needs "
            "at least 2 classes in the training file"
        )
    train_set = _as_dataset(train, train.X, train.channel_names, class_names, dataset_id)
    if test is None:
        return train_set, None
    X_test = _align_channels(train, test)
    unknown = [i for i, label in enumerate(test.labels) if label not in present]
    if unknown:
        only = _natural_sort({str(test.labels[i]) for i in unknown})
        raise DataError(
            f"{test.name}: class(es) {', '.join(map(repr, only))} appear only in the test file "
            f"(first at {test.case_where[unknown[0]]}); {train.name} has "
            f"{', '.join(map(repr, class_names))}, and a model can only predict classes it "
            "was trained on"
        )
    test_set = _as_dataset(test, X_test, train.channel_names, class_names, dataset_id)
    return train_set, test_set


def _as_dataset(
    file: LabelledFile,
    X: np.ndarray,
    channel_names: tuple[str, ...],
    class_names: list[str],
    dataset_id: str,
) -> SequenceDataset:
    index = {name: i for i, name in enumerate(class_names)}
    y = np.array([index[label] for label in file.labels.tolist()], dtype=np.int64)
    if file.groups is None:
        groups = np.arange(len(y), dtype=np.int64)  # each case its own group
    else:
        groups = pd.factorize(file.groups)[0].astype(np.int64)
    return SequenceDataset(
        X=X,
        y=y,
        groups=groups,
        channel_names=channel_names,
        class_names=tuple(class_names),
        dataset_id=dataset_id,
        lengths=file.lengths,
    )


def _align_channels(train: LabelledFile, test: LabelledFile) -> np.ndarray:
    """The test file's X in the train file's channel order; DataError when they differ.

    Two CSV files name their channels: the test file's columns are matched by name, in any
    order. A .ts or npz file names channels by position only (dim_0, ...): counts must agree.
    """
    if train.channel_names == test.channel_names:
        return test.X
    named = train.format == test.format == "csv"
    ct, cs = len(train.channel_names), len(test.channel_names)
    if named and set(train.channel_names) == set(test.channel_names):
        order = [test.channel_names.index(c) for c in train.channel_names]
        return np.ascontiguousarray(test.X[:, :, order])
    if not named and ct == cs:
        return test.X
    detail = ""
    if named:
        missing = [c for c in train.channel_names if c not in test.channel_names]
        extra = [c for c in test.channel_names if c not in train.channel_names]
        detail = "".join(
            f"; {what}: {', '.join(map(repr, names))}"
            for what, names in (("missing from the test file", missing), ("only in it", extra))
            if names
        )
    raise DataError(
        f"{test.name} has {cs} channel(s) ({', '.join(test.channel_names)}) but {train.name} "
        f"has {ct} ({', '.join(train.channel_names)}){detail}; train and test files must hold "
        "the same channels"
    )


def _natural_sort(labels: set[str]) -> list[str]:
    """Integers numerically ('2' before '10'), anything else as text."""
    if all(_is_int(label) for label in labels):
        return sorted(labels, key=int)
    return sorted(labels)


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def _read_bytes(path: Path, limits: FileLimits) -> bytes:
    try:
        size = path.stat().st_size
        if size > limits.max_bytes:
            raise DataError(
                f"{path.name} is {size:,} bytes; the limit is {limits.max_bytes:,} "
                "(FileLimits.max_bytes)"
            )
        with path.open("rb") as file:
            data = file.read(limits.max_bytes + 1)  # the file may grow after stat
    except OSError as err:
        raise DataError(f"cannot read {path}: {err.strerror or err}") from None
    if len(data) > limits.max_bytes:
        raise DataError(f"{path.name} is over the limit of {limits.max_bytes:,} bytes")
    return data


def _text(data: bytes, name: str, what: str) -> str:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataError(
            f"{name} is not UTF-8 text (byte {err.start + 1} cannot be decoded), so it is not "
            f"a {what} file; check that the file is what its name says"
        ) from None
    if "\x00" in text:
        raise DataError(f"{name} contains NUL bytes: it is not a {what} text file")
    return text


def _pad(
    series: list[np.ndarray],
    labels: np.ndarray,
    name: str,
    where: list[str],
    channels: tuple[str, ...],
    limits: FileLimits,
) -> tuple[np.ndarray, np.ndarray]:
    """Cases (T_n, C) float64 checked and right-padded into float32 (N, T, C) and lengths."""
    if not series:
        raise DataError(f"{name} holds no cases")
    if len(series) > limits.max_cases:
        raise DataError(
            f"{name} holds {len(series):,} cases; the limit is {limits.max_cases:,} "
            "(FileLimits.max_cases)"
        )
    lengths = np.array([len(s) for s in series], dtype=np.int64)
    for n, length in enumerate(lengths):
        if length == 0:
            raise DataError(f"{name}: {where[n]} is empty (no time steps)")
        if length < MIN_LENGTH:
            raise DataError(
                f"{name}: {where[n]} has a single time step; a series needs at least {MIN_LENGTH}"
            )
        if length > limits.max_length:
            raise DataError(
                f"{name}: {where[n]} has {length:,} time steps; the limit is "
                f"{limits.max_length:,} (FileLimits.max_length)"
            )
        values = series[n]
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(values) | (np.abs(values) > F32_MAX)
        if bad.any():
            t, c = np.argwhere(bad)[0]
            value = values[t, c]
            what = (
                "is missing (NaN, or '?' in a .ts file)"
                if np.isnan(value)
                else f"is {value}, not a finite float32 number"
            )
            raise DataError(
                f"{name}: {where[n]}, channel {channels[c]}, step {t + 1} {what}; fill in or "
                "drop missing values before training"
            )
    X = np.zeros((len(series), int(lengths.max()), len(channels)), dtype=np.float32)  # (N, T, C)
    for n, values in enumerate(series):
        X[n, : len(values)] = values
    return X, lengths


# --- .ts (aeon) ------------------------------------------------------------------------


def _read_ts(path: Path, data: bytes, limits: FileLimits):
    name = path.name
    lines = _text(data, name, ".ts").splitlines()
    data_at = next((i for i, line in enumerate(lines) if line.strip().lower() == "@data"), None)
    if data_at is None:
        raise DataError(
            f"{name} is not a .ts file: it has no '@data' line (a UEA/UCR .ts file has header "
            "lines such as @problemName and @classLabel, then @data and one case per line)"
        )
    case_lines = [
        i + 1
        for i in range(data_at + 1, len(lines))
        if lines[i].strip() and not lines[i].lstrip().startswith("#")
    ]
    if len(case_lines) > limits.max_cases:
        raise DataError(
            f"{name} holds {len(case_lines):,} cases; the limit is {limits.max_cases:,} "
            "(FileLimits.max_cases)"
        )
    try:
        from aeon.datasets import load_from_ts_file
    except ImportError:
        raise DataError(
            f"reading {name} needs aeon, which reads .ts files and is an optional extra: "
            f"{INSTALL_AEON}"
        ) from None
    try:
        X, y, meta = load_from_ts_file(str(path), return_meta_data=True)
    except Exception as err:  # aeon's parser raises OSError, ValueError, IndexError, ...
        where = _locate_ts_problem(lines, case_lines)
        raise DataError(
            f"{name}: {where + '; ' if where else ''}aeon cannot read it "
            f"({type(err).__name__}: {err})"
        ) from None
    if not meta.get("classlabel"):
        raise DataError(
            f"{name} has no class labels (@classLabel false): larnn trains classifiers and "
            "needs a label at the end of each case"
        )
    where = [f"line {line} (case {n + 1})" for n, line in enumerate(case_lines)]
    if len(where) != len(y):  # aeon counted cases differently: name them by index
        where = [f"case {n + 1}" for n in range(len(y))]
    labels = np.array([str(label).strip() for label in y], dtype=str)
    declared = tuple(str(c) for c in meta.get("class_values") or ())
    if declared:
        wrong = [n for n, label in enumerate(labels) if label not in declared]
        if wrong:
            n = wrong[0]
            raise DataError(
                f"{name}: {where[n]} has the label {str(labels[n])!r}, which the header's "
                f"@classLabel does not list ({', '.join(declared)})"
            )
    series = [np.asarray(case, dtype=np.float64).T for case in X]  # N x (T_n, C)
    n_channels = {s.shape[1] for s in series}
    if len(n_channels) > 1:
        raise DataError(f"{name}: cases have different numbers of channels {sorted(n_channels)}")
    channels = tuple(f"dim_{j}" for j in range(series[0].shape[1] if series else 0))
    return series, labels, None, channels, declared or None, where


def _locate_ts_problem(lines: list[str], case_lines: list[int]) -> str:
    """Best effort: the first data line whose channels or cells are malformed, for people."""
    first_dims = None
    for n, line_number in enumerate(case_lines):
        line = lines[line_number - 1].strip()
        if ":" not in line:
            return f"line {line_number} (case {n + 1}) has no ':label' at its end"
        *channels, _label = line.split(":")
        if first_dims is None:
            first_dims = len(channels)
        elif len(channels) != first_dims:
            return (
                f"line {line_number} (case {n + 1}) has {len(channels)} channel(s) but the "
                f"first case has {first_dims}"
            )
        for j, channel in enumerate(channels):
            if not channel.strip():
                return f"line {line_number} (case {n + 1}), channel dim_{j} is empty"
            for t, cell in enumerate(channel.split(",")):
                cell = cell.strip()
                if cell != "?" and not is_float(cell):
                    return (
                        f"line {line_number} (case {n + 1}), channel dim_{j}, step {t + 1}: "
                        f"{cell[:40]!r} is not a number"
                    )
    return ""


# --- long CSV --------------------------------------------------------------------------


def _read_csv(data: bytes, name: str, limits: FileLimits):
    text = _text(data, name, "CSV")
    try:
        table = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise DataError(f"{name} holds no rows") from None
    except (pd.errors.ParserError, ValueError) as err:
        raise DataError(f"{name} is not a valid CSV table: {err}") from None
    names = [str(c).strip() for c in table.columns]
    check_unique(names, name)
    lower = [n.casefold() for n in names]
    layout = (
        f"a labelled long CSV has the columns {CASE_COLUMN}, {LABEL_COLUMN}, optionally "
        f"time and {GROUP_COLUMN}, and one column per channel"
    )
    for required in (CASE_COLUMN, LABEL_COLUMN):
        if required not in lower:
            raise DataError(f"{name}: no {required!r} column; {layout} (found: {', '.join(names)})")
    case_col, label_col = lower.index(CASE_COLUMN), lower.index(LABEL_COLUMN)
    time_col = next((lower.index(n) for n in TIME_COLUMNS if n in lower), None)
    group_col = lower.index(GROUP_COLUMN) if GROUP_COLUMN in lower else None
    special = {case_col, label_col, time_col, group_col}
    channel_cols = [j for j in range(len(names)) if j not in special]
    if not channel_cols:
        raise DataError(f"{name}: no channel columns; {layout} (found: {', '.join(names)})")
    cells = table.to_numpy(dtype=object)  # (R, columns) of str
    if len(cells) == 0:
        raise DataError(f"{name} has a header but no data rows")
    rows = Rows(name, header=True)
    case_cells = _required_text(cells[:, case_col], names[case_col], rows, name)
    label_cells = _required_text(cells[:, label_col], names[label_col], rows, name)
    codes, case_ids = pd.factorize(case_cells)  # case_ids in order of first appearance
    if len(case_ids) > limits.max_cases:
        raise DataError(
            f"{name} holds {len(case_ids):,} cases; the limit is {limits.max_cases:,} "
            "(FileLimits.max_cases)"
        )
    values = np.stack([rows.numbers(cells[:, j], names[j]) for j in channel_cols], axis=1)
    if time_col is None:
        order = np.argsort(codes, kind="stable")  # by case, then file order
    else:
        times = rows.times(cells[:, time_col], names[time_col])
        order = np.lexsort((times, codes))  # by case, then time
        repeat = np.flatnonzero((np.diff(codes[order]) == 0) & (np.diff(times[order]) == 0))
        if len(repeat):
            i = order[repeat[0] + 1]
            raise DataError(
                f"{name}: {rows.at(i)}: case {str(case_cells[i])!r} already has a row at "
                f"{names[time_col]} = {cells[i, time_col].strip()!r}; each time may appear once "
                "per case"
            )
    labels = _per_case(label_cells, codes, case_ids, names[label_col], rows, name)
    groups = None
    if group_col is not None:
        group_cells = _required_text(cells[:, group_col], names[group_col], rows, name)
        groups = _per_case(group_cells, codes, case_ids, names[group_col], rows, name)
    bounds = np.cumsum(np.bincount(codes, minlength=len(case_ids)))[:-1]
    series = np.split(values[order], bounds)  # N x (T_n, C), each sorted
    where = [f"case_id {str(case_id)!r}" for case_id in case_ids]
    channels = tuple(names[j] for j in channel_cols)
    return series, labels, groups, channels, None, where


def _required_text(column: np.ndarray, column_name: str, rows: Rows, name: str) -> np.ndarray:
    cells = np.array([str(c).strip() for c in column], dtype=object)
    empty = np.flatnonzero(cells == "")
    if len(empty):
        raise DataError(f"{name}: {rows.at(empty[0])}, column {column_name!r} is empty")
    return cells


def _per_case(
    cells: np.ndarray,
    codes: np.ndarray,
    case_ids: np.ndarray,
    column: str,
    rows: Rows,
    name: str,
) -> np.ndarray:
    """The one value of `column` each case has; DataError where a case has two."""
    _, first = np.unique(codes, return_index=True)  # each case's first row, by case code
    differs = np.flatnonzero(cells != cells[first[codes]])
    if len(differs):
        i = differs[0]
        k, j = codes[i], first[codes[i]]
        raise DataError(
            f"{name}: case {str(case_ids[k])!r} has {column} {str(cells[j])!r} at {rows.at(j)} "
            f"but {str(cells[i])!r} at {rows.at(i)}; a case has one {column}"
        )
    return np.array([str(cells[i]) for i in first], dtype=str)


# --- npz -------------------------------------------------------------------------------


def _read_npz(data: bytes, name: str, limits: FileLimits):
    if not data.startswith(b"PK"):
        raise DataError(
            f"{name} is not an .npz file (an npz is a zip of .npy arrays, written by "
            "np.savez; this file does not start like a zip)"
        )
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            declared = sum(info.file_size for info in archive.infolist())
    except _ZIP_ERRORS as err:
        raise DataError(f"{name} is not a readable .npz (zip) file ({err})") from None
    if declared > limits.max_bytes:
        raise DataError(
            f"{name} unpacks to {declared:,} bytes; the limit is {limits.max_bytes:,} "
            "(FileLimits.max_bytes)"
        )
    layout = "an npz holds X (N, T, C), y (N,), and optionally lengths (N,) and groups (N,)"
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            keys = list(archive.files)
            for required in ("X", "y"):
                if required not in keys:
                    raise DataError(
                        f"{name}: no key {required!r}; {layout} (found: {', '.join(keys)})"
                    )
            arrays = {key: archive[key] for key in ("X", "y", "lengths", "groups") if key in keys}
    except DataError:
        raise
    except ValueError as err:
        if "pickle" in str(err):
            raise DataError(
                f"{name} holds Python objects (arrays of dtype object, stored as pickles); "
                "larnn never unpickles: save numbers and fixed-width strings (np.savez with "
                "y.astype(str))"
            ) from None
        raise DataError(f"{name} is not a readable .npz file ({err})") from None
    except (*_ZIP_ERRORS, KeyError) as err:
        raise DataError(f"{name} is not a readable .npz file ({err})") from None
    X = arrays["X"]
    if X.dtype.kind not in "iuf" or X.ndim != 3:
        hint = " (one channel? use X[..., None])" if X.ndim == 2 else ""
        raise DataError(
            f"{name}: key 'X' must be a numeric array (N, T, C), got {X.dtype} of shape "
            f"{X.shape}{hint}"
        )
    n, length, c = X.shape
    y = _npz_labels(arrays["y"], "y", n, name)
    lengths = np.full(n, length, dtype=np.int64)
    if "lengths" in arrays:
        raw = arrays["lengths"]
        if raw.dtype.kind not in "iu" or raw.shape != (n,):
            raise DataError(
                f"{name}: key 'lengths' must be {n} integers (one per case), got {raw.dtype} "
                f"of shape {raw.shape}"
            )
        bad = np.flatnonzero((raw < 0) | (raw > length))
        if len(bad):
            raise DataError(
                f"{name}: lengths[{bad[0]}] = {raw[bad[0]]} lies outside 0..{length} "
                "(the padded length of X)"
            )
        lengths = raw.astype(np.int64)
    groups = _npz_labels(arrays["groups"], "groups", n, name) if "groups" in arrays else None
    series = [X[i, : lengths[i]].astype(np.float64) for i in range(n)]  # N x (T_n, C)
    where = [f"case {i} (index in X)" for i in range(n)]
    channels = tuple(f"dim_{j}" for j in range(c))
    return series, y, groups, channels, None, where


def _npz_labels(raw: np.ndarray, key: str, n: int, name: str) -> np.ndarray:
    if raw.shape != (n,) or raw.dtype.kind not in "iuU":
        raise DataError(
            f"{name}: key {key!r} must be {n} integers or strings (one per case in X), got "
            f"{raw.dtype} of shape {raw.shape}"
        )
    labels = raw.astype(str)
    empty = np.flatnonzero(np.char.strip(labels) == "")
    if len(empty):
        raise DataError(f"{name}: {key}[{empty[0]}] is an empty string")
    return labels


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def describe_lengths(lengths: np.ndarray) -> str:
    """'100' or '7..26', for messages and summaries."""
    low, high = int(lengths.min()), int(lengths.max())
    return str(low) if low == high else f"{low}..{high}"


__all__ = [
    "FORMATS",
    "FileLimits",
    "LabelledFile",
    "describe_lengths",
    "file_format",
    "labelled_datasets",
    "read_labelled",
    "sha256_of",
]
