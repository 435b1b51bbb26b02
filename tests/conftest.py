"""Shared fixtures."""

import os
import tempfile
from pathlib import Path

import pytest
import torch

from larnn.data.uci_har import ENV_VAR, find_uci_har

REPO_ROOT = Path(__file__).resolve().parents[1]

# The tests' models are tiny: one thread is faster than two fighting over small kernels.
torch.set_num_threads(1)

# Models trained on the app's "Train on my data" page live in the user folder, which the
# explorer lists: tests never read or write the real one.
os.environ["LARNN_USER_DIR"] = tempfile.mkdtemp(prefix="larnn-tests-user-")


@pytest.fixture(scope="session")
def uci_har_dir() -> Path:
    """Folder holding the real UCI HAR data ($LARNN_DATA_DIR, else ../shared/data/uci_har)."""
    env = os.environ.get(ENV_VAR)
    for folder in ([Path(env)] if env else []) + [REPO_ROOT.parent / "shared/data/uci_har"]:
        if find_uci_har(folder) is not None:
            return folder
    pytest.skip(f"UCI HAR not found: set {ENV_VAR} to a folder holding uci_har.npz")


@pytest.fixture(scope="module")
def inference():
    """A tiny untrained LARNN's inference on one cue-shape sequence (window 7 of its queue of 8),
    and that sequence's ground-truth steps: what the app's views and figures are built from."""
    from larnn.classifier import ClassifierConfig, SequenceClassifier
    from larnn.data import Normalizer, make_probe
    from larnn.inference import infer_sequence
    from larnn.model import InferenceKnobs, LARNNConfig

    torch.manual_seed(1)
    config = LARNNConfig(input_size=3, hidden_size=8, heads=2, window=5, max_window=8)
    model = SequenceClassifier(ClassifierConfig.build(config, 4)).eval()
    data = make_probe("cue_shape", 1, seed=3, length=32)
    result = infer_sequence(model, data.X[0], Normalizer.fit(data.X), InferenceKnobs(window=7))
    return result, data.relevant_steps[0]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> Path:
    """Tiny untrained checkpoints in the shipped ones' names (`test_app.make_checkpoints`),
    for the app's page tests: LARNN_CHECKPOINT_DIR points the page at them."""
    from test_app import make_checkpoints

    return make_checkpoints(tmp_path_factory.mktemp("checkpoints"))
