"""Read a time series a user hands in (CSV, .npy, .npz) into the model's channel order.

Accepted forms:
  * wide CSV: rows are time steps, columns are channels; an optional time column (`time`,
    `t` or `timestamp`; numbers or ISO 8601 date-times) must increase and is dropped. One
    case. The header row is optional: a first row of numbers is data.
  * long CSV: a `case_id` column, an optional time column and the channel columns; each
    case is sorted by time; all cases must have the same length.
  * `.npy`: a numeric array (T, C) for one case or (N, T, C); `.npz`: one such array, or
    the one under key `X`. Never unpickled.
Columns map to channels by name when every channel name is a column (case-insensitive;
other columns are ignored), else by position when the count matches. Without expected
channels the file is read on its own: every value column (or the array's last axis) is a
channel, so its own faults are found before any model's channels are compared with it.
Anything else raises DataError naming the row, column or key at fault. Row numbers count
data rows from 1, not counting the header.
"""

from __future__ import annotations

import csv
import io
import math
import tokenize
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from larnn.data.csv_cells import F32_MAX, TIME_COLUMNS, Rows, check_unique, is_number
from larnn.errors import ConfigError, DataError

CASE_COLUMN = "case_id"

_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    OSError,
    NotImplementedError,
    RuntimeError,
    ValueError,
)
_NPY_ERRORS = (
    ValueError,
    TypeError,
    EOFError,
    OSError,
    SyntaxError,
    RecursionError,
    tokenize.TokenError,  # numpy's fallback header parser on a damaged header
)


@dataclass(frozen=True, eq=False)
class UserSeries:
    """Series ready for the model.

    Attributes:
        X: float32 (N, T, C), channels in the order of `channel_names`.
        case_ids: N names of the cases.
        channel_names: the model's channel names.
        mapping_note: how the file's columns or axes became these channels, for people.
    """

    X: np.ndarray
    case_ids: tuple[str, ...]
    channel_names: tuple[str, ...]
    mapping_note: str

    def __post_init__(self) -> None:
        if self.X.dtype != np.float32 or self.X.ndim != 3:
            raise DataError(f"UserSeries.X must be float32 (N, T, C), got {self.X.shape}")
        if self.X.shape[2] != len(self.channel_names) or self.X.shape[0] != len(self.case_ids):
            raise DataError(
                f"UserSeries: X {self.X.shape} does not match {len(self.case_ids)} cases and "
                f"{len(self.channel_names)} channels"
            )


def read_user_series(
    source: bytes | Path,
    filename: str,
    expected_channels: Sequence[str] | None,
    max_bytes: int = 20_000_000,
    max_length: int = 100_000,
    max_cases: int = 10_000,
) -> UserSeries:
    """Parse `source` (file contents, or a path) as the format its `filename` suffix names.

    expected_channels: the model's channels; None reads the file's own (its value columns'
    names, "column j" without a header, "channel j" of an array's last axis).
    Raises DataError, with a message for the person who made the file, for anything
    malformed: undecodable text, a cell that is not a finite number, wrong channel count,
    fewer than 2 or more than `max_length` steps, more than `max_cases` cases, ragged
    cases, a file over `max_bytes`, or an array of objects.
    """
    channels = None if expected_channels is None else tuple(expected_channels)
    folded = [c.casefold() for c in channels or ()]
    if channels is not None and (not channels or len(set(folded)) != len(folded)):
        raise ConfigError(f"expected_channels must be distinct names, got {channels}")
    data = _read_source(source, filename, max_bytes)
    if not data:
        raise DataError(f"{filename} is empty")
    suffix = Path(filename).suffix.lower()
    stem = Path(filename).stem or "series"
    if suffix in (".csv", ".tsv"):
        sep = "\t" if suffix == ".tsv" else ","
        X, case_ids, channels, note = _from_csv(data, filename, channels, sep)
    elif suffix == ".npy":
        array = _load_npy(data, filename)
        X, case_ids, channels, note = _from_array(array, filename, channels, stem)
    elif suffix == ".npz":
        array, where = _load_npz(data, filename, max_bytes)
        X, case_ids, channels, note = _from_array(array, where, channels, stem)
    else:
        raise DataError(
            f"{filename}: unsupported file type {suffix!r}; use .csv, .tsv, .npy or .npz"
        )
    _check_size(X.shape[0], X.shape[1], filename, max_length, max_cases)
    return UserSeries(X=X, case_ids=case_ids, channel_names=channels, mapping_note=note)


def _read_source(source: bytes | Path, filename: str, max_bytes: int) -> bytes:
    if isinstance(source, Path):
        try:
            size = source.stat().st_size
            if size > max_bytes:
                raise DataError(f"{filename} is {size:,} bytes; the limit is {max_bytes:,}")
            return source.read_bytes()
        except OSError as err:
            raise DataError(f"cannot read {filename}: {err.strerror or err}") from err
    if not isinstance(source, bytes | bytearray | memoryview):
        raise TypeError(f"source must be bytes or a Path, got {type(source).__name__}")
    if len(source) > max_bytes:
        raise DataError(f"{filename} is {len(source):,} bytes; the limit is {max_bytes:,}")
    return bytes(source)


