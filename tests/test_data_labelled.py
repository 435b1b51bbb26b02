"""Labelled files (larnn.data.labelled): .ts via aeon, long CSV, npz; and every bad input."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from larnn.data.labelled import FileLimits, labelled_datasets, read_labelled
from larnn.errors import DataError

HAS_AEON = importlib.util.find_spec("aeon") is not None
needs_aeon = pytest.mark.skipif(
    not HAS_AEON, reason='aeon is not installed (pip install -e ".[aeon]"): .ts files need it'
)


def aeon_data(name: str) -> Path:
    import aeon

    return Path(aeon.__file__).parent / "datasets" / "data" / name


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


GOOD_CSV = """case_id,time,label,group,ax,ay
a,2,walk,s1,3,30
a,1,walk,s1,1,10
a,3,walk,s1,5,50
b,1,run,s2,2,20
b,2,run,s2,4,40
c,1,10,s1,7,70
c,2,10,s1,8,80
c,3,10,s1,9,90
c,4,10,s1,6,60
d,1,2,s3,0,0
d,2,2,s3,1,1
"""


# --- long CSV --------------------------------------------------------------------------


def test_long_csv_sorts_by_time_pads_and_keeps_lengths_labels_groups(tmp_path):
    file = read_labelled(write(tmp_path / "train.csv", GOOD_CSV))
    assert file.format == "csv"
    assert file.channel_names == ("ax", "ay")
    assert file.lengths.tolist() == [3, 2, 4, 2]
    assert file.labels.tolist() == ["walk", "run", "10", "2"]
    assert file.groups.tolist() == ["s1", "s2", "s1", "s3"]
    assert file.X.shape == (4, 4, 2)
    np.testing.assert_array_equal(file.X[0, :, 0], [1, 3, 5, 0])  # sorted by time, then padding
    np.testing.assert_array_equal(file.X[1, :, 1], [20, 40, 0, 0])
    assert len(file.sha256) == 64 and file.size == len(GOOD_CSV)


def test_long_csv_without_time_takes_rows_in_file_order(tmp_path):
    text = "case_id,label,x\nq,a,3\nq,a,1\nr,b,2\nr,b,5\n"
    file = read_labelled(write(tmp_path / "d.csv", text))
    np.testing.assert_array_equal(file.X[0, :, 0], [3, 1])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("case_id,time,x\na,1,2\na,2,3\n", r"no 'label' column; a labelled long CSV has"),
        ("time,label,x\n1,a,2\n2,a,3\n", r"no 'case_id' column"),
        ("case_id,label\na,x\na,x\n", r"no channel columns"),
        (
            "case_id,time,label,x\na,1,k,2\na,2,k,oops\n",
            r"row 2 below the header, column 'x' is "
            r"not a number: 'oops'",
        ),
        ("case_id,time,label,x\na,1,k,2\na,2,k,\n", r"row 2 below the header, column 'x' is empty"),
        (
            "case_id,time,label,x\na,1,k,2\na,2,k,NaN\n",
            r"row 2 below the header, column 'x': 'NaN'"
            r" is not a finite number",
        ),
        (
            "case_id,time,label,x\na,1,k,2\na,2,j,3\n",
            r"case 'a' has label 'k' at row 1 below the "
            r"header but 'j' at row 2",
        ),
        (
            "case_id,time,label,x\na,1,k,2\na,1,k,3\n",
            r"row 2 below the header: case 'a' already "
            r"has a row at time = '1'",
        ),
        (
            "case_id,time,label,x\na,1,k,2\na,2,k,3\nb,1,j,4\n",
            r"case_id 'b' has a single time "
            r"step; a series needs at least 2",
        ),
        ("case_id,time,label,x\na,1,,2\n", r"row 1 below the header, column 'label' is empty"),
        ("case_id,time,label,x\n", r"has a header but no data rows"),
    ],
)
def test_bad_csv_is_refused_naming_row_and_column(tmp_path, text, message):
    with pytest.raises(DataError, match=message):
        read_labelled(write(tmp_path / "bad.csv", text))


def test_a_file_that_is_not_what_its_name_says(tmp_path):
    np.savez(tmp_path / "real.npz", X=np.zeros((2, 3, 1)), y=np.array([0, 1]))
    (tmp_path / "fake.csv").write_bytes((tmp_path / "real.npz").read_bytes())
    with pytest.raises(DataError, match="fake.csv is not UTF-8 text.*not a CSV"):
        read_labelled(tmp_path / "fake.csv")
    write(tmp_path / "fake.npz", GOOD_CSV)
    with pytest.raises(DataError, match="fake.npz is not an .npz file"):
        read_labelled(tmp_path / "fake.npz")
    write(tmp_path / "fake.ts", GOOD_CSV)
    with pytest.raises(DataError, match="fake.ts is not a .ts file: it has no '@data' line"):
        read_labelled(tmp_path / "fake.ts")
    write(tmp_path / "data.txt", GOOD_CSV)
    with pytest.raises(DataError, match="unsupported file type '.txt'"):
        read_labelled(tmp_path / "data.txt")
    write(tmp_path / "empty.csv", "")
    with pytest.raises(DataError, match="empty.csv is empty"):
        read_labelled(tmp_path / "empty.csv")


def test_caps_on_bytes_cases_and_steps(tmp_path):
    path = write(tmp_path / "train.csv", GOOD_CSV)
    with pytest.raises(DataError, match=r"is 2\d\d bytes; the limit is 100 \(FileLimits.max_bytes"):
        read_labelled(path, FileLimits(max_bytes=100))
    with pytest.raises(DataError, match=r"holds 4 cases; the limit is 3 \(FileLimits.max_cases"):
        read_labelled(path, FileLimits(max_cases=3))
    with pytest.raises(DataError, match=r"case_id 'c' has 4 time steps; the limit is 3"):
        read_labelled(path, FileLimits(max_length=3))


# --- train and test together -----------------------------------------------------------


def test_classes_come_from_the_train_file_in_natural_order(tmp_path):
    train, test = labelled_datasets(
        read_labelled(write(tmp_path / "train.csv", GOOD_CSV)), None, "x"
    )
    assert test is None
    assert train.class_names == ("10", "2", "run", "walk")  # not all integers: as text
    text = GOOD_CSV.replace("walk", "1").replace("run", "30")
    train, _ = labelled_datasets(read_labelled(write(tmp_path / "n.csv", text)), None, "x")
    assert train.class_names == ("1", "2", "10", "30")  # all integers: numerically
    assert train.lengths.tolist() == [3, 2, 4, 2] and train.is_ragged


def test_single_class_is_refused(tmp_path):
    text = "case_id,label,x\na,k,1\na,k,2\nb,k,3\nb,k,4\n"
    with pytest.raises(
        DataError, match="every case has the class 'k'; a classifier needs at least"
    ):
        labelled_datasets(read_labelled(write(tmp_path / "one.csv", text)), None, "x")


def test_class_only_in_the_test_file_is_refused(tmp_path):
    train = read_labelled(write(tmp_path / "train.csv", GOOD_CSV))
    test_text = "case_id,label,ax,ay\nz,walk,1,2\nz,walk,3,4\ny,swim,1,2\ny,swim,5,6\n"
    test = read_labelled(write(tmp_path / "test.csv", test_text))
    with pytest.raises(
        DataError,
        match=r"test.csv: class\(es\) 'swim' appear only in the test "
        r"file \(first at case_id 'y'\)",
    ):
        labelled_datasets(train, test, "x")


def test_test_channels_are_matched_by_name_and_must_agree(tmp_path):
    train = read_labelled(write(tmp_path / "train.csv", GOOD_CSV))
    swapped = read_labelled(
        write(tmp_path / "swapped.csv", "case_id,label,ay,ax\nz,walk,20,2\nz,walk,40,4\n")
    )
    _, test = labelled_datasets(train, swapped, "x")
    assert test.channel_names == ("ax", "ay")
    np.testing.assert_array_equal(test.X[0, :, 0], [2, 4])
    other = read_labelled(
        write(tmp_path / "other.csv", "case_id,label,ax,az\nz,walk,20,2\nz,walk,40,4\n")
    )
    with pytest.raises(
        DataError,
        match=r"other.csv has 2 channel\(s\) \(ax, az\) but train.csv "
        r"has 2 \(ax, ay\); missing from the test file: 'ay'",
    ):
        labelled_datasets(train, other, "x")


# --- npz -------------------------------------------------------------------------------


def test_npz_with_string_labels_lengths_and_groups(tmp_path):
    X = np.arange(4 * 5 * 2, dtype=np.float64).reshape(4, 5, 2)
    X[1, 3:] = np.nan  # beyond its length: padding, never read
    np.savez(
        tmp_path / "d.npz",
        X=X,
        y=np.array(["up", "down", "up", "down"]),
        lengths=np.array([5, 3, 4, 2]),
        groups=np.array([1, 1, 2, 2]),
    )
    file = read_labelled(tmp_path / "d.npz")
    assert file.lengths.tolist() == [5, 3, 4, 2]
    assert file.groups.tolist() == ["1", "1", "2", "2"]
    assert file.X.shape == (4, 5, 2) and file.X.dtype == np.float32
    assert np.all(file.X[1, 3:] == 0) and file.X[0, 4, 1] == X[0, 4, 1]
    train, _ = labelled_datasets(file, None, "x")
    assert train.class_names == ("down", "up") and train.y.tolist() == [1, 0, 1, 0]


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"X": np.zeros((2, 3, 1))}, r"no key 'y'; an npz holds X \(N, T, C\), y \(N,\)"),
        ({"y": np.array([0, 1])}, r"no key 'X'"),
        ({"X": np.zeros((2, 3)), "y": np.array([0, 1])}, r"one channel\? use X\[\.\.\., None\]"),
        ({"X": np.zeros((2, 3, 1)), "y": np.array([0, 1, 1])}, r"key 'y' must be 2 integers"),
        ({"X": np.zeros((2, 3, 1)), "y": np.array([0.5, 1])}, r"key 'y' must be 2 integers or"),
        (
            {"X": np.zeros((2, 3, 1)), "y": np.array([0, 1]), "lengths": np.array([3, 4])},
            r"lengths\[1\] = 4 lies outside 0..3",
        ),
        (
            {"X": np.zeros((2, 3, 1)), "y": np.array([0, 1]), "lengths": np.array([3, 0])},
            r"case 1 \(index in X\) is empty",
        ),
        (
            {"X": np.zeros((2, 3, 1)), "y": np.array([0, 1]), "lengths": np.array([3, 1])},
            r"case 1 \(index in X\) has a single time step",
        ),
        (
            {"X": np.array([[[0.0], [1.0]], [[2.0], [np.nan]]]), "y": np.array([0, 1])},
            r"case 1 \(index in X\), channel dim_0, step 2 is missing",
        ),
        (
            {"X": np.array([[[0.0], [1e300]], [[2.0], [3.0]]]), "y": np.array([0, 1])},
            r"case 0 \(index in X\), channel dim_0, step 2 is 1e\+300, not a finite float32",
        ),
    ],
)
def test_bad_npz_is_refused_naming_the_key_or_case(tmp_path, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError, match=message):
        read_labelled(tmp_path / "bad.npz")


def test_npz_with_pickled_objects_is_refused(tmp_path):
    labels = np.array(["a", {"b": 1}], dtype=object)
    np.savez(tmp_path / "obj.npz", X=np.zeros((2, 3, 1)), y=labels)
    with pytest.raises(DataError, match="holds Python objects.*never unpickles"):
        read_labelled(tmp_path / "obj.npz")


def test_npz_zip_bomb_is_refused_before_unpacking(tmp_path):
    np.savez_compressed(tmp_path / "big.npz", X=np.zeros((200, 100, 10)), y=np.zeros(200, int))
    assert (tmp_path / "big.npz").stat().st_size < 20_000
    with pytest.raises(DataError, match=r"unpacks to 1,60\d,\d+ bytes; the limit is 100,000"):
        read_labelled(tmp_path / "big.npz", FileLimits(max_bytes=100_000))


# --- .ts (aeon) ------------------------------------------------------------------------

TS_HEADER = """# a comment
@problemName Tiny
@timeStamps false
@missing true
@univariate false
@dimensions 2
@equalLength false
@classLabel true low high
@data
"""


@needs_aeon
def test_ts_unequal_lengths_and_string_labels(tmp_path):
    text = TS_HEADER + "1,2,3:4,5,6:high\n7,8:9,10:low\n1,2,3,4:5,6,7,8:low\n"
    file = read_labelled(write(tmp_path / "Tiny_TRAIN.ts", text))
    assert file.format == "ts" and file.channel_names == ("dim_0", "dim_1")
    assert file.lengths.tolist() == [3, 2, 4]
    assert file.labels.tolist() == ["high", "low", "low"]
    assert file.class_order == ("low", "high")
    np.testing.assert_array_equal(file.X[0, :, 1], [4, 5, 6, 0])
    train, _ = labelled_datasets(file, None, "x")
    assert train.class_names == ("low", "high")  # the header's order


@needs_aeon
@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "1,2,3:4,5,6:high\n7,?:9,10:low\n",
            r"line 11 \(case 2\), channel dim_0, step 2 is "
            r"missing \(NaN, or '\?' in a \.ts file\)",
        ),
        (
            "1,2,3:4,5,6:high\n7,x:9,10:low\n",
            r"line 11 \(case 2\), channel dim_0, step 2: 'x' is "
            r"not a number; aeon cannot read it",
        ),
        (
            "1,2,3:4,5,6:high\n7,8:low\n",
            r"line 11 \(case 2\) has 1 channel\(s\) but the first "
            r"case has 2",
        ),
        (
            "1,2,3:4,5,6:high\n7,8:9,10:medium\n",
            r"line 11 \(case 2\) has the label 'medium', "
            r"which the header's @classLabel does not list",
        ),
        ("1,2,3:4,5,6:high\n7:9:low\n", r"line 11 \(case 2\) has a single time step"),
        ("1,2,3:4,5,6:high\n:9,10:low\n", r"line 11 \(case 2\), channel dim_0 is empty"),
        ("", r"holds no cases"),
    ],
)
def test_bad_ts_is_refused_naming_line_channel_and_step(tmp_path, body, message):
    with pytest.raises(DataError, match=message):
        read_labelled(write(tmp_path / "Bad_TRAIN.ts", TS_HEADER + body))


@needs_aeon
def test_ts_channels_must_agree_between_train_and_test(tmp_path):
    train = read_labelled(write(tmp_path / "T_TRAIN.ts", TS_HEADER + "1,2:3,4:low\n5,6:7,8:high\n"))
    one = TS_HEADER.replace("@dimensions 2", "@dimensions 1").replace("false\n@dim", "true\n@dim")
    test = read_labelled(write(tmp_path / "T_TEST.ts", one + "1,2:low\n5,6:high\n"))
    with pytest.raises(
        DataError,
        match=r"T_TEST.ts has 1 channel\(s\) \(dim_0\) but T_TRAIN.ts "
        r"has 2 \(dim_0, dim_1\)",
    ):
        labelled_datasets(train, test, "x")


def test_without_aeon_the_message_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "aeon.datasets", None)  # import fails as if absent
    path = write(tmp_path / "Tiny_TRAIN.ts", TS_HEADER + "1,2:3,4:low\n")
    with pytest.raises(DataError, match=r'needs aeon.*pip install -e "\.\[aeon\]"'):
        read_labelled(path)


@needs_aeon
def test_aeon_shipped_basic_motions_and_japanese_vowels():
    folder = aeon_data("BasicMotions")
    train, test = labelled_datasets(
        read_labelled(folder / "BasicMotions_TRAIN.ts"),
        read_labelled(folder / "BasicMotions_TEST.ts"),
        "bm",
    )
    assert train.X.shape == (40, 100, 6) and test.X.shape == (40, 100, 6)
    assert train.class_names == ("standing", "running", "walking", "badminton")
    assert not train.is_ragged and np.bincount(train.y).tolist() == [10, 10, 10, 10]

    folder = aeon_data("JapaneseVowels")
    train, test = labelled_datasets(
        read_labelled(folder / "JapaneseVowels_TRAIN.ts"),
        read_labelled(folder / "JapaneseVowels_TEST.ts"),
        "jv",
    )
    assert (len(train), len(test), train.X.shape[2]) == (270, 370, 12)
    assert train.class_names == tuple(str(k) for k in range(1, 10))
    assert (train.lengths.min(), train.lengths.max()) == (7, 26)
    assert (test.lengths.min(), test.lengths.max()) == (7, 29)
    assert train.is_ragged and np.all(train.X[train.lengths == 7][:, 7:] == 0)
