"""app.knobs: the sweep's windows and sample."""

from __future__ import annotations

import numpy as np

from app import knobs


def test_knobs_windows_and_sample():
    assert knobs.make_knobs(4, [0, 1], 2, "elu").head_mask is None
    assert knobs.make_knobs(4, [1], 2, "relu").head_mask == (0.0, 1.0)
    assert knobs.sweep_windows(6, 4) == [1, 2, 3, 4, 5, 6]
    windows = knobs.sweep_windows(48, 16)
    assert windows[0] == 1 and windows[-1] == 48 and 16 in windows and len(windows) <= 13
    sample = knobs.sweep_sample(1000, 200)
    assert len(sample) == 200 and (np.diff(sample) > 0).all()
    assert (knobs.sweep_sample(1000, 200) == sample).all()
