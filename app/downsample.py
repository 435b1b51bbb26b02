"""Fewer points to draw for long series, keeping what the eye looks for.

A browser draws a trace of 100,000 points no better than one of 2,000 on a 1,400-pixel-wide
page, but Plotly sends every point as JSON (a 100,000-step upload overflowed Chromium's
largest string, issue 11.3). Shape letters: `T` steps, `C` traces (channels or classes),
`P` points kept per trace, `K` heatmap columns.

- `min_max`: a line's points. The steps are cut into P/2 buckets of equal length and each
  keeps its smallest and largest value, in time order, so a one-step spike stays visible
  (an average or every n-th step would lose it). Exact, every step, when T <= P.
- `max_pool_rows`: a heatmap's rows (steps). Buckets of consecutive steps, each drawn as
  its largest value per column, so one sharp step of attention is not averaged away.

Pure NumPy: at T = 100,000 x 9 channels `min_max` takes a few milliseconds, so a compiled
library (tsdownsample) would add a dependency for no visible gain.
"""

from __future__ import annotations

import numpy as np

MAX_POINTS = 2000  # points per line trace: more than the pixels of a full-width plot
MAX_ROWS = 1000  # heatmap rows (steps): more than the pixels of its height


def _buckets(T: int, n_buckets: int) -> int:
    """Steps per bucket so that at most `n_buckets` buckets cover T steps."""
    return -(-T // n_buckets)  # ceil


def min_max(
    values: np.ndarray, max_points: int = MAX_POINTS, start: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Each trace's minimum and maximum per bucket of steps, for drawing.

    Args:
        values: (T,) or (T, C) finite numbers, step 0 first (e.g. the shown part of a signal,
            or the running class probabilities).
        max_points: the most points kept per trace (>= 2); each bucket gives two.
        start: the step of values[0], added to the positions (a view range's first step).

    Returns:
        (steps, kept): (P, C) integer steps (each trace its own: its extremes fall at
        different steps) and (P, C) values, with P <= max_points, in time order per trace;
        (T,) shapes for (T,) input. When T <= max_points, every step: steps = start ..
        start + T - 1 and kept = values.
    """
    if max_points < 2:
        raise ValueError(f"max_points must be >= 2, got {max_points}")
    array = np.asarray(values)
    flat = array.ndim == 1
    if flat:
        array = array[:, None]  # (T, 1)
    if array.ndim != 2:
        raise ValueError(f"values must be (T,) or (T, C), got shape {np.shape(values)}")
    T, C = array.shape
    if T <= max_points:
        steps = np.broadcast_to(np.arange(start, start + T)[:, None], (T, C)).copy()
        kept = array.copy()
    else:
        size = _buckets(T, max_points // 2)
        n = _buckets(T, size)  # buckets actually needed, <= max_points // 2
        low = np.empty((n * size, C), dtype=np.float64)  # padded with +inf: never a minimum
        high = np.empty((n * size, C), dtype=np.float64)  # padded with -inf: never a maximum
        low[:T], low[T:] = array, np.inf
        high[:T], high[T:] = array, -np.inf
        first = np.arange(n)[:, None] * size  # (n, 1) each bucket's first step
        at_min = first + low.reshape(n, size, C).argmin(axis=1)  # (n, C)
        at_max = first + high.reshape(n, size, C).argmax(axis=1)  # (n, C)
        pairs = np.stack([np.minimum(at_min, at_max), np.maximum(at_min, at_max)], axis=1)
        index = pairs.reshape(2 * n, C)  # (P, C) in time order
        kept = np.take_along_axis(array, index, axis=0)
        steps = index + start
    return (steps[:, 0], kept[:, 0]) if flat else (steps, kept)


def max_pool_rows(
    values: np.ndarray, max_rows: int = MAX_ROWS, start: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """A heatmap's rows pooled to at most `max_rows`: each bucket of consecutive steps
    becomes one row holding its largest value per column.

    Args:
        values: (T, K) finite numbers, one row per step (e.g. one head's attention by slot).
        max_rows: the most rows kept (>= 1).
        start: the step of values[0].

    Returns:
        (steps, pooled): (R,) the first step of each row's bucket and (R, K) the pooled
        rows, R <= max_rows; every row as it is (steps = start .. start + T - 1) when
        T <= max_rows.
    """
    if max_rows < 1:
        raise ValueError(f"max_rows must be >= 1, got {max_rows}")
    array = np.asarray(values)
    if array.ndim != 2:
        raise ValueError(f"values must be (T, K), got shape {array.shape}")
    T = len(array)
    if T <= max_rows:
        return np.arange(start, start + T), array.copy()
    size = _buckets(T, max_rows)
    first = np.arange(0, T, size)  # (R,)
    return first + start, np.maximum.reduceat(array, first, axis=0)  # (R, K)


# --- a long series drawn a stretch at a time ------------------------------------------------------

# The most steps the heatmaps, the timeline and the memory-edit figure draw at once. A head grid
# over 256 steps on the time axis is 8 x 272 x 256 cells; a longer series is drawn a stretch at
# a time (the page's "First of the 256 steps drawn" slider), with a thinned overview of the whole.
VIEW_STEPS = 256


def span_key(length: int) -> str:
    """The session-state key of the first step drawn of a series of `length` steps."""
    return f"span_{length}"


def drawn_span(length: int, first: int | None) -> tuple[int, int]:
    """(first, stop): the steps drawn of a series of `length` steps. All of a short one; of a
    long one VIEW_STEPS from `first` (None: the last VIEW_STEPS), kept inside the series."""
    if length <= VIEW_STEPS:
        return 0, length
    first = length - VIEW_STEPS if first is None else min(max(int(first), 0), length - VIEW_STEPS)
    return first, first + VIEW_STEPS
