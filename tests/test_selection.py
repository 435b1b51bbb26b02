"""app.selection: the upload limits, stated where people meet them.

(Most of app.selection is tested through the page in tests/test_app.py.)"""

from __future__ import annotations

import numpy as np
import pytest

from app import selection as sel
from larnn.errors import DataError


def test_every_series_limit_is_stated_and_enforced():
    help_text = sel.SERIES_UPLOAD_HELP
    assert "20 MB per file" in help_text and "100,000 time steps" in help_text
    assert "10,000 series per file" in help_text
    too_long = sel.example_csv(np.zeros((sel.SERIES_MAX_STEPS + 1, 1), np.float32), ["a"])
    with pytest.raises(DataError, match="100,001 time steps; the limit is 100,000"):
        sel.read_series(too_long, "long.csv", ("a",))
    with pytest.raises(DataError, match="the limit is 20,000,000"):
        sel.read_series(b"a\n" + b"1\n" * 10_000_001, "big.csv", ("a",))


def test_drawn_span_keeps_a_stretch_of_view_steps_inside_the_series():
    assert sel.drawn_span(100, None) == (0, 100)  # short: all of it, whatever was asked
    assert sel.drawn_span(100, 40) == (0, 100)
    T = sel.VIEW_STEPS + 1000
    assert sel.drawn_span(T, None) == (1000, T)  # the last stretch by default
    assert sel.drawn_span(T, 10) == (10, 10 + sel.VIEW_STEPS)
    assert sel.drawn_span(T, T) == (1000, T) and sel.drawn_span(T, -5) == (0, sel.VIEW_STEPS)
