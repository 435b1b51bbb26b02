"""The cells of a CSV file, read with messages for people: one layer under both CSV readers
(`larnn.data.user_series`, a series to run a model on, and `larnn.data.labelled`, a labelled
set to train on).

`Rows` turns a column of text cells into numbers or times and, when one cell is wrong, raises
DataError naming the file, the row and the column. Row numbers count data rows from 1, not
counting the header.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from larnn.errors import DataError

TIME_COLUMNS = ("time", "t", "timestamp")  # a column of these names (any case) holds the times
F32_MAX = float(np.finfo(np.float32).max)


class Rows:
    """Cell conversion with messages that name the row and column."""

    def __init__(self, filename: str, header: bool) -> None:
        self.filename = filename
        self.header = header

    def at(self, i: int) -> str:
        return f"row {i + 1}" + (" below the header" if self.header else "")

    def numbers(self, column: np.ndarray, name: str) -> np.ndarray:
        """float64 values of a column of str cells; DataError names the first bad cell."""
        try:
            values = column.astype(np.float64)
        except (ValueError, TypeError, OverflowError):
            i = next(i for i, c in enumerate(column) if not is_float(c))
            what = (
                "is empty" if not str(column[i]).strip() else f"is not a number: {column[i]!r:.40}"
            )
            if i == len(column) - 1 and not str(column[i]).strip():
                what += " (the last row is short: was the file cut off?)"
            raise DataError(f"{self.filename}: {self.at(i)}, column {name!r} {what}") from None
        bad = np.flatnonzero(~np.isfinite(values) | (np.abs(values) > F32_MAX))
        if len(bad):
            i = bad[0]
            raise DataError(
                f"{self.filename}: {self.at(i)}, column {name!r}: {column[i].strip()!r:.40} is not "
                "a finite number within float32 range (NaN and infinity are not allowed)"
            )
        return values

    def times(self, column: np.ndarray, name: str) -> np.ndarray:
        """float64 times: numbers, or ISO 8601 date-times as seconds after the first row."""
        if all(is_float(c) for c in column):
            return self.numbers(column, name)
        try:
            stamps = pd.to_datetime([str(c).strip() for c in column], format="ISO8601", utc=True)
        except (ValueError, TypeError, OverflowError):
            stamps = None
        if stamps is None or stamps.isna().any():
            i = next(i for i, c in enumerate(column) if not is_float(c))
            raise DataError(
                f"{self.filename}: {self.at(i)}, column {name!r}: {column[i].strip()!r:.40} is "
                "neither a number nor an ISO 8601 date-time (all times must use one form)"
            )
        return ((stamps - stamps[0]) / pd.Timedelta(seconds=1)).to_numpy(dtype=np.float64)


def is_float(cell: object) -> bool:
    """Whether a cell reads as a float (NaN and infinity included)."""
    try:
        float(str(cell))
    except (ValueError, OverflowError):
        return False
    return True


def is_number(cell: object) -> bool:
    """A finite number (a header cell like 'nan' or 'inf' is a name, not data)."""
    return is_float(cell) and math.isfinite(float(str(cell)))


def check_unique(names: list[str], filename: str) -> None:
    """DataError naming both columns when two header names are equal (case-insensitive)."""
    seen: dict[str, int] = {}
    for j, name in enumerate(names):
        key = name.casefold()
        if key in seen:
            raise DataError(
                f"{filename}: columns {seen[key] + 1} and {j + 1} have the same name {name!r}"
            )
        seen[key] = j
