"""app.uploads: the upload limits, stated where people meet them; uploaded checkpoint files;
the example file. (The uploads are tested through the page in tests/test_app.py too.)"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from app import uploads
from larnn.checkpoint import checkpoint_to_zip_bytes, load_checkpoint
from larnn.errors import CheckpointError, DataError


def test_every_series_limit_is_stated_and_enforced():
    help_text = uploads.SERIES_UPLOAD_HELP
    assert "20 MB per file" in help_text and "100,000 time steps" in help_text
    assert "10,000 series per file" in help_text
    too_long = uploads.example_csv(np.zeros((uploads.SERIES_MAX_STEPS + 1, 1), np.float32), ["a"])
    with pytest.raises(DataError, match="100,001 time steps; the limit is 100,000"):
        uploads.read_series(too_long, "long.csv", ("a",))
    with pytest.raises(DataError, match="the limit is 20,000,000"):
        uploads.read_series(b"a\n" + b"1\n" * 10_000_001, "big.csv", ("a",))


NINE = [f"c{i}" for i in range(9)]  # a 9-channel file: none of the 3-channel models reads it


def _nine_channel_csv(rows: list[str]) -> bytes:
    return ("time," + ",".join(NINE) + "\n" + "\n".join(rows)).encode()


def _row(t: int, cells: list[str] | None = None) -> str:
    return f"{t}," + ",".join(cells or ["0.1"] * 9)


@pytest.mark.parametrize(
    "name, rows, said",
    [
        (
            "question.csv",
            [_row(t) for t in range(5)] + [_row(5, ["0.1"] * 4 + ["?"] + ["0.1"] * 4)],
            "row 6 below the header, column 'c4' is not a number: '?'",
        ),
        (
            "cut.csv",
            [_row(t) for t in range(5)] + ["5,0.1,0.1"],
            "row 6 below the header, column 'c2' is empty (the last row is short",
        ),
        (
            "long.csv",
            [_row(t) for t in range(uploads.SERIES_MAX_STEPS + 1)],
            "100,001 time steps; the limit is 100,000",
        ),
    ],
)
def test_a_series_file_is_checked_on_its_own_before_any_model(checkpoints, name, rows, said):
    """Issue 29: a `?` cell, a cut-off row or 100,001 steps were told "expected the 3
    channels ..." under the default models, naming the wrong problem."""
    from app.catalog import describe_shipped

    shipped = describe_shipped({p.name: p for p in sorted(checkpoints.iterdir())})
    contents = _nine_channel_csv(rows)
    with pytest.raises(DataError) as raised:
        uploads.models_reading(shipped, contents, name)
    assert said in str(raised.value) and "expected the" not in str(raised.value)
    with pytest.raises(DataError, match="is not a number|is empty|the limit is"):
        uploads.read_series(contents, name, None)


def test_a_file_read_on_its_own_names_its_own_channels():
    own = uploads.read_series(_nine_channel_csv([_row(t) for t in range(4)]), "own.csv", None)
    assert own.channel_names == tuple(NINE) and own.X.shape == (1, 4, 9)
    array = np.zeros((2, 5, 3), np.float32)
    buffer = io.BytesIO()
    np.save(buffer, array)
    read = uploads.read_series(buffer.getvalue(), "a.npy", None)
    assert read.channel_names == ("channel 1", "channel 2", "channel 3")


def test_a_labelled_ts_file_is_pointed_to_the_training_page():
    assert "ts" in uploads.SERIES_UPLOAD_TYPES
    with pytest.raises(DataError, match=r"labelled \.ts set.*Train on my data"):
        uploads.read_series(b"@problemName x\n", "BasicMotions_TRAIN.ts", None)


def test_checkpoint_payload_from_uploads(checkpoints):
    folder = checkpoints / "probe_cue_shape_lstm"
    files = [(p.name, p.read_bytes()) for p in sorted(folder.iterdir())]
    payload = uploads.checkpoint_payload(files)
    assert load_checkpoint(payload).architecture == "lstm"
    renamed = [("weights.safetensors" if n.endswith(".safetensors") else n, b) for n, b in files]
    assert set(uploads.checkpoint_payload(renamed)) == set(payload)
    with pytest.raises(CheckpointError, match="missing metadata.json"):
        uploads.checkpoint_payload([f for f in files if f[0] != "metadata.json"])
    with pytest.raises(CheckpointError, match="not both"):
        uploads.checkpoint_payload([("a.zip", b"PK"), files[0]])
    with pytest.raises(CheckpointError, match="notes.txt: not a checkpoint file"):
        uploads.checkpoint_payload([*files, ("notes.txt", b"")])
    assert uploads.upload_digest(files) == uploads.upload_digest(list(reversed(files)))


def test_example_csv_reads_back():
    from larnn.data import read_user_series

    X = uploads.example_series({"mean": [0.0, 1.0], "std": [1.0, 2.0]}, length=10)
    series = read_user_series(uploads.example_csv(X, ["a", "b"]), "example.csv", ["a", "b"])
    np.testing.assert_allclose(series.X[0], X, rtol=1e-5)


def test_zip_upload_helper_round_trip(checkpoints):
    data = checkpoint_to_zip_bytes(checkpoints / "probe_cue_shape_larnn")
    assert zipfile.is_zipfile(io.BytesIO(data))
    assert uploads.checkpoint_payload([("x.zip", data)]) == data


def test_models_whose_channels_the_file_names_come_before_those_read_by_position():
    """Issue 29: a sine wave was routed to an unrelated model that only had one channel too."""
    from app.catalog import ShippedModel

    other = ShippedModel("ecg_larnn", Path("a"), "larnn", "file:ecg.ts", ("dim_0",))
    mine = ShippedModel("sine_larnn", Path("b"), "larnn", "file:sine.csv", ("sine",))
    csv = b"time,sine\n" + b"".join(f"{t},{np.sin(t / 3):.4f}\n".encode() for t in range(20))
    assert [m.name for m in uploads.models_reading([other, mine], csv, "s.csv")] == [
        "sine_larnn",
        "ecg_larnn",
    ]
    assert uploads.names_every_channel(("time", "SINE"), ("sine",))
    assert not uploads.names_every_channel(("sine",), ("dim_0",))
