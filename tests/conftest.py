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
