"""A cache of computed results bounded by the bytes they hold, shared by every app session.

`st.cache_data` bounds a cache by its number of entries: `max_entries=512` inferences of a
128-step window are 30 MB, of a 100,000-step upload (102 MB of attention each) 52 GB. This
cache evicts the least recently used results once their total size passes a budget, in bytes
(`LARNN_APP_CACHE_MB`, default 1024 MB, for all the functions that use it together).

It keeps `st.cache_data`'s contract where the app relies on it:

- **keys**: every argument, by value, except those whose name starts with `_` (the key
  argument beside them stands for them). Arrays count by content (dtype, shape and bytes),
  anything else must be hashable, such as the frozen `InferenceKnobs`. Defaults count as if
  given, so `f(a)` and `f(a, None)` are one entry.
- **never mutated**: `st.cache_data` hands each caller an unpickled copy. Copying a 100 MB
  result on every hit is what made long series slow, so this cache hands out the one stored
  object instead, and makes that safe by freezing it: every NumPy array in it is marked
  read-only, so an accidental in-place edit raises instead of changing what others see.

Thread-safe: Streamlit runs each session's script in its own thread. Two sessions asking for
the same missing result at once compute it once; the second waits for the first.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import os
import sys
import threading
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import cachetools
import numpy as np
import pandas as pd

ENV_VAR = "LARNN_APP_CACHE_MB"
DEFAULT_MB = 1024
ENTRY_OVERHEAD = 1024  # bytes counted per entry beyond its arrays: the key, small objects

T = TypeVar("T")


def budget_bytes() -> int:
    """The cache budget in bytes: $LARNN_APP_CACHE_MB megabytes (10^6 bytes), else 1024."""
    value = os.environ.get(ENV_VAR, "").strip()
    if not value:
        return DEFAULT_MB * 1_000_000
    try:
        megabytes = float(value)
    except ValueError:
        raise ValueError(f"{ENV_VAR} must be a number of megabytes, got {value!r}") from None
    if megabytes < 0:
        raise ValueError(f"{ENV_VAR} must be >= 0 megabytes, got {value!r}")
    return int(megabytes * 1_000_000)


def nbytes(value: object) -> int:
    """About the bytes `value` holds: its NumPy arrays and DataFrames in full, walking
    dataclasses, tuples, lists and dicts; `sys.getsizeof` for anything else."""
    if isinstance(value, np.ndarray):
        return value.nbytes
    if isinstance(value, pd.DataFrame | pd.Series):
        return int(np.sum(value.memory_usage(deep=True)))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return sum(nbytes(getattr(value, f.name)) for f in dataclasses.fields(value))
    if isinstance(value, tuple | list):
        return sys.getsizeof(value) + sum(nbytes(v) for v in value)
    if isinstance(value, dict):
        return sys.getsizeof(value) + sum(nbytes(k) + nbytes(v) for k, v in value.items())
    return sys.getsizeof(value)


def freeze(value: T) -> T:
    """`value`, with every NumPy array in it (through dataclasses, tuples, lists and dicts)
    marked read-only. DataFrames are left as they are: pandas copies on write."""
    if isinstance(value, np.ndarray):
        value.flags.writeable = False
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            freeze(getattr(value, field.name))
    elif isinstance(value, tuple | list):
        for v in value:
            freeze(v)
    elif isinstance(value, dict):
        for v in value.values():
            freeze(v)
    return value


def array_key(array: np.ndarray) -> tuple[str, tuple[int, ...], str]:
    """An array's key by content: dtype, shape and a BLAKE2 digest of its bytes."""
    data = np.ascontiguousarray(array)
    digest = hashlib.blake2b(data.view(np.uint8).reshape(-1), digest_size=16).hexdigest()
    return str(data.dtype), data.shape, digest


def key_part(name: str, value: object) -> Hashable:
    """One argument's part of a key: arrays by content, anything else as it is (hashable)."""
    if isinstance(value, np.ndarray):
        return array_key(value)
    try:
        hash(value)
    except TypeError:
        raise TypeError(
            f"cannot cache on argument {name!r} of type {type(value).__name__}: it is not "
            "hashable; name it with a leading '_' and pass a key argument beside it"
        ) from None
    return value


class ResultCache:
    """Least-recently-used results, evicted once their total `nbytes` exceeds `max_bytes`.

    A result larger than the whole budget is returned but not kept. Hits hand out the
    stored object itself, frozen (see `freeze`): callers must not change it.
    """

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self._entries: cachetools.LRUCache = cachetools.LRUCache(
            maxsize=max_bytes, getsizeof=lambda v: nbytes(v) + ENTRY_OVERHEAD
        )
        self._lock = threading.Lock()  # guards _entries, _computing and the counters
        self._computing: dict[Hashable, threading.Lock] = {}  # one lock per key being computed
        self.hits = 0
        self.misses = 0

    @property
    def max_bytes(self) -> int:
        return int(self._entries.maxsize)

    @property
    def current_bytes(self) -> int:
        """The bytes the kept results count for (their arrays plus ENTRY_OVERHEAD each)."""
        with self._lock:
            return int(self._entries.currsize)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        """Whether `key` is kept; does not count as a use."""
        with self._lock:
            return key in self._entries

    def keys(self) -> list[Hashable]:
        """The keys kept, in no particular order."""
        with self._lock:
            return list(self._entries.keys())

    def get_or_compute(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The result kept under `key` (now the most recently used), else `compute()`,
        frozen, kept and returned. Concurrent calls for one missing key compute it once."""
        with self._lock:
            if key in self._entries:
                self.hits += 1
                return self._entries[key]  # LRUCache's lookup marks it used
            key_lock = self._computing.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if key in self._entries:  # another thread computed it while this one waited
                    self.hits += 1
                    return self._entries[key]
            try:
                value = freeze(compute())
                with self._lock:
                    self.misses += 1
                    try:
                        self._entries[key] = value  # evicts least recently used as needed
                    except ValueError:  # larger than the whole budget: not kept
                        pass
            finally:
                with self._lock:
                    self._computing.pop(key, None)
        return value

    def clear(self, prefix: Hashable | None = None) -> None:
        """Forget every result, or those whose key is a tuple starting with `prefix`."""
        with self._lock:
            if prefix is None:
                self._entries.clear()
                return
            for key in [k for k in self._entries if isinstance(k, tuple) and k[:1] == (prefix,)]:
                del self._entries[key]


def cached(cache: ResultCache) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Decorator: `function`'s results kept in `cache`, keyed by its qualified name and its
    arguments (see the module doc: `_` arguments are left out, arrays count by content).
    The wrapper's `clear()` forgets this function's results."""

    def decorate(function: Callable[..., T]) -> Callable[..., T]:
        signature = inspect.signature(function)
        name = f"{function.__module__}.{function.__qualname__}"

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> T:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            key = (name,) + tuple(
                (arg, key_part(arg, value))
                for arg, value in bound.arguments.items()
                if not arg.startswith("_")
            )
            return cache.get_or_compute(key, lambda: function(*args, **kwargs))

        wrapper.clear = lambda: cache.clear(name)  # type: ignore[attr-defined]
        wrapper.cache = cache  # type: ignore[attr-defined]
        return wrapper

    return decorate
