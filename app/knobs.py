"""The LARNN knobs as widgets set them, and the window sweep's windows and sample (pure).

`make_knobs` builds the one `InferenceKnobs` value the page passes whole to the model and its
caches; `trained_widget_values` are the widget values that mean "as trained".
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from larnn.model import InferenceKnobs, LARNNConfig

# --- knobs ----------------------------------------------------------------------------------------


def make_knobs(
    window: int,
    heads_on: Sequence[int],
    heads: int,
    kv_activation: str,
    hidden_steps: Sequence[int] = (),
) -> InferenceKnobs:
    """The knobs a set of widget values means; no head mask when every head is on, no
    hidden steps when none is hidden."""
    on = set(int(h) for h in heads_on)
    mask = None if on == set(range(heads)) else tuple(1.0 if h in on else 0.0 for h in range(heads))
    return InferenceKnobs(
        window=int(window),
        head_mask=mask,
        kv_activation=kv_activation,
        hidden_steps=tuple(int(s) for s in hidden_steps) or None,
    )


def trained_widget_values(trained: LARNNConfig) -> dict[str, object]:
    """The knob widgets' values that mean "as trained", by widget name (the page adds the
    model's key): layer shown, window, activation on keys/values, heads switched on."""
    return {
        "layer": 0,
        "window": trained.window,
        "activation": trained.kv_activation,
        "heads": list(range(trained.heads)),
    }


def sweep_windows(queue_size: int, trained: int, max_points: int = 12) -> list[int]:
    """Windows k' for the sweep: all of 1..queue_size if few, else a spread holding `trained`."""
    if queue_size <= max_points:
        return list(range(1, queue_size + 1))
    spread = np.unique(np.round(np.geomspace(1, queue_size, max_points - 1)).astype(int))
    return sorted({*spread.tolist(), trained, queue_size})


def sweep_sample(n: int, size: int, seed: int = 0) -> np.ndarray:
    """A fixed random sample of `size` of n indices (all when n <= size), ascending."""
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))