def _check_size(n_cases: int, length: int, where: str, max_length: int, max_cases: int) -> None:
    if n_cases < 1:
        raise DataError(f"{where} holds no series")
    if n_cases > max_cases:
        raise DataError(f"{where} holds {n_cases:,} cases; the limit is {max_cases:,}")
    if length < 2:
        raise DataError(f"{where}: a series needs at least 2 time steps, found {length}")
    if length > max_length:
        raise DataError(f"{where}: series of {length:,} time steps; the limit is {max_length:,}")


# --- CSV -------------------------------------------------------------------------------


def _from_csv(
    data: bytes, filename: str, channels: tuple[str, ...] | None, sep: str
) -> tuple[np.ndarray, tuple[str, ...], tuple[str, ...], str]:
    """(X (N, T, C), case ids, channels, mapping note) of a CSV; channels None: its own."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataError(
            f"{filename} is not UTF-8 text (byte {err.start + 1} cannot be decoded); "
            "save it as UTF-8 CSV"
        ) from None
    if "\x00" in text:
        raise DataError(f"{filename} contains NUL characters: it is not a text CSV file")
    try:
        table = pd.read_csv(
            io.StringIO(text), sep=sep, header=None, dtype=str, keep_default_na=False
        )
    except pd.errors.EmptyDataError:
        raise DataError(f"{filename} holds no rows") from None
    except (pd.errors.ParserError, ValueError, csv.Error) as err:
        raise DataError(f"{filename} is not a valid CSV table: {err}") from None
    cells = table.fillna("").to_numpy(dtype=object)  # (rows, columns) of str
    header = not all(is_number(c) for c in cells[0])
    if header:
        names = [str(c).strip() or f"column {j + 1}" for j, c in enumerate(cells[0])]
        cells = cells[1:]
        check_unique(names, filename)
    else:
        names = [f"column {j + 1}" for j in range(cells.shape[1])]
    if len(cells) == 0:
        raise DataError(f"{filename} has a header but no data rows")
    rows = Rows(filename, header)
    lower = [n.casefold() for n in names]
    channel_lower = [c.casefold() for c in channels or ()]
    special = [n for n in lower if n not in channel_lower] if header else []
    case_col = lower.index(CASE_COLUMN) if CASE_COLUMN in special else None
    time_col = next((lower.index(n) for n in TIME_COLUMNS if n in special), None)
    value_cols = [j for j in range(len(names)) if j not in (case_col, time_col)]
    if channels is None:  # the file read on its own: every value column is a channel
        channels = tuple(names[j] for j in value_cols)
        channel_lower = [c.casefold() for c in channels]

    if all(c in lower for c in channel_lower):
        chosen = [lower.index(c) for c in channel_lower]
        ignored = [names[j] for j in value_cols if j not in chosen]
        note = "Columns matched to channels by name."
        if ignored:
            note += f" Ignored columns: {', '.join(map(repr, ignored))}."
    elif len(value_cols) == len(channels):
        chosen = value_cols
        pairs = ", ".join(f"{names[j]!r} -> {c}" for j, c in zip(chosen, channels, strict=True))
        why = "the column names do not match the channels" if header else "there is no header"
        note = f"Columns taken in order, because {why}: {pairs}."
    else:
        found = ", ".join(repr(names[j]) for j in value_cols)
        raise DataError(
            f"{filename}: expected the {len(channels)} channels {', '.join(channels)} as column "
            f"names, or exactly {len(channels)} data columns; found {len(value_cols)}: {found}"
        )
    values = np.stack([rows.numbers(cells[:, j], names[j]) for j in chosen], axis=1)  # (R, C)

    if case_col is None:
        if time_col is not None:
            times = rows.times(cells[:, time_col], names[time_col])
            step = np.flatnonzero(np.diff(times) <= 0)
            if len(step):
                i = step[0]
                raise DataError(
                    f"{filename}: column {names[time_col]!r} must increase, but {rows.at(i + 1)} "
                    f"({cells[i + 1, time_col].strip()!r}) is not after {rows.at(i)} "
                    f"({cells[i, time_col].strip()!r})"
                )
            note += f" Time column {names[time_col]!r} checked to increase and dropped."
        return values[None].astype(np.float32), (Path(filename).stem or "series",), channels, note

    case_cells = np.array([str(c).strip() for c in cells[:, case_col]], dtype=object)
    empty = np.flatnonzero(case_cells == "")
    if len(empty):
        raise DataError(f"{filename}: {rows.at(empty[0])}, column {names[case_col]!r} is empty")
    codes, case_ids = pd.factorize(case_cells)  # case_ids in order of first appearance
    counts = np.bincount(codes)
    ragged = np.flatnonzero(counts != counts[0])
    if len(ragged):
        k = ragged[0]
        raise DataError(
            f"{filename}: case {case_ids[k]!r} has {counts[k]} rows but case {case_ids[0]!r} "
            f"has {counts[0]}; all cases must have the same length"
        )
    n_cases, length = len(case_ids), int(counts[0])
    note += f" Rows grouped into {n_cases} cases by column {names[case_col]!r}"
    if time_col is None:
        order = np.argsort(codes, kind="stable")
        note += ", in file order."
    else:
        times = rows.times(cells[:, time_col], names[time_col])
        order = np.lexsort((times, codes))  # by case, then time
        same = np.flatnonzero(np.diff(times[order].reshape(n_cases, length), axis=1) == 0)
        if len(same):
            k = same[0] // (length - 1)
            raise DataError(
                f"{filename}: case {case_ids[k]!r} has two rows at the same "
                f"{names[time_col]!r}; each time may appear once per case"
            )
        note += f", each sorted by {names[time_col]!r} (then dropped)."
    X = values[order].reshape(n_cases, length, len(channels)).astype(np.float32)  # (N, T, C)
    return X, tuple(str(c) for c in case_ids), channels, note


# --- numpy files -----------------------------------------------------------------------


def _load_npy(data: bytes, where: str) -> np.ndarray:
    """Parse .npy bytes without np.load: numeric dtypes only, never a pickle."""
    stream = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
    except _NPY_ERRORS as err:
        raise DataError(f"{where} is not a valid .npy file ({err})") from None
    if dtype.hasobject or dtype.fields is not None or dtype.kind not in "iuf":
        raise DataError(
            f"{where}: array of dtype {dtype}; only int or float arrays are accepted "
            "(object arrays and pickles are refused)"
        )
    count = math.prod(shape)
    available = len(data) - stream.tell()
    if count * dtype.itemsize != available:
        raise DataError(
            f"{where}: the header promises {count * dtype.itemsize:,} bytes of data for shape "
            f"{shape}, but the file holds {available:,}"
        )
    flat = np.frombuffer(data, dtype=dtype, count=count, offset=stream.tell())
    return flat.reshape(shape, order="F" if fortran_order else "C")


def _load_npz(data: bytes, filename: str, max_bytes: int) -> tuple[np.ndarray, str]:
    """The single array of an .npz, or its key 'X'; returns (array, description)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            keys = {n[: -len(".npy")]: n for n in archive.namelist() if n.endswith(".npy")}
            if len(keys) == 1:
                key = next(iter(keys))
            elif "X" in keys:
                key = "X"
            else:
                raise DataError(
                    f"{filename} holds the arrays {sorted(keys)}; expected exactly one array, "
                    "or one under the key 'X'"
                )
            info = archive.getinfo(keys[key])
            if info.file_size > max_bytes:
                raise DataError(
                    f"{filename}: array {key!r} is {info.file_size:,} bytes unpacked; "
                    f"the limit is {max_bytes:,}"
                )
            with archive.open(info) as member:
                raw = member.read(max_bytes + 1)
    except DataError:
        raise
    except _ZIP_ERRORS as err:
        raise DataError(f"{filename} is not a readable .npz (zip) file ({err})") from None
    where = f"{filename}, key {key!r}"
    if len(raw) > max_bytes:
        raise DataError(f"{where}: more than {max_bytes:,} bytes unpacked")
    return _load_npy(raw, where), where


