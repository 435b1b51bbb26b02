"""A non-neural reference beside the LARNN and the LSTM: aeon's MiniRocket (10,000 random
convolutional kernels and a ridge classifier, aeon's defaults), fitted on the same training
cases and scored on the same test part. It needs seconds on the UCR/UEA sets, so a network
that does much worse than it has room to improve.

Optional: without aeon (`pip install -e ".[aeon]"`) `reference_score` returns None and the
tables say "-". Series of unequal lengths are zero-padded to the longest, as MiniRocket
takes equal lengths only.
"""

from __future__ import annotations

import importlib.util
import time

import numpy as np

from larnn.data import SequenceDataset

REFERENCE = "reference"  # metrics key of the reference's score in a checkpoint
METHOD = "MiniRocket"


def available() -> bool:
    return importlib.util.find_spec("aeon") is not None


def reference_score(train: SequenceDataset, test: SequenceDataset, seed: int) -> dict | None:
    """{"method", "accuracy", "seconds"} of MiniRocket fitted on `train`, scored on `test`;
    None where aeon is not installed."""
    if not available():
        return None
    from aeon import __version__ as aeon_version
    from aeon.classification.convolution_based import MiniRocketClassifier

    length = max(train.X.shape[1], test.X.shape[1])
    started = time.perf_counter()
    classifier = MiniRocketClassifier(random_state=seed, n_jobs=1)
    classifier.fit(_padded(train.X, length), train.y)
    accuracy = float(np.mean(classifier.predict(_padded(test.X, length)) == test.y))
    return {
        "method": f"{METHOD} (aeon {aeon_version}, defaults)",
        "accuracy": accuracy,
        "seconds": round(time.perf_counter() - started, 1),
    }


def _padded(X: np.ndarray, length: int) -> np.ndarray:
    """(N, T, C) zero-padded to `length` steps, as aeon takes it: (N, C, length) float64."""
    out = np.zeros((len(X), X.shape[2], length))
    out[:, :, : X.shape[1]] = X.transpose(0, 2, 1)
    return out
