"""larnn.data.csv_cells: the CSV cell layer under both readers, its messages naming the cell."""

from __future__ import annotations

import numpy as np
import pytest

from larnn.data.csv_cells import Rows, check_unique, is_float, is_number
from larnn.errors import DataError


def cells(*texts: str) -> np.ndarray:
    """A column as the readers hand it over: text cells in an object array."""
    return np.array(texts, dtype=object)


def test_numbers_name_the_row_and_column_of_the_first_bad_cell():
    rows = Rows("f.csv", header=True)
    assert rows.numbers(cells("1", " 2.5", "-3e2"), "a").tolist() == [1.0, 2.5, -300.0]
    with pytest.raises(DataError, match=r"f.csv: row 2 below the header, column 'a' is empty"):
        rows.numbers(cells("1", " ", "x"), "a")
    with pytest.raises(DataError, match=r"row 3, column 'b' is not a number: 'x'"):
        Rows("f.csv", header=False).numbers(cells("1", "2", "x"), "b")
    with pytest.raises(DataError, match=r"row 1 below the header, column 'a': 'nan' is not a fin"):
        rows.numbers(cells("nan", "1"), "a")
    with pytest.raises(DataError, match="within float32 range"):
        rows.numbers(cells("1", "1e39"), "a")


def test_times_are_numbers_or_iso_dates_in_seconds_after_the_first():
    rows = Rows("f.csv", header=True)
    assert rows.times(cells("0", "0.5"), "time").tolist() == [0.0, 0.5]
    stamps = cells("2024-01-01T00:00:00", "2024-01-01T00:00:02")
    assert rows.times(stamps, "time").tolist() == [0.0, 2.0]
    with pytest.raises(DataError, match="row 2 below the header, column 'time': 'noon' is neither"):
        rows.times(cells("0", "noon"), "time")


def test_cells_and_header_names():
    assert is_float("nan") and is_float(" 1e5 ") and not is_float("") and not is_float("a")
    assert is_number("3") and not is_number("nan") and not is_number("inf")
    check_unique(["a", "b"], "f.csv")
    with pytest.raises(DataError, match="f.csv: columns 1 and 3 have the same name 'A'"):
        check_unique(["a", "b", "A"], "f.csv")
