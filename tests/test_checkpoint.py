"""Checkpoints: save -> load round trips from every source, and every corruption a user can send."""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import safetensors.torch
import torch

from larnn.baseline import LSTMConfig
from larnn.checkpoint import (
    CHECKPOINT_FILES,
    CheckpointMetadata,
    checkpoint_to_zip_bytes,
    load_checkpoint,
    save_checkpoint,
    shipped_checkpoints,
)
from larnn.classifier import ClassifierConfig, SequenceClassifier
from larnn.errors import CheckpointError, ConfigError
from larnn.model import LARNNConfig

CHANNELS, CLASSES = 3, 4


def make_metadata(**changes) -> CheckpointMetadata:
    fields = dict(
        dataset_id="probe:cue_shape",
        split={"seed": 0, "sizes": (64, 16, 16)},  # a tuple: must come back as a list
        channel_names=("x", "y", "z"),
        channel_units=["g", "g", "rad/s"],
        class_names=[f"class {i}" for i in range(CLASSES)],
        normalizer={"mean": [0.0, 1, 2.5], "std": [1.0, 2.0, 0.5]},
        metrics={"val": {"accuracy": 0.75}, "test": {"accuracy": 0.5, "macro_f1": 0.4}},
        seed=3,
        training_seconds=12,
        code_version="0.1.0",
        torch_version=torch.__version__,
        created="2025-01-31T12:00:00Z",
        train_config={"lr": 1e-3, "epochs": 2},
    )
    return CheckpointMetadata(**{**fields, **changes})


def make_model(architecture: str) -> SequenceClassifier:
    torch.manual_seed(0)
    if architecture == "larnn":
        encoder = LARNNConfig(
            CHANNELS, 8, num_layers=2, heads=2, window=4, positional_encoding=True,
            kv_norm="batch", hidden_norm="batch",
        )  # fmt: skip
    else:
        encoder = LSTMConfig(CHANNELS, 8, num_layers=2, input_projection=5)
    model = SequenceClassifier(ClassifierConfig.build(encoder, CLASSES))
    model.train()
    with torch.no_grad():
        for _ in range(3):  # move the batch-norm running statistics away from their init
            model(torch.randn(5, 7, CHANNELS) * 3 + 1)
    return model.eval()


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    return save_checkpoint(
        tmp_path_factory.mktemp("ckpt") / "larnn", make_model("larnn"), make_metadata()
    )


@pytest.fixture
def files(saved) -> dict[str, bytes]:
    return {name: (saved / name).read_bytes() for name in CHECKPOINT_FILES}


