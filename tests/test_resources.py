"""app.resources: the app's caches around the pure functions, as the page calls them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app import resources, uploads
from app.result_cache import ResultCache, cached, nbytes
from larnn.checkpoint import load_checkpoint
from larnn.inference import infer_sequence
from larnn.model import InferenceKnobs

# The shipped recall probe's LARNN: its queue holds 32 steps, so windows 2 .. 7 all apply.
RECALL_LARNN = Path(__file__).resolve().parents[1] / "checkpoints" / "probe_recall_larnn"


@pytest.fixture(scope="module")
def larnn():
    return load_checkpoint(RECALL_LARNN)


def long_series(checkpoint, T: int, seed: int = 0) -> np.ndarray:
    return uploads.example_series(checkpoint.metadata.normalizer, length=T, seed=seed)  # (T, C)


def test_infer_hit_is_the_same_read_only_result_without_recomputing(larnn, monkeypatch):
    calls = []

    def counted(*args, **kwargs):
        calls.append(1)
        return infer_sequence(*args, **kwargs)

    monkeypatch.setattr(resources, "infer_sequence", counted)
    resources.infer.clear()
    x = long_series(larnn, 300)
    knobs = InferenceKnobs(window=4)
    try:
        first = resources.infer("recall", larnn, x, knobs)
        again = resources.infer("recall", larnn, x.copy(), InferenceKnobs(window=4))
        assert again is first and len(calls) == 1
        assert not first.attention[0].flags.writeable
        assert not first.step_probabilities.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            first.step_probabilities[0, 0] = 1.0
        resources.infer("recall", larnn, x, InferenceKnobs(window=5))  # another knob: a miss
        resources.infer("recall", larnn, x[:-1], knobs)  # another sequence: a miss
        assert len(calls) == 3
    finally:
        resources.infer.clear()


def test_long_inferences_stay_within_the_budget(larnn):
    """Issue 11.3: knob changes on a long series filled the memory of `st.cache_data`'s
    entry-counted cache. Here `resources.infer` over a cache of 2.5 inferences: six
    5,000-step inferences (windows 2 .. 7) keep the newest two."""
    x = long_series(larnn, 5000)
    sizes = [
        nbytes(resources.infer.__wrapped__("recall", larnn, x, InferenceKnobs(window=w)))
        for w in range(2, 8)
    ]
    budget = int(2.5 * max(sizes))
    cache = ResultCache(budget)
    infer = cached(cache)(resources.infer.__wrapped__)
    knobs = [InferenceKnobs(window=w) for w in range(2, 8)]
    results = []
    for knob in knobs:
        results.append(infer("recall", larnn, x, knob))
        assert cache.current_bytes <= budget
    assert [nbytes(result) for result in results] == sizes
    kept = [dict(key[1:])["knobs"] for key in cache.keys()]
    assert sorted(k.window for k in kept) == [6, 7]  # the least recently used went first
    assert infer("recall", larnn, x, knobs[-1]) is results[-1]  # a hit


def test_user_series_is_read_once_per_file(monkeypatch):
    calls = []

    def counted(*args):
        calls.append(1)
        return uploads.read_series(*args)

    monkeypatch.setattr(resources, "read_series", counted)
    resources.user_series.clear()
    contents = uploads.example_csv(np.zeros((50, 3), np.float32), ["a", "b", "c"])
    try:
        first = resources.user_series("d1", contents, "s.csv", ("a", "b", "c"))
        again = resources.user_series("d1", contents, "s.csv", ("a", "b", "c"))
        assert again is first and len(calls) == 1 and first.X.shape == (1, 50, 3)
        assert not first.X.flags.writeable
    finally:
        resources.user_series.clear()
