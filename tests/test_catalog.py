"""The explorer's model list (app.catalog): each checkpoint's label says its test accuracy,
how it was chosen and, first, when it did not learn; the metrics table lists the reference
and the majority class beside the splits. And the explorer's warning over such a model."""

from __future__ import annotations

import json

from app import catalog, describe

REFIT = {
    "metrics": {
        "test": {"accuracy": 0.9622, "macro_f1": 0.96},
        "majority": {"accuracy": 0.084},
        "reference": {"method": "MiniRocket (aeon 1.6.0, defaults)", "accuracy": 0.989},
        "learning": {"learned": True, "reason": "learned: ..."},
    },
    "train_config": {"refit": True, "epochs": 30, "folds": 5},
}
AT_CHANCE = {
    "metrics": {
        "val": {"accuracy": 0.33},
        "test": {"accuracy": 0.303},
        "learning": {
            "learned": False,
            "reason": "did not learn: its training loss stayed at chance",
        },
    },
    "train_config": {"refit": False, "best_epoch": 4},
}


def test_the_record_says_accuracy_how_chosen_and_did_not_learn_first():
    assert catalog.record(REFIT) == "test 96.2%, refit 30 epochs chosen over 5 folds"
    assert catalog.record(AT_CHANCE) == "DID NOT LEARN, test 30.3%, epoch 4 chosen on validation"
    assert catalog.record({}) == "" and catalog.record({"metrics": "junk"}) == ""


def test_the_model_list_labels_read_the_metadata(tmp_path):
    folder = tmp_path / "mine_larnn"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"architecture": "larnn"}))
    (folder / "metadata.json").write_text(json.dumps({"dataset_id": "file:x.ts", **AT_CHANCE}))
    (model,) = catalog.describe_shipped({"mine_larnn": folder})
    assert model.label.startswith("mine_larnn (trained on ")
    assert model.label.endswith("; DID NOT LEARN, test 30.3%, epoch 4 chosen on validation)")


def test_the_metrics_table_names_the_reference_and_the_majority_and_skips_the_verdict():
    table = catalog.metrics_table(REFIT["metrics"])
    assert table["split"].tolist() == ["test", "most frequent class (test)", "MiniRocket (test)"]
    assert table["accuracy"].tolist() == [0.9622, 0.084, 0.989]


def test_the_explorer_warns_over_a_model_that_did_not_learn():
    warning = describe.unlearned_warning("LARNN", "mine", AT_CHANCE["metrics"])
    assert warning.startswith("**The LARNN (mine) did not learn: its training loss stayed")
    assert "explains nothing" in warning
    assert describe.unlearned_warning("LARNN", "mine", REFIT["metrics"]) is None
    assert describe.unlearned_warning("LSTM", "old", {"test": {"accuracy": 0.9}}) is None