def zip_of(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def expect_error(source, fragment: str, **kwargs) -> None:
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(source, **kwargs)
    assert fragment in str(caught.value)


# ---- round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize("architecture", ["larnn", "lstm"])
def test_round_trip_from_every_source(tmp_path, architecture):
    model, metadata = make_model(architecture), make_metadata()
    folder = save_checkpoint(tmp_path / "ckpt", model, metadata)
    zip_path = tmp_path / "ckpt.zip"
    zip_path.write_bytes(checkpoint_to_zip_bytes(folder))
    sources = {
        "folder": folder,
        "folder as str": str(folder),
        "zip path": zip_path,
        "zip bytes": checkpoint_to_zip_bytes(folder),
        "zip at root": zip_of({n: (folder / n).read_bytes() for n in CHECKPOINT_FILES}),
        "three files": {n: (folder / n).read_bytes() for n in CHECKPOINT_FILES},
    }
    x = torch.randn(2, 9, CHANNELS)
    with torch.no_grad():
        want = model(x).logits
    for label, source in sources.items():
        loaded = load_checkpoint(source)
        assert not loaded.model.training, label
        assert loaded.architecture == architecture, label
        assert loaded.config == model.config, label
        assert loaded.metadata == metadata, label
        for name, tensor in model.state_dict().items():  # running stats included
            assert torch.equal(loaded.model.state_dict()[name], tensor), (label, name)
        with torch.no_grad():
            assert torch.equal(loaded.model(x).logits, want), label


def test_batch_norm_running_stats_are_saved(saved):
    state = load_checkpoint(saved).model.state_dict()
    assert state["encoder.layers.0.kv_norm.num_batches_tracked"].item() > 0
    assert not torch.allclose(state["encoder.layers.0.hidden_norm.running_var"], torch.ones(8))


def test_zip_bytes_are_deterministic(saved):
    assert checkpoint_to_zip_bytes(saved) == checkpoint_to_zip_bytes(saved)


def test_metadata_round_trips_through_json():
    metadata = make_metadata()
    assert metadata.channel_names == ["x", "y", "z"]
    assert metadata.split == {"seed": 0, "sizes": [64, 16, 16]}
    assert CheckpointMetadata.from_dict(metadata.to_dict()) == metadata
    assert CheckpointMetadata.from_json(metadata.to_json()) == metadata


@pytest.mark.parametrize(
    "changes, fragment",
    [
        ({"channel_units": ["g"]}, "channel_units: has 1 entries for 3"),
        ({"normalizer": {"mean": [0.0], "std": [1.0, 1.0, 1.0]}}, "normalizer.mean: has 1"),
        ({"normalizer": {"mean": [0.0] * 3, "std": [1.0, 0.0, 1.0]}}, "positive"),
        ({"normalizer": {"mean": [0.0] * 3}}, "normalizer: must be"),
        ({"class_names": []}, "class_names: must name at least one class"),
        ({"class_names": ["a", "a"]}, "class_names: has duplicates"),
        ({"metrics": {"val": {"accuracy": float("nan")}}}, "metrics: must hold finite"),
        ({"training_seconds": float("inf")}, "training_seconds"),
        ({"created": "2025-01-31T12:00:00+02:00"}, "created: must be an ISO 8601 UTC"),
        ({"created": "yesterday"}, "created"),
        ({"seed": 1.5}, "seed: must be an integer"),
    ],
)
def test_metadata_validation(changes, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(")):
        make_metadata(**changes)


# ---- saving --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes, fragment",
    [
        ({"class_names": ["a", "b"]}, "2 class_names for a model with 4 classes"),
        (
            {"channel_names": ["x"], "channel_units": ["g"],
             "normalizer": {"mean": [0.0], "std": [1.0]}},
            "1 channel_names for a model with 3 input channels",
        ),
    ],
)  # fmt: skip
def test_save_checks_metadata_fits_the_model(tmp_path, changes, fragment):
    with pytest.raises(CheckpointError, match=fragment):
        save_checkpoint(tmp_path / "ckpt", make_model("lstm"), make_metadata(**changes))
    assert not (tmp_path / "ckpt").exists()


def test_save_replaces_a_checkpoint_and_leaves_no_temporaries(tmp_path):
    folder = save_checkpoint(tmp_path / "ckpt", make_model("lstm"), make_metadata(seed=1))
    save_checkpoint(folder, make_model("larnn"), make_metadata(seed=2))
    loaded = load_checkpoint(folder)
    assert (loaded.architecture, loaded.metadata.seed) == ("larnn", 2)
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]


def test_save_refuses_to_overwrite_other_folders(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    with pytest.raises(CheckpointError, match="not a checkpoint folder"):
        save_checkpoint(tmp_path / "notes", make_model("lstm"), make_metadata())
    assert (tmp_path / "notes" / "todo.txt").read_text() == "keep me"


def test_save_refuses_non_finite_weights(tmp_path):
    model = make_model("lstm")
    with torch.no_grad():
        model.head.bias[0] = float("nan")
    with pytest.raises(CheckpointError, match=r"non-finite weights in \['head.bias'\]"):
        save_checkpoint(tmp_path / "ckpt", model, make_metadata())


# ---- corrupt files -------------------------------------------------------------------------


def edit_tensors(edit: Callable[[dict], None]) -> Callable[[dict], None]:
    def apply(files: dict) -> None:
        tensors = safetensors.torch.load(files["model.safetensors"])
        edit(tensors)
        files["model.safetensors"] = safetensors.torch.save(tensors)

    return apply


def edit_json(name: str, edit: Callable[[dict], None]) -> Callable[[dict], None]:
    def apply(files: dict) -> None:
        data = json.loads(files[name])
        edit(data)
        files[name] = json.dumps(data).encode()

    return apply


def torch_save_bytes(files: dict) -> None:
    buffer = io.BytesIO()
    torch.save({"head.bias": torch.zeros(CLASSES)}, buffer)
    files["model.safetensors"] = buffer.getvalue()


CORRUPTIONS = {
    "truncated data": (
        lambda f: f.update({"model.safetensors": f["model.safetensors"][:-100]}),
        "truncated or corrupt",
    ),
    "truncated header": (
        lambda f: f.update({"model.safetensors": f["model.safetensors"][:50]}),
        "model.safetensors is truncated",
    ),
    "empty weights": (lambda f: f.update({"model.safetensors": b""}), "not a safetensors file"),
    "pickle": (
        lambda f: f.update({"model.safetensors": pickle.dumps({"head.bias": [0.0] * CLASSES})}),
        "not a safetensors file (it looks like a Python pickle)",
    ),
    "torch.save": (torch_save_bytes, "not a safetensors file (it looks like a zip archive"),
    "wrong shape": (
        edit_tensors(lambda t: t.update({"head.weight": torch.zeros(CLASSES, 9)})),
        "head.weight: (4, 9) in the file, (4, 8) expected",
    ),
    "missing tensor": (
        edit_tensors(lambda t: t.pop("head.bias")),
        "missing tensors ['head.bias']",
    ),
    "extra tensor": (
        edit_tensors(lambda t: t.update({"head.extra": torch.zeros(2)})),
        "unexpected tensors ['head.extra']",
    ),
    "integer weights": (
        edit_tensors(lambda t: t.update({"head.bias": torch.zeros(CLASSES, dtype=torch.int32)})),
        "wrong dtypes (weights must be floating point) [head.bias: torch.int32]",
    ),
    "nan weights": (
        edit_tensors(lambda t: t["head.bias"].fill_(float("nan"))),
        "non-finite values (NaN or infinity) in ['head.bias']",
    ),
    "bad json": (
        lambda f: f.update({"config.json": b'{"format_version": 1,\n "architecture" "larnn"}'}),
        "config.json is not valid JSON: Expecting ':' delimiter at line 2 column 17",
    ),
    "not utf-8": (
        lambda f: f.update({"metadata.json": b"\xff\xfe{"}),
        "metadata.json is not UTF-8",
    ),
    "unknown format_version": (
        edit_json("config.json", lambda d: d.update(format_version=3)),
        "unknown format_version 3; this larnn reads versions [1, 2]",
    ),
    "unknown architecture": (
        edit_json("config.json", lambda d: d.update(architecture="gru")),
        "unknown architecture 'gru'; supported: larnn, lstm",
    ),
    "architecture disagrees": (
        edit_json("config.json", lambda d: d.update(architecture="lstm")),
        "disagrees with classifier.architecture 'larnn'",
    ),
    "config schema": (
        edit_json("config.json", lambda d: d["classifier"]["encoder"].update(hidden_size="8")),
        "config.json: LARNNConfig.hidden_size: expected int, got '8'",
    ),
    "metadata unknown field": (
        edit_json("metadata.json", lambda d: d.update(colour="red")),
        "metadata.json: CheckpointMetadata: unknown field(s) ['colour']",
    ),
    "metadata missing field": (
        edit_json("metadata.json", lambda d: d.pop("seed")),
        "metadata.json: CheckpointMetadata: missing required field(s) ['seed']",
    ),
    "metadata class count": (
        edit_json("metadata.json", lambda d: d.update(class_names=["a", "b", "c"])),
        "metadata.json: 3 class_names for a model with 4 classes",
    ),
    "missing file": (lambda f: f.pop("metadata.json"), "missing file(s) ['metadata.json']"),
}


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_corrupt_checkpoint_is_rejected(files, name):
    corrupt, fragment = CORRUPTIONS[name]
    corrupt(files)
    expect_error(files, fragment)


def test_corrupt_folder_is_rejected(tmp_path, files):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    (folder / "model.safetensors").write_bytes(pickle.dumps([1, 2, 3]))
    expect_error(folder, "not a safetensors file")


def test_config_describing_a_huge_model_is_rejected_before_building_it(files):
    edit_json("config.json", lambda d: d["classifier"]["encoder"].update(hidden_size=4096))(files)
    expect_error(files, "config.json describes a model of", max_bytes=10_000_000)


def test_missing_path_is_rejected(tmp_path):
    expect_error(tmp_path / "nowhere", "no checkpoint at")


# ---- sizes and zips ------------------------------------------------------------------------


def test_oversized_file_is_rejected_before_reading(saved, monkeypatch):
    size = (saved / "model.safetensors").stat().st_size
    monkeypatch.setattr(Path, "open", lambda *a, **k: pytest.fail("read an oversized file"))
    expect_error(saved, f"model.safetensors is {size:,} bytes, over the limit", max_bytes=size - 1)


def test_oversized_upload_is_rejected(files):
    expect_error(files, "over the limit of 100", max_bytes=100)


@pytest.mark.parametrize("member", ["../evil", "/abs", "ckpt/../../evil", "C:/windows"])
def test_zip_with_unsafe_paths_is_rejected(files, member):
    expect_error(zip_of({**files, member: b"x"}), f"unsafe path {member!r}")


def test_zip_bomb_is_rejected_without_inflating(files, monkeypatch):
    bomb = zip_of({**files, "model.safetensors": bytes(60_000_000)})
    assert len(bomb) < 1_000_000
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda *a, **k: pytest.fail("inflated"))
    expect_error(bomb, "bytes uncompressed, over the limit of 50,000,000")


def test_zip_with_absurd_compression_ratio_is_rejected(files, monkeypatch):
    bomb = zip_of({**files, "padding.bin": bytes(5_000_000)})
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda *a, **k: pytest.fail("inflated"))
    expect_error(bomb, "padding.bin has a compression ratio of")


