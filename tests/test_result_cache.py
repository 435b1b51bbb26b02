"""app.result_cache: the app's cache of results, bounded by bytes, least recently used out."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from app import result_cache as rc
from app.result_cache import ENTRY_OVERHEAD, ResultCache, cached
from larnn.inference import SequenceInference
from larnn.model import InferenceKnobs

MB = 1_000_000


def block(megabytes: float, fill: float = 0.0) -> np.ndarray:
    return np.full(int(megabytes * MB) // 8, fill, dtype=np.float64)


def test_budget_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv(rc.ENV_VAR, raising=False)
    assert rc.budget_bytes() == 1024 * MB
    monkeypatch.setenv(rc.ENV_VAR, "250")
    assert rc.budget_bytes() == 250 * MB
    monkeypatch.setenv(rc.ENV_VAR, "a lot")
    with pytest.raises(ValueError, match="LARNN_APP_CACHE_MB must be a number of megabytes"):
        rc.budget_bytes()


def test_nbytes_counts_the_arrays_of_an_inference():
    T, NH, K, classes = 1000, 8, 16, 6
    inference = SequenceInference(
        probabilities=np.zeros(classes, np.float32),
        step_probabilities=np.zeros((T, classes), np.float32),
        attention=(np.zeros((T, NH, K), np.float32),) * 2,
        slot_time=np.zeros((T, K), np.int64),
    )
    arrays = 4 * classes + 4 * T * classes + 2 * 4 * T * NH * K + 8 * T * K
    assert arrays <= rc.nbytes(inference) <= arrays + 1000


def test_a_hit_returns_the_kept_object_without_computing():
    cache = ResultCache(10 * MB)
    calls = []

    def compute():
        calls.append(1)
        return block(1)

    first = cache.get_or_compute("a", compute)
    again = cache.get_or_compute("a", compute)
    assert again is first and len(calls) == 1
    assert (cache.hits, cache.misses) == (1, 1)


def test_kept_results_are_read_only():
    cache = ResultCache(10 * MB)
    kept = cache.get_or_compute("a", lambda: {"x": (block(0.1), [block(0.1)])})
    with pytest.raises(ValueError, match="read-only"):
        kept["x"][0][0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        kept["x"][1][0] += 1.0


def test_eviction_is_least_recently_used():
    cache = ResultCache(3 * MB + 3 * ENTRY_OVERHEAD)  # room for three 1 MB results
    for key in "abc":
        cache.get_or_compute(key, lambda: block(1))
    cache.get_or_compute("a", lambda: pytest.fail("'a' is kept"))  # a use: "b" is now oldest
    cache.get_or_compute("d", lambda: block(1))
    assert sorted(cache.keys()) == ["a", "c", "d"]
    assert "c" in cache  # a look, not a use: "c" stays the oldest
    cache.get_or_compute("e", lambda: block(2))  # needs two places: "c" and "a" go
    assert sorted(cache.keys()) == ["d", "e"]


def test_the_budget_holds_after_many_long_inferences():
    """Issue 11.3: 100,000-step inferences (102 MB of attention each) filled the memory of
    an entry-counted cache; here twenty of a tenth of that size stay within 50 MB."""
    budget = 50 * MB
    cache = ResultCache(budget)
    T, NH, K = 10_000, 8, 16
    for window in range(1, 21):
        knobs = InferenceKnobs(window=window)
        result = cache.get_or_compute(
            ("m", knobs),
            lambda: SequenceInference(
                np.zeros(6, np.float32),
                np.zeros((T, 6), np.float32),
                tuple(np.zeros((T, NH, K), np.float32) for _ in range(2)),
                np.zeros((T, K), np.int64),
            ),
        )
        assert result.attention[0].shape == (T, NH, K)  # handed out even when evicted later
        assert cache.current_bytes <= budget
    kept = len(cache)
    assert 2 <= kept < 20
    assert ("m", InferenceKnobs(window=20)) in cache and (
        "m",
        InferenceKnobs(window=1),
    ) not in cache
    assert cache.current_bytes == sum(
        rc.nbytes(cache.get_or_compute(k, pytest.fail)) + ENTRY_OVERHEAD for k in cache.keys()
    )


def test_a_result_larger_than_the_budget_is_returned_not_kept():
    cache = ResultCache(1 * MB)
    kept = cache.get_or_compute("small", lambda: block(0.5))
    big = cache.get_or_compute("big", lambda: block(2))
    assert big.nbytes == 2 * MB and "big" not in cache and "small" in cache
    assert cache.get_or_compute("small", pytest.fail) is kept


def test_a_failed_computation_keeps_nothing_and_can_be_retried():
    cache = ResultCache(MB)

    def fails():
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        cache.get_or_compute("a", fails)
    assert "a" not in cache
    assert cache.get_or_compute("a", lambda: 3) == 3


def test_concurrent_callers_of_one_key_compute_it_once():
    cache = ResultCache(10 * MB)
    calls, results = [], []

    def slow():
        calls.append(1)
        time.sleep(0.2)
        return block(0.1)

    threads = [
        threading.Thread(target=lambda: results.append(cache.get_or_compute("k", slow)))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and len(results) == 4 and all(r is results[0] for r in results)


def test_cached_keys_on_arguments_by_value_but_not_underscored_ones():
    cache = ResultCache(10 * MB)
    calls = []

    @cached(cache)
    def run(model_key: str, _model: object, raw: np.ndarray, knobs: InferenceKnobs | None = None):
        calls.append((model_key, knobs))
        return raw.sum()

    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    run("m", object(), x)
    run("m", object(), x.copy(), None)  # same content, default given: a hit
    run("m", object(), x, InferenceKnobs(3, [0, 1.0], "tanh"))
    run("m", object(), x, InferenceKnobs(3, (0.0, 1.0), "tanh"))  # an equal value: a hit
    assert len(calls) == 2
    run("m", object(), x[:, ::-1])  # other content
    run("m", object(), x.astype(np.float64))  # other dtype
    run("n", object(), x)  # other model key
    assert len(calls) == 5
    run.clear()
    run("m", object(), x)
    assert len(calls) == 6


def test_cached_refuses_an_unhashable_argument_with_a_message():
    @cached(ResultCache(MB))
    def f(values: list) -> int:
        return len(values)

    with pytest.raises(TypeError, match="argument 'values' of type list"):
        f([1, 2])
