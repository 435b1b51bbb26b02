"""Checkpoints: a folder of safetensors weights and JSON config and metadata, never a pickle.

A checkpoint folder holds three files:

    model.safetensors   the SequenceClassifier's state_dict (parameters and persistent buffers)
    config.json         {"format_version": 2, "architecture": ..., "classifier": {...}}
    metadata.json       CheckpointMetadata: data, split, channels, classes, metrics, provenance

`load_checkpoint` also reads a `.zip` of that folder (a path or bytes, for uploads) or the three
files' bytes, and checks everything a person could hand in: sizes before reading, zip member
paths and compression ratios, JSON and schema, tensor names, shapes, dtypes and finiteness.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from safetensors import SafetensorError
from torch import Tensor

from larnn.classifier import ARCHITECTURES, ClassifierConfig, SequenceClassifier
from larnn.config_base import JsonConfig, require
from larnn.errors import CheckpointError, ConfigError

FORMAT_VERSION = 2
SUPPORTED_VERSIONS = (1, 2)  # 1: migrated on load (`from_format_1`)
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
METADATA_FILE = "metadata.json"
CHECKPOINT_FILES = (WEIGHTS_FILE, CONFIG_FILE, METADATA_FILE)
DEFAULT_MAX_BYTES = 50_000_000
MAX_COMPRESSION_RATIO = 100  # deflate reaches ~1000 on zeros; float weights compress ~1.1x
RATIO_CHECK_FLOOR = 1 << 20  # small members (JSON) may compress well without being bombs
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed member timestamps: the same folder, the same bytes


@dataclass(frozen=True)
class CheckpointMetadata(JsonConfig):
    """What a model was trained on and how well it did: everything `evaluate` needs to rebuild it.

    Lists rather than tuples and plain JSON dicts, so `from_dict(to_dict())` round-trips equal.
    """

    dataset_id: str  # "uci_har", "probe:<name>" or "file:<train file name>"
    # JSON definition of the train / validation / test parts. For a file: each file's name,
    # path, bytes and sha256, the held-out case indices, the seed and the class names.
    split: dict
    channel_names: list[str]  # C names, in input order
    channel_units: list[str]  # C units
    class_names: list[str]  # one per class, in logit order
    normalizer: dict  # {"mean": [C floats], "std": [C floats]}, fitted on training data
    metrics: dict  # e.g. {"val": {"accuracy": ...}, "test": {...}}
    seed: int
    training_seconds: float
    code_version: str  # larnn version or git commit
    torch_version: str
    created: str  # ISO 8601, UTC
    train_config: dict  # training hyper-parameters; may be empty

    def __post_init__(self) -> None:
        owner = "CheckpointMetadata"
        require(
            isinstance(self.dataset_id, str) and bool(self.dataset_id),
            owner,
            "dataset_id",
            f"must be a non-empty string, got {self.dataset_id!r}",
        )
        for name in ("channel_names", "channel_units", "class_names"):
            _set(self, name, _string_list(owner, name, getattr(self, name)))
        require(bool(self.class_names), owner, "class_names", "must name at least one class")
        for name in ("channel_names", "class_names"):
            values = getattr(self, name)
            require(len(set(values)) == len(values), owner, name, f"has duplicates: {values}")
        channels = len(self.channel_names)
        require(
            len(self.channel_units) == channels,
            owner,
            "channel_units",
            f"has {len(self.channel_units)} entries for {channels} channel_names",
        )
        _set(self, "normalizer", _normalizer(owner, self.normalizer, channels))
        for name in ("split", "metrics", "train_config"):
            _set(self, name, _plain_json(owner, name, getattr(self, name)))
        require(
            isinstance(self.seed, int) and not isinstance(self.seed, bool),
            owner,
            "seed",
            f"must be an integer, got {self.seed!r}",
        )
        seconds = self.training_seconds
        require(
            isinstance(seconds, (int, float))
            and not isinstance(seconds, bool)
            and math.isfinite(seconds)
            and seconds >= 0,
            owner,
            "training_seconds",
            f"must be a finite number >= 0, got {seconds!r}",
        )
        _set(self, "training_seconds", float(seconds))
        for name in ("code_version", "torch_version"):
            value = getattr(self, name)
            require(isinstance(value, str), owner, name, f"must be a string, got {value!r}")
        require(
            _is_utc_timestamp(self.created),
            owner,
            "created",
            f"must be an ISO 8601 UTC time such as '2025-01-31T12:00:00+00:00', "
            f"got {self.created!r}",
        )


def _set(instance: Any, name: str, value: Any) -> None:
    object.__setattr__(instance, name, value)  # normalise a field of a frozen dataclass


def _string_list(owner: str, field: str, value: Any) -> list[str]:
    ok = isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
    require(ok, owner, field, f"must be a list of strings, got {value!r:.80}")
    return list(value)


def _normalizer(owner: str, value: Any, channels: int) -> dict[str, list[float]]:
    require(
        isinstance(value, dict) and set(value) == {"mean", "std"},
        owner,
        "normalizer",
        f"must be {{'mean': [...], 'std': [...]}}, got {value!r:.80}",
    )
    result = {}
    for key in ("mean", "std"):
        numbers = value[key]
        ok = isinstance(numbers, (list, tuple)) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            for v in numbers
        )
        require(
            ok, owner, f"normalizer.{key}", f"must be a list of finite numbers: {numbers!r:.80}"
        )
        require(
            len(numbers) == channels,
            owner,
            f"normalizer.{key}",
            f"has {len(numbers)} entries for {channels} channel_names",
        )
        result[key] = [float(v) for v in numbers]
    require(all(s > 0 for s in result["std"]), owner, "normalizer.std", "must be positive")
    return result


def _plain_json(owner: str, field: str, value: Any) -> dict:
    """A JSON-normalised copy (tuples become lists), refusing NaN, infinity and non-JSON values."""
    require(isinstance(value, dict), owner, field, f"must be a dict, got {value!r:.80}")
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{owner}.{field}: must hold finite JSON values only ({error})") from None


def _is_utc_timestamp(text: Any) -> bool:
    if not isinstance(text, str):
        return False
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return moment.utcoffset() == timedelta(0)


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint. `model` is in eval mode and may be shared: never mutate it."""

    model: SequenceClassifier
    config: ClassifierConfig
    metadata: CheckpointMetadata
    source: str  # where it came from, for messages

    @property
    def architecture(self) -> str:
        return self.config.architecture


