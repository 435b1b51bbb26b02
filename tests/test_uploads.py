"""app.uploads: the upload limits, stated where people meet them.

(The uploads are tested through the page in tests/test_app.py too.)"""

from __future__ import annotations

import numpy as np
import pytest

from app import uploads
from larnn.errors import DataError


def test_every_series_limit_is_stated_and_enforced():
    help_text = uploads.SERIES_UPLOAD_HELP
    assert "20 MB per file" in help_text and "100,000 time steps" in help_text
    assert "10,000 series per file" in help_text
    too_long = uploads.example_csv(np.zeros((uploads.SERIES_MAX_STEPS + 1, 1), np.float32), ["a"])
    with pytest.raises(DataError, match="100,001 time steps; the limit is 100,000"):
        uploads.read_series(too_long, "long.csv", ("a",))
    with pytest.raises(DataError, match="the limit is 20,000,000"):
        uploads.read_series(b"a\n" + b"1\n" * 10_000_001, "big.csv", ("a",))
