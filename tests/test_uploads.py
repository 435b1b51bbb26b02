"""app.uploads: the upload limits, stated where people meet them; uploaded checkpoint files;
the example file. (The uploads are tested through the page in tests/test_app.py too.)"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from test_app import make_checkpoints

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


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> Path:
    return make_checkpoints(tmp_path_factory.mktemp("checkpoints"))


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
