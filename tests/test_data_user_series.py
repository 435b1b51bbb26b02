"""Reading user-supplied series: each format, each error message, and fuzzing."""

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from larnn.data import UserSeries, read_user_series
from larnn.errors import ConfigError, DataError

CH = ("acc_x", "acc_y", "acc_z")


def read(text: str | bytes, filename: str = "walk.csv", **kwargs) -> UserSeries:
    data = text.encode() if isinstance(text, str) else text
    return read_user_series(data, filename, CH, **kwargs)


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def npz_bytes(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


# --- CSV -------------------------------------------------------------------------------


def test_wide_csv_by_name_drops_time_and_ignores_extras():
    series = read("time,label,acc_z,ACC_X,acc_y\n0,a,3,1,2\n0.5,b,6,4,5\n1,c,9,7,8\n")
    assert series.X.dtype == np.float32 and series.X.shape == (1, 3, 3)
    np.testing.assert_array_equal(series.X[0], [[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    assert series.case_ids == ("walk",) and series.channel_names == CH
    assert "by name" in series.mapping_note and "'label'" in series.mapping_note
    assert "'time'" in series.mapping_note


def test_wide_csv_by_position_says_so():
    series = read("t,x,y,z\n0,1,2,3\n1,4,5,6\n")
    np.testing.assert_array_equal(series.X[0], [[1, 2, 3], [4, 5, 6]])
    assert "'x' -> acc_x, 'y' -> acc_y, 'z' -> acc_z" in series.mapping_note


def test_headerless_csv_and_tsv():
    series = read("1,2,3\n4,5,6\n")
    np.testing.assert_array_equal(series.X[0], [[1, 2, 3], [4, 5, 6]])
    assert "no header" in series.mapping_note
    assert read("1\t2\t3\n4\t5\t6\n", "walk.tsv").X.shape == (1, 2, 3)


def test_iso_timestamps_and_utf8_bom():
    text = (
        "\ufefftimestamp,acc_x,acc_y,acc_z\n"
        "2024-05-01T10:00:00Z,1,2,3\n2024-05-01T10:00:01+00:00,4,5,6\n"
    )
    assert read(text).X.shape == (1, 2, 3)


def test_long_csv_groups_and_sorts_cases():
    text = "case_id,time,acc_x,acc_y,acc_z\nb,1,10,11,12\nb,0,7,8,9\na,0,1,2,3\na,1,4,5,6\n"
    series = read(text)
    assert series.case_ids == ("b", "a")
    np.testing.assert_array_equal(series.X[0], [[7, 8, 9], [10, 11, 12]])
    np.testing.assert_array_equal(series.X[1], [[1, 2, 3], [4, 5, 6]])
    assert "2 cases" in series.mapping_note and "sorted by 'time'" in series.mapping_note


@pytest.mark.parametrize(
    "text, message",
    [
        ("acc_x,acc_y,acc_z\n1,2,3\n4,oops,6\n", "row 2 below the header, column 'acc_y' is not a"),
        ("acc_x,acc_y,acc_z\n1,2,3\n4,,6\n", "row 2 below the header, column 'acc_y' is empty"),
        ("acc_x,acc_y,acc_z\n1,2,3\n4,5\n", "row 2 below the header, column 'acc_z' is empty"),
        ("acc_x,acc_y,acc_z\n1,nan,3\n4,5,6\n", "row 1 below the header, column 'acc_y': 'nan'"),
        ("1,2,3\n4,5,-inf\n", "row 2, column 'column 3': '-inf' is not a finite"),
        ("1,2,3\n4,5,1e39\n", "within float32 range"),
        ("acc_x,acc_y\n1,2\n3,4\n", "found 2: 'acc_x', 'acc_y'"),
        ("a,b,c,d\n1,2,3,4\n5,6,7,8\n", "exactly 3 data columns; found 4"),
        ("acc_x,acc_y,acc_z\n1,2,3\n", "at least 2 time steps, found 1"),
        ("acc_x,acc_y,acc_z\n", "header but no data rows"),
        ("\n\n", "holds no rows"),
        ("acc_x,acc_x,acc_y,acc_z\n1,1,2,3\n1,2,3,4\n", "columns 1 and 2 have the same name"),
        ("1,2,3\n4,5,6,7\n", "not a valid CSV table"),
        ("time,acc_x,acc_y,acc_z\n0,1,2,3\n2,1,2,3\n1,1,2,3\n", "'time' must increase, but row 3"),
        ("time,acc_x,acc_y,acc_z\n0,1,2,3\nlater,1,2,3\n", "'later' is neither a number nor"),
        ("case_id,acc_x,acc_y,acc_z\na,1,2,3\na,1,2,3\nb,1,2,3\n", "case 'b' has 1 rows but case"),
        (
            "case_id,acc_x,acc_y,acc_z\na,1,2,3\n,1,2,3\n",
            "row 2 below the header, column 'case_id'",
        ),
        (
            "case_id,t,acc_x,acc_y,acc_z\na,0,1,2,3\na,0,1,2,3\n",
            "case 'a' has two rows at the same",
        ),
    ],
)
def test_csv_errors_name_the_problem(text, message):
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace("+", r"\+")):
        read(text)


def test_encoding_and_binary_errors():
    with pytest.raises(DataError, match="not UTF-8 text"):
        read("acc_x,acc_y,acc_z\n1,2,3\n4,5,6\n".encode("utf-16"))
    with pytest.raises(DataError, match="NUL characters"):
        read(b"1,2,3\n\x00,5,6\n")
    with pytest.raises(DataError, match="is empty"):
        read(b"")
    with pytest.raises(DataError, match="unsupported file type '.xlsx'"):
        read(b"1,2,3", "walk.xlsx")


def test_limits():
    rows = "".join(f"{i},{i},{i}\n" for i in range(20))
    with pytest.raises(DataError, match="20 time steps; the limit is 10"):
        read(rows, max_length=10)
    with pytest.raises(DataError, match="the limit is 10"):
        read(rows, max_bytes=10)
    text = "case_id,acc_x,acc_y,acc_z\n" + "".join(f"c{i},1,2,3\nc{i},4,5,6\n" for i in range(5))
    with pytest.raises(DataError, match="5 cases; the limit is 4"):
        read(text, max_cases=4)


def test_path_source(tmp_path):
    path = tmp_path / "run.csv"
    path.write_text("acc_x,acc_y,acc_z\n1,2,3\n4,5,6\n")
    assert read_user_series(path, "run.csv", CH).X.shape == (1, 2, 3)
    with pytest.raises(DataError, match="limit is 5"):
        read_user_series(path, "run.csv", CH, max_bytes=5)
    with pytest.raises(DataError, match="cannot read"):
        read_user_series(tmp_path / "missing.csv", "missing.csv", CH)


def test_bad_expected_channels():
    with pytest.raises(ConfigError, match="distinct"):
        read_user_series(b"1,2\n3,4\n", "x.csv", ("a", "A"))


# --- npy / npz -------------------------------------------------------------------------


def test_npy_forms():
    one = np.arange(12, dtype=np.float64).reshape(4, 3)
    series = read(npy_bytes(one), "s.npy")
    np.testing.assert_array_equal(series.X[0], one)
    assert series.case_ids == ("s",) and "(4, 3)" in series.mapping_note
    many = np.arange(24, dtype=np.int16).reshape(2, 4, 3)
    assert read(npy_bytes(many), "m.npy").case_ids == ("0", "1")
    fortran = np.asfortranarray(many.astype(np.float32))
    np.testing.assert_array_equal(read(npy_bytes(fortran), "f.npy").X, many)


@pytest.mark.parametrize(
    "array, message",
    [
        (np.array([[1, None, 3]] * 3, dtype=object), "dtype object; only int or float"),
        (np.ones((4, 3), dtype=np.complex64), "dtype complex64"),
        (np.ones((3, 4)), r"has 4 channels on its last axis; expected 3: acc_x, acc_y, acc_z \(is"),
        (np.ones(6), r"array of shape \(6,\)"),
        (np.ones((1, 3)), "at least 2 time steps"),
        (np.ones((0, 5, 3)), "holds no series"),
        (np.ones((0, 3)), "at least 2 time steps, found 0"),
        (np.array([[1.0, 2, 3], [4, np.nan, 6]]), "case s, step 2, channel acc_y"),
        (np.full((2, 3), 1e300), "within float32 range"),
    ],
)
def test_npy_errors(array, message):
    with pytest.raises(DataError, match=message):
        read(npy_bytes(array), "s.npy")


def test_npy_truncated_and_not_npy():
    data = npy_bytes(np.ones((5, 3)))
    with pytest.raises(DataError, match="header promises 120 bytes"):
        read(data[:-8], "s.npy")
    with pytest.raises(DataError, match="not a valid .npy file"):
        read(b"acc_x,acc_y\n", "s.npy")


def test_npz_forms_and_errors():
    x = np.ones((2, 5, 3), dtype=np.float32)
    assert read(npz_bytes(series=x), "d.npz").X.shape == (2, 5, 3)
    series = read(npz_bytes(X=x, y=np.zeros(2)), "d.npz")
    assert "key 'X'" in series.mapping_note
    with pytest.raises(DataError, match=r"arrays \['a', 'b'\]; expected exactly one"):
        read(npz_bytes(a=x, b=x), "d.npz")
    with pytest.raises(DataError, match="dtype object"):
        read(npz_bytes(X=np.array([None, 1], dtype=object)), "d.npz")
    with pytest.raises(DataError, match="not a readable .npz"):
        read(b"PK\x03\x04 not a zip", "d.npz")
    with pytest.raises(DataError, match="unpacked; the limit"):
        read(npz_bytes(X=np.zeros((1000, 3))), "d.npz", max_bytes=2000)


# --- fuzzing: a valid UserSeries or a DataError, nothing else ---------------------------

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def accept_or_data_error(data: bytes, filename: str) -> None:
    try:
        series = read_user_series(data, filename, CH, max_bytes=50_000, max_length=500)
    except DataError:
        return
    n, t, c = series.X.shape
    assert series.X.dtype == np.float32 and c == len(CH) and n == len(series.case_ids) >= 1
    assert 2 <= t <= 500 and np.isfinite(series.X).all() and series.mapping_note


@FUZZ
@given(st.binary(max_size=3000), st.sampled_from(["a.csv", "a.tsv", "a.npy", "a.npz", "a"]))
def test_fuzz_arbitrary_bytes(data, filename):
    accept_or_data_error(data, filename)


@FUZZ
@given(st.text(max_size=2000))
def test_fuzz_arbitrary_text(text):
    accept_or_data_error(text.encode("utf-8", "surrogatepass"), "a.csv")


CELLS = st.one_of(
    st.sampled_from(
        ["acc_x", "ACC_Y", "acc_z", "time", "t", "case_id", "", "nan", "-inf", "1e39", "x", '"']
    ),
    st.sampled_from(["2024-01-01T00:00:00", "2024-01-01T00:00:01+02:00", " 3 ", "0x1"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-5, 5).map(str),
)


@FUZZ
@given(st.lists(st.lists(CELLS, min_size=0, max_size=6), min_size=0, max_size=12))
def test_fuzz_malformed_tables(rows):
    accept_or_data_error("\n".join(",".join(r) for r in rows).encode(), "a.csv")


@FUZZ
@given(st.data())
def test_fuzz_damaged_numpy_files(data):
    shape = data.draw(st.sampled_from([(4, 3), (2, 4, 3), (3, 4), (0, 3)]))
    dtype = data.draw(st.sampled_from(["<f4", ">f8", "<i2", "|u1", "<c8"]))
    array = np.ones(shape, dtype=dtype)
    filename = data.draw(st.sampled_from(["a.npy", "a.npz"]))
    if filename == "a.npy":
        raw = npy_bytes(array)
    else:
        buffer = io.BytesIO()
        np.savez(buffer, X=array)  # stored uncompressed, so edits can hit the .npy header
        raw = buffer.getvalue()
    edits = data.draw(st.lists(st.tuples(st.integers(0, len(raw) - 1), st.integers(0, 255))))
    damaged = bytearray(raw)
    for position, value in edits:
        damaged[position] = value
    cut = data.draw(st.integers(0, len(damaged)))
    accept_or_data_error(bytes(damaged[:cut]), filename)


@st.composite
def near_valid_tables(draw):
    """Well-formed CSVs (channels, maybe time, case_id, a note) with at most one bad cell."""
    columns = draw(st.permutations(["acc_x", "acc_y", "acc_z", "time", "case_id", "note"]))
    columns = columns[: draw(st.integers(3, 6))]
    number = st.floats(-1e6, 1e6, allow_nan=False).map(repr)
    cells = {"case_id": st.sampled_from(["a", "b"]), "note": st.sampled_from(["x", "", "7"])}
    rows = [
        [str(i) if c == "time" else draw(cells.get(c, number)) for c in columns]
        for i in range(draw(st.integers(0, 10)))
    ]
    if rows and draw(st.booleans()):
        i, j = draw(st.integers(0, len(rows) - 1)), draw(st.integers(0, len(columns) - 1))
        rows[i][j] = draw(CELLS)
    return "\n".join(",".join(r) for r in [columns, *rows])


@FUZZ
@given(near_valid_tables())
def test_fuzz_near_valid_tables(text):
    accept_or_data_error(text.encode(), "a.csv")