def save_checkpoint(folder: Path, model: SequenceClassifier, metadata: CheckpointMetadata) -> Path:
    """Write `model` and `metadata` to `folder` atomically, replacing a checkpoint there."""
    folder = Path(folder)
    config = model.config
    _check_fits(config, metadata, "save_checkpoint")
    tensors = {name: t.detach().to("cpu", copy=True) for name, t in model.state_dict().items()}
    bad = [name for name, t in tensors.items() if t.is_floating_point() and not t.isfinite().all()]
    if bad:
        raise CheckpointError(f"save_checkpoint: non-finite weights in {bad}; not saving them")
    files = {
        WEIGHTS_FILE: safetensors.torch.save(tensors, metadata={"format": "pt"}),
        CONFIG_FILE: _json_bytes(
            {
                "format_version": FORMAT_VERSION,
                "architecture": config.architecture,
                "classifier": config.to_dict(),
            }
        ),
        METADATA_FILE: _json_bytes(metadata.to_dict()),
    }
    if folder.exists() and not (folder / CONFIG_FILE).is_file():
        if not folder.is_dir() or any(folder.iterdir()):
            raise CheckpointError(
                f"{folder} exists and is not a checkpoint folder; choose another path "
                "or remove it first"
            )
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        for name, data in files.items():
            _write_synced(staging / name, data)
        if folder.exists():  # swap: a directory cannot be os.replace'd onto a non-empty one
            old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old.", dir=folder.parent))
            os.replace(folder, old / folder.name)
            os.replace(staging, folder)
            shutil.rmtree(old)
        else:
            os.replace(staging, folder)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return folder


def _json_bytes(data: dict) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n").encode()