def test_zip_holding_two_checkpoints_is_rejected(files):
    members = {f"{folder}/{name}": data for folder in "ab" for name, data in files.items()}
    expect_error(zip_of(members), "several checkpoint folders ['a', 'b']")


def test_zip_missing_a_file_is_rejected(files):
    expect_error(zip_of({f"ckpt/{n}": files[n] for n in ["config.json"]}), "missing file(s)")


def test_bytes_that_are_not_a_zip_are_rejected(files):
    expect_error(files["config.json"], "not a zip archive")


# ---- shipped checkpoints -------------------------------------------------------------------


def test_shipped_checkpoints_lists_folders_with_a_config(tmp_path, saved):
    for name in ["zeta", "alpha"]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_bytes((saved / "config.json").read_bytes())
    (tmp_path / "empty").mkdir()
    (tmp_path / "file.json").write_text("{}")
    found = shipped_checkpoints(tmp_path)
    assert list(found) == ["alpha", "zeta"]
    assert found["zeta"] == tmp_path / "zeta"
    assert shipped_checkpoints(tmp_path / "absent") == {}


def test_shipped_checkpoints_default_root_loads():
    for name, folder in shipped_checkpoints().items():
        assert folder.parent.name == "checkpoints", name
        assert load_checkpoint(folder).metadata.class_names


def test_a_format_1_checkpoint_loads_with_the_same_outputs(tmp_path):
    """Format 1 stored what the encoder read (2C with asinh channels) as its input_size;
    format 2 stores the data's channels and derives it."""
    torch.manual_seed(0)
    encoder = LARNNConfig(3, 8, heads=2, window=4, kv_norm="none", batch_first=True)
    model = SequenceClassifier(ClassifierConfig.build(encoder, CLASSES, asinh_scale=0.5)).eval()
    folder = save_checkpoint(tmp_path / "ckpt", model, make_metadata())
    config = json.loads((folder / "config.json").read_text())
    assert config["format_version"] == 2 and config["classifier"]["channels"] == 3
    classifier = config["classifier"]
    old_encoder = {**classifier.pop("encoder"), "input_size": 6, "batch_first": True}
    del classifier["channels"], classifier["stem"]
    old = {**config, "format_version": 1, "classifier": {**classifier, "encoder": old_encoder}}
    (folder / "config.json").write_text(json.dumps(old))
    loaded = load_checkpoint(folder)
    assert loaded.config == model.config
    x = torch.randn(2, 5, 3)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x).logits, model(x).logits)
