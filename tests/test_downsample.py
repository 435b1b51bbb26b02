"""app.downsample against brute force: per-bucket minima and maxima, found one by one; the
stretch of a long series drawn."""

from __future__ import annotations

import numpy as np
import pytest

from app import downsample
from app.downsample import max_pool_rows, min_max


def brute_min_max(values: np.ndarray, max_points: int) -> list[list[tuple[int, float]]]:
    """Per trace, the (step, value) points of each bucket's first minimum and first maximum,
    in time order, buckets of ceil(T / (max_points // 2)) steps, the last one shorter."""
    T, C = values.shape
    size = -(-T // (max_points // 2))
    traces = []
    for c in range(C):
        points = []
        for first in range(0, T, size):
            bucket = [float(v) for v in values[first : first + size, c]]
            lo = first + bucket.index(min(bucket))
            hi = first + bucket.index(max(bucket))
            points += [(min(lo, hi), values[min(lo, hi), c]), (max(lo, hi), values[max(lo, hi), c])]
        traces.append(points)
    return traces


@pytest.mark.parametrize(
    ("T", "C", "max_points"),
    [(5000, 9, 2000), (100_000, 3, 2000), (1001, 2, 10), (7, 1, 2), (2001, 6, 2000)],
)
def test_min_max_keeps_each_buckets_extremes(T, C, max_points):
    rng = np.random.default_rng(T)
    values = rng.normal(size=(T, C)).astype(np.float32)
    values[T // 3, 0] = 50.0  # a one-step spike
    values[T // 2, -1] = -50.0
    steps, kept = min_max(values, max_points, start=100)
    assert steps.shape == kept.shape and steps.shape[1] == C and len(steps) <= max_points
    assert kept.dtype == values.dtype
    for c, points in enumerate(brute_min_max(values, max_points)):
        np.testing.assert_array_equal(steps[:, c], [100 + s for s, _ in points])
        np.testing.assert_array_equal(kept[:, c], [v for _, v in points])
        assert np.all(np.diff(steps[:, c]) >= 0)  # time order
    assert 50.0 in kept[:, 0] and -50.0 in kept[:, -1]


def test_min_max_is_exact_under_the_budget():
    values = np.random.default_rng(0).random((1500, 6))  # e.g. running probabilities
    steps, kept = min_max(values, 2000, start=7)
    np.testing.assert_array_equal(kept, values)
    np.testing.assert_array_equal(steps, np.tile(np.arange(7, 1507)[:, None], (1, 6)))
    kept[0, 0] = -1.0  # a copy: the caller's (maybe cached, read-only) array is untouched
    assert values[0, 0] >= 0


def test_min_max_of_one_trace_and_of_read_only_input():
    values = np.sin(np.arange(10_000) / 50.0)
    values.flags.writeable = False  # as the app's cached results are
    steps, kept = min_max(values, 100)
    assert steps.shape == kept.shape == (100,)
    assert kept.max() == values.max() and kept.min() == values.min()
    np.testing.assert_array_equal(kept, values[steps])


def test_min_max_refuses_bad_input():
    with pytest.raises(ValueError, match="max_points must be >= 2"):
        min_max(np.zeros(10), 1)
    with pytest.raises(ValueError, match=r"\(T,\) or \(T, C\)"):
        min_max(np.zeros((2, 3, 4)), 10)


@pytest.mark.parametrize(("T", "max_rows"), [(100_000, 1000), (1001, 1000), (10, 3), (5, 5)])
def test_max_pool_rows_is_the_largest_per_bucket(T, max_rows):
    values = np.random.default_rng(T).random((T, 16)).astype(np.float32)
    steps, pooled = max_pool_rows(values, max_rows, start=3)
    assert len(steps) == len(pooled) <= max_rows and pooled.shape[1] == 16
    size = 1 if T <= max_rows else -(-T // max_rows)
    for r, first in enumerate(range(0, T, size)):
        assert steps[r] == 3 + first
        np.testing.assert_array_equal(pooled[r], values[first : first + size].max(axis=0))


def test_drawn_span_keeps_a_stretch_of_view_steps_inside_the_series():
    assert downsample.drawn_span(100, None) == (0, 100)  # short: all of it, whatever was asked
    assert downsample.drawn_span(100, 40) == (0, 100)
    T = downsample.VIEW_STEPS + 1000
    assert downsample.drawn_span(T, None) == (1000, T)  # the last stretch by default
    assert downsample.drawn_span(T, 10) == (10, 10 + downsample.VIEW_STEPS)
    assert downsample.drawn_span(T, T) == (1000, T) and downsample.drawn_span(T, -5) == (
        0,
        downsample.VIEW_STEPS,
    )
