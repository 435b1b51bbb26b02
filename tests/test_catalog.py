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


def _checkpoint(root, name: str, architecture: str, created: str, accuracy: float):
    folder = root / name
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"architecture": architecture}))
    metadata = {
        "dataset_id": "file:BasicMotions_TRAIN.ts",
        "created": created,
        "training_seconds": 297.6,
        **REFIT,
        "metrics": {"test": {"accuracy": accuracy}},
    }
    (folder / "metadata.json").write_text(json.dumps(metadata))
    return folder


def test_two_pairs_on_one_file_differ_in_their_labels_and_the_newest_is_the_default(tmp_path):
    """Issue 29: two pairs trained on one file were told apart only by the time stamp in
    their names, and the older was the default."""
    folders = {
        name: _checkpoint(tmp_path, name, arch, created, accuracy)
        for name, arch, created, accuracy in [
            ("BM_20261202-031500_s0_larnn", "larnn", "2026-12-02T03:15:00+00:00", 0.8),
            ("BM_20261202-031500_s0_lstm", "lstm", "2026-12-02T03:15:00+00:00", 0.7),
            ("BM_20261203-092800_s0_larnn", "larnn", "2026-12-03T09:28:00+00:00", 0.9),
            ("BM_20261203-092800_s0_lstm", "lstm", "2026-12-03T09:28:00+00:00", 0.75),
        ]
    }
    models = catalog.describe_shipped(folders)
    older, newer = models[0], models[2]
    assert "test 80.0%" in older.label and "trained 2026-12-02 03:15 UTC in 298 s" in older.label
    assert "test 90.0%" in newer.label and "2026-12-03 09:28 UTC" in newer.label
    dataset = "file:BasicMotions_TRAIN.ts"
    assert catalog.default_model(models, "larnn", dataset).name == "BM_20261203-092800_s0_larnn"
    assert catalog.default_model(models, "lstm", dataset).name == "BM_20261203-092800_s0_lstm"
    assert catalog.default_model(models, "lstm", "uci_har") is None


def test_a_trained_file_is_named_without_its_train_suffix():
    """Issue 29: the test split of a trained file read "file:X_TRAIN.ts, test split"."""
    assert catalog.dataset_label("file:BasicMotions_TRAIN.ts") == "My data: BasicMotions (.ts)"
    assert catalog.dataset_label("file:walks.csv") == "My data: walks (.csv)"
    assert catalog.dataset_label("uci_har") == "UCI HAR (smartphone activity)"
