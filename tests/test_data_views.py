"""app.data_views: the split a page shows."""

from __future__ import annotations

import numpy as np
from test_app import PROBE, PROBE_SPLIT

from app import data_views
from larnn.tasks import make_split


def test_split_definition_prefers_the_recorded_one():
    recorded = [("m", {"dataset_id": PROBE, "split": PROBE_SPLIT})]
    assert data_views.split_definition(PROBE, recorded) == (
        PROBE_SPLIT,
        "as recorded in checkpoint m",
    )
    definition, origin = data_views.split_definition("uci_har", recorded)
    assert definition == make_split("uci_har") and "default" in origin


def test_a_ragged_split_says_its_range_of_lengths_and_a_file_split_its_source():
    """Issue 29: '50 sequences of 324 steps' for lengths 37-324; the test split of a trained
    file was named after the train file only."""
    assert data_views.steps_text(np.array([37, 324, 100])) == "37–324"
    assert data_views.steps_text(np.array([64, 64])) == "64"
    files = {"files": {"train": {"name": "X_TRAIN.ts"}}}
    assert data_views.source_text(files, "test") == "held out of X_TRAIN.ts, never trained on; "
    assert data_views.source_text(files, "val") == "from X_TRAIN.ts; "
    files["files"]["test"] = {"name": "X_TEST.ts"}
    assert data_views.source_text(files, "test") == "from X_TEST.ts; "
    assert data_views.source_text({"kind": "probe"}, "test") == ""


def test_a_ragged_split_view_describes_its_lengths():
    from larnn.data import SequenceDataset
    from larnn.tasks import Task

    X = np.zeros((3, 324, 2), np.float32)
    part = SequenceDataset(
        X,
        y=np.array([0, 1, 0]),
        groups=np.arange(3),
        channel_names=("x", "y"),
        class_names=("a", "b"),
        dataset_id="file:X_TRAIN.ts",
        lengths=np.array([37, 324, 90]),
    )
    split = {"files": {"train": {"name": "X_TRAIN.ts"}}}
    task = Task("file:X_TRAIN.ts", part, part, part, split, ("a.u.", "a.u."))
    view = data_views.split_view(task, "test", "{}", "as recorded")
    assert "3 sequences of 37–324 steps, 2 channels" in view.description
    assert view.description.startswith("My data: X (.ts), test split")
    assert "held out of X_TRAIN.ts" in view.description