def _write_synced(path: Path, data: bytes) -> None:
    with path.open("wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())


def checkpoint_to_zip_bytes(folder: Path) -> bytes:
    """The checkpoint's three files, zipped inside a top-level folder named like `folder`."""
    folder = Path(folder)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in CHECKPOINT_FILES:
            path = folder / name
            if not path.is_file():
                raise CheckpointError(f"{folder} has no {name}: is it a checkpoint folder?")
            info = zipfile.ZipInfo(f"{folder.name}/{name}", date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def shipped_checkpoints(root: Path | None = None) -> dict[str, Path]:
    """The checkpoint folders (those holding a config.json) under `root`, by name, sorted."""
    root = Path(__file__).resolve().parents[1] / "checkpoints" if root is None else Path(root)
    if not root.is_dir():
        return {}
    folders = (p for p in root.iterdir() if p.is_dir() and (p / CONFIG_FILE).is_file())
    return {p.name: p for p in sorted(folders, key=lambda p: p.name)}


def load_checkpoint(
    source: str | Path | bytes | Mapping[str, bytes], *, max_bytes: int = DEFAULT_MAX_BYTES
) -> Checkpoint:
    """Load a checkpoint from a folder, a `.zip` path, zip bytes or {file name: bytes}.

    Nothing is unpickled and nothing is extracted to disk. Every problem raises a
    CheckpointError that says what is wrong and what to do.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        label = "uploaded zip"
        files = _read_zip(bytes(source), label, max_bytes)
    elif isinstance(source, Mapping):
        label = "uploaded files"
        files = {}
        for name in CHECKPOINT_FILES:
            if name in source:
                _check_size(name, len(source[name]), max_bytes)
                files[name] = bytes(source[name])
    else:
        path = Path(source)
        label = str(path)
        if path.is_dir():
            files = _read_folder(path, max_bytes)
        elif path.is_file():
            _check_size(path.name, path.stat().st_size, max_bytes)
            files = _read_zip(path.read_bytes(), label, max_bytes)
        else:
            raise CheckpointError(f"no checkpoint at {path}: expected a folder or a .zip file")
    missing = [name for name in CHECKPOINT_FILES if name not in files]
    if missing:
        raise CheckpointError(
            f"{label}: missing file(s) {missing}; a checkpoint holds "
            f"{', '.join(CHECKPOINT_FILES)} (in a zip: at its root or in one top-level folder)"
        )
    config = _parse_config(_parse_json(CONFIG_FILE, files[CONFIG_FILE]))
    try:
        metadata = CheckpointMetadata.from_dict(_parse_json(METADATA_FILE, files[METADATA_FILE]))
    except ConfigError as error:
        raise CheckpointError(f"{METADATA_FILE}: {error}") from None
    _check_fits(config, metadata, METADATA_FILE)
    expected = _expected_state(config, max_bytes)
    tensors = _parse_weights(files[WEIGHTS_FILE])
    _check_tensors(tensors, expected)
    model = SequenceClassifier(config)
    model.load_state_dict(tensors, strict=True)
    return Checkpoint(model.eval(), config, metadata, label)


def _check_size(name: str, size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise CheckpointError(
            f"{name} is {size:,} bytes, over the limit of {max_bytes:,}; "
            "pass a larger max_bytes if you trust this checkpoint"
        )


def _read_folder(folder: Path, max_bytes: int) -> dict[str, bytes]:
    files = {}
    for name in CHECKPOINT_FILES:
        path = folder / name
        if path.is_file():
            _check_size(name, path.stat().st_size, max_bytes)
            with path.open("rb") as file:
                files[name] = file.read(max_bytes + 1)  # the file may grow after stat
            _check_size(name, len(files[name]), max_bytes)
    return files


def _read_zip(data: bytes, label: str, max_bytes: int) -> dict[str, bytes]:
    """The checkpoint files inside a zip, read in memory after checking paths and sizes."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise CheckpointError(
            f"{label} is not a zip archive; upload a zip of a checkpoint folder or its files"
        ) from None
    with archive:
        infos = archive.infolist()
        _check_members(infos, label, max_bytes)
        members = {info.filename: info for info in infos if not info.is_dir()}
        prefix = _zip_prefix(members, label)
        files = {}
        for name in CHECKPOINT_FILES:
            info = members.get(prefix + name)
            if info is None:
                continue
            try:
                with archive.open(info) as stream:
                    files[name] = stream.read(max_bytes + 1)
            except (
                zipfile.BadZipFile,
                zlib.error,
                EOFError,
                NotImplementedError,
                RuntimeError,
            ) as e:
                raise CheckpointError(f"{label}: cannot read {info.filename} ({e})") from None
    return files


def _check_members(infos: list[zipfile.ZipInfo], label: str, max_bytes: int) -> None:
    """Refuse unsafe paths and zip bombs from the central directory alone, inflating nothing."""
    for info in infos:
        parts = info.filename.replace("\\", "/").split("/")
        if parts[0] == "" or re.match(r"[A-Za-z]:", info.filename) or ".." in parts:
            raise CheckpointError(
                f"{label}: unsafe path {info.filename!r} in the zip (absolute or containing "
                "'..'); a checkpoint zip holds only relative paths"
            )
    declared = sum(info.file_size for info in infos)
    if declared > max_bytes:
        raise CheckpointError(
            f"{label} declares {declared:,} bytes uncompressed, over the limit of "
            f"{max_bytes:,}; pass a larger max_bytes if you trust this archive"
        )
    for info in infos:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > RATIO_CHECK_FLOOR and ratio > MAX_COMPRESSION_RATIO:
            raise CheckpointError(
                f"{label}: {info.filename} has a compression ratio of {ratio:.0f}:1 "
                f"(a zip bomb?); refusing members above {MAX_COMPRESSION_RATIO}:1"
            )


def _zip_prefix(members: Mapping[str, zipfile.ZipInfo], label: str) -> str:
    """'' when the files are at the zip root, else 'folder/' for the one folder holding them."""
    if any(name in members for name in CHECKPOINT_FILES):
        return ""
    folders = sorted(
        {
            name.split("/")[0]
            for name in members
            if name.count("/") == 1
            and name.split("/")[1] in CHECKPOINT_FILES
            and name.split("/")[0] != "__MACOSX"
        }
    )
    if len(folders) > 1:
        raise CheckpointError(
            f"{label} holds several checkpoint folders {folders}; zip one checkpoint at a time"
        )
    return f"{folders[0]}/" if folders else ""


def _parse_json(name: str, data: bytes) -> Any:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise CheckpointError(
            f"{name} is not UTF-8 text ({error}); re-save the checkpoint"
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise CheckpointError(
            f"{name} is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}; "
            "fix it or re-save the checkpoint"
        ) from None


def _parse_config(data: Any) -> ClassifierConfig:
    if not isinstance(data, dict):
        raise CheckpointError(f"{CONFIG_FILE}: expected a JSON object, got {type(data).__name__}")
    version = data.get("format_version")
    if type(version) is not int or version not in SUPPORTED_VERSIONS:
        raise CheckpointError(
            f"{CONFIG_FILE}: unknown format_version {version!r}; this larnn reads versions "
            f"{list(SUPPORTED_VERSIONS)}: upgrade larnn or re-save the checkpoint"
        )
    keys = {"format_version", "architecture", "classifier"}
    if set(data) != keys:
        raise CheckpointError(f"{CONFIG_FILE}: expected keys {sorted(keys)}, got {sorted(data)}")
    architecture = data["architecture"]
    if architecture not in ARCHITECTURES:
        raise CheckpointError(
            f"{CONFIG_FILE}: unknown architecture {architecture!r}; supported: "
            f"{', '.join(ARCHITECTURES)}"
        )
    try:
        fields = data["classifier"]
        config = ClassifierConfig.from_dict(fields if version == 2 else from_format_1(fields))
    except ConfigError as error:
        raise CheckpointError(f"{CONFIG_FILE}: {error}") from None
    if config.architecture != architecture:
        raise CheckpointError(
            f"{CONFIG_FILE}: architecture {architecture!r} disagrees with "
            f"classifier.architecture {config.architecture!r}"
        )
    return config


def from_format_1(fields: Any) -> Any:
    """A format-1 classifier config in format 2: its encoder's input_size was what the encoder
    read (2C with asinh channels); format 2 stores the data's channels C and derives it."""
    if not isinstance(fields, dict) or not isinstance(fields.get("encoder"), dict):
        return fields  # from_dict names what is wrong
    encoder = {k: v for k, v in fields["encoder"].items() if k not in ("input_size", "batch_first")}
    reads = fields["encoder"].get("input_size")
    asinh = fields.get("asinh_scale", 0.0)
    if not isinstance(reads, int) or not isinstance(asinh, (int, float)):
        raise ConfigError("ClassifierConfig.encoder: input_size must be an integer (format 1)")
    if asinh > 0 and reads % 2:
        raise ConfigError(
            f"ClassifierConfig.encoder: input_size {reads} must be even with asinh_scale on "
            "(format 1: the encoder read 2 values per channel)"
        )
    channels = reads // 2 if asinh > 0 else reads
    return {**fields, "encoder": encoder, "channels": channels}


def _check_fits(config: ClassifierConfig, metadata: CheckpointMetadata, where: str) -> None:
    if len(metadata.class_names) != config.num_classes:
        raise CheckpointError(
            f"{where}: {len(metadata.class_names)} class_names for a model with "
            f"{config.num_classes} classes; they must match one to one"
        )
    if len(metadata.channel_names) != config.input_size:
        raise CheckpointError(
            f"{where}: {len(metadata.channel_names)} channel_names for a model with "
            f"{config.input_size} input channels; they must match one to one"
        )


def _expected_state(config: ClassifierConfig, max_bytes: int) -> dict[str, Tensor]:
    """The state_dict the config implies, built on the meta device: shapes, no memory."""
    with torch.device("meta"):
        skeleton = SequenceClassifier(config)
    tensors = [*skeleton.parameters(), *skeleton.buffers()]  # buffers include derived tables
    size = sum(t.numel() * t.element_size() for t in tensors)
    if size > max_bytes:
        raise CheckpointError(
            f"{CONFIG_FILE} describes a model of {size:,} bytes, over the limit of "
            f"{max_bytes:,}; pass a larger max_bytes if you trust this checkpoint"
        )
    return skeleton.state_dict()


def _parse_weights(data: bytes) -> dict[str, Tensor]:
    """Safetensors bytes to tensors, telling a pickle or zip (torch.save) apart from truncation."""
    header = int.from_bytes(data[:8], "little") if len(data) >= 8 else 0
    if len(data) < 9 or data[8:9] != b"{":
        if data[:2] == b"PK":
            looks = "a zip archive, such as a torch.save file"
        elif data[:1] == b"\x80":
            looks = "a Python pickle"
        else:
            looks = "empty" if not data else "unrecognised bytes"
        raise CheckpointError(
            f"{WEIGHTS_FILE} is not a safetensors file (it looks like {looks}); larnn never "
            "unpickles weights: re-save the model with larnn.checkpoint.save_checkpoint"
        )
    if 8 + header > len(data):
        raise CheckpointError(
            f"{WEIGHTS_FILE} is truncated: its header declares {header:,} bytes but the file "
            f"has {len(data):,}; copy or upload it again"
        )
    try:
        return safetensors.torch.load(data)
    except SafetensorError as error:
        raise CheckpointError(
            f"{WEIGHTS_FILE} is truncated or corrupt ({error}); copy or upload it again"
        ) from None


def _check_tensors(tensors: Mapping[str, Tensor], expected: Mapping[str, Tensor]) -> None:
    problems = []
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing:
        problems.append(f"missing tensors {missing}")
    if unexpected:
        problems.append(f"unexpected tensors {unexpected}")
    shapes = [
        f"{name}: {tuple(tensors[name].shape)} in the file, {tuple(want.shape)} expected"
        for name, want in expected.items()
        if name in tensors and tensors[name].shape != want.shape
    ]
    if shapes:
        problems.append(f"shape mismatches [{'; '.join(shapes)}]")
    dtypes = [
        f"{name}: {tensors[name].dtype}"
        for name, want in expected.items()
        if name in tensors
        and (
            not tensors[name].is_floating_point()
            if want.is_floating_point()
            else tensors[name].dtype != want.dtype
        )
    ]
    if dtypes:
        problems.append(f"wrong dtypes (weights must be floating point) [{', '.join(dtypes)}]")
    if problems:
        raise CheckpointError(
            f"{WEIGHTS_FILE} does not match {CONFIG_FILE}: {'; '.join(problems)}; "
            "were the files of two checkpoints mixed?"
        )
    bad = [n for n, t in tensors.items() if t.is_floating_point() and not t.isfinite().all()]
    if bad:
        raise CheckpointError(
            f"{WEIGHTS_FILE}: non-finite values (NaN or infinity) in {bad}; "
            "the training diverged: use an earlier checkpoint"
        )
