"""app.data_views: the split a page shows."""

from __future__ import annotations

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