def _from_array(
    array: np.ndarray, where: str, channels: tuple[str, ...] | None, stem: str
) -> tuple[np.ndarray, tuple[str, ...], tuple[str, ...], str]:
    """(X (N, T, C), case ids, channels, mapping note) of an array; channels None: its own."""
    if array.ndim not in (2, 3):
        wanted = "" if channels is None else f", with C = {len(channels)}"
        raise DataError(
            f"{where}: array of shape {array.shape}; expected (T, C) for one series or "
            f"(N, T, C) for several{wanted}"
        )
    if channels is None:
        channels = tuple(f"channel {c + 1}" for c in range(array.shape[-1]))
    if array.shape[-1] != len(channels):
        hint = " (is it transposed? the last axis must be the channels)"
        raise DataError(
            f"{where}: array of shape {array.shape} has {array.shape[-1]} channels on its last "
            f"axis; expected {len(channels)}: {', '.join(channels)}"
            + (hint if array.shape[-2] == len(channels) else "")
        )
    case_ids = (stem,) if array.ndim == 2 else tuple(str(i) for i in range(array.shape[0]))
    values = array[None] if array.ndim == 2 else array  # (N, T, C)
    with np.errstate(over="ignore", invalid="ignore"):
        bad = ~np.isfinite(values) | (np.abs(values.astype(np.float64)) > F32_MAX)
    if bad.any():
        n, t, c = np.argwhere(bad)[0]
        raise DataError(
            f"{where}: case {case_ids[n]}, step {t + 1}, channel {channels[c]}: value "
            f"{values[n, t, c]} is not a finite number within float32 range"
        )
    note = (
        f"{where}: array of shape {array.shape}; its last axis is taken in channel order: "
        f"{', '.join(channels)}."
    )
    return values.astype(np.float32), case_ids, channels, note
