"""Background training jobs (larnn.jobs): a worker process per job, progress any reader can
follow, Cancel, atomic publication of the pair, one job at a time."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from larnn import jobs
from larnn.checkpoint import load_checkpoint, shipped_checkpoints
from larnn.errors import ConfigError
from larnn.tasks import load_task


def labelled_npz(folder: Path, name: str = "mine.npz", n: int = 40, seed: int = 0) -> Path:
    """Two classes told apart by a bump in channel 0; lengths 12..30."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 30, 2)).astype(np.float32)  # (N, T, C)
    y = np.arange(n) % 2
    X[y == 1, 3:8, 0] += 2.0
    lengths = rng.integers(12, 31, size=n)
    for i, length in enumerate(lengths):
        X[i, length:] = 0.0
    path = folder / name
    np.savez(path, X=X, y=y, lengths=lengths)
    return path


def start(tmp_path: Path, epochs: int, name: str = "mine.npz", seed: int = 0):
    root = tmp_path / "user"
    data = labelled_npz(tmp_path, name, seed=seed)
    upload = jobs.save_upload(name, data.read_bytes(), root)
    # nice 0: on a machine busy with other work a nice +10 worker may wait minutes for a core.
    spec = jobs.JobSpec(train_file=str(upload), preset="tiny", epochs=epochs, batch_size=8, nice=0)
    job, started = jobs.start_job(spec, root)
    return root, spec, job, started


def wait_for(condition, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_job_trains_the_pair_reports_each_epoch_and_publishes_both(tmp_path):
    root, spec, job, started = start(tmp_path, epochs=3)
    assert started and job.status().running  # at once, before the worker has begun
    status = job.wait(timeout=600)
    assert status.state == "done", (status.message, (job.folder / "worker.log").read_text())
    assert [(r.model, r.epoch) for r in status.history] == [
        (m, e) for m in ("larnn", "lstm") for e in (1, 2, 3)
    ]
    assert all(r.loss > 0 and 0 <= r.val_accuracy <= 1 for r in status.history)
    assert status.fraction == 1.0 and status.dataset_id == "file:mine.npz"
    listed = shipped_checkpoints(jobs.checkpoints_dir(root))
    assert set(listed) == set(status.checkpoints.values())  # the pair, and nothing else
    for architecture, name in status.checkpoints.items():
        assert name.startswith("mine_tiny_") and name.endswith(f"_{architecture}")
        checkpoint = load_checkpoint(listed[name])
        assert checkpoint.architecture == architecture
        meta = checkpoint.metadata
        assert meta.dataset_id == "file:mine.npz" and set(meta.metrics) == {"val", "test"}
        assert meta.split["files"]["train"]["path"] == spec.train_file
        # The explorer rebuilds the parts from the record, with $LARNN_DATA_DIR pointing
        # elsewhere (UCI HAR's folder): found at the recorded path.
        task = load_task(meta.dataset_id, meta.split, data_dir=tmp_path / "uci_har_elsewhere")
        assert len(task.train) + len(task.val) + len(task.test) == 40
    assert not (job.folder / "runs").exists()  # the run folders are gone once published
    assert jobs.active_job(root) is None
    wait_for(lambda: not job.alive(), timeout=30)  # the worker exits


def test_cancel_stops_the_worker_and_saves_nothing(tmp_path):
    root, _, job, _ = start(tmp_path, epochs=500)
    wait_for(lambda: len(job.status().history) >= 2)
    job.cancel()
    status = job.wait(timeout=120)
    assert status.state == "cancelled" and "nothing saved" in status.message
    wait_for(lambda: not job.alive(), timeout=30)  # the worker exits
    assert shipped_checkpoints(jobs.checkpoints_dir(root)) == {}
    assert not (job.folder / "runs").exists()
    assert jobs.active_job(root) is None


def test_one_job_at_a_time_same_data_joins_other_data_is_refused(tmp_path):
    root, spec, job, started = start(tmp_path, epochs=500)
    try:
        again, started_again = jobs.start_job(spec, root)  # e.g. a second browser tab
        assert started_again is False and again.folder == job.folder
        assert len(jobs.list_jobs(root)) == 1 and jobs.active_job(root) == job
        other = labelled_npz(tmp_path, "other.npz", seed=1)
        upload = jobs.save_upload("other.npz", other.read_bytes(), root)
        with pytest.raises(jobs.JobBusy, match="another training job is running .*mine.npz"):
            jobs.start_job(jobs.JobSpec(train_file=str(upload), preset="tiny"), root)
        assert len(jobs.list_jobs(root)) == 1
    finally:
        job.cancel()
        job.wait(timeout=120)
    # Once it has ended, other data starts.
    _, started_other = jobs.start_job(jobs.JobSpec(train_file=str(upload), epochs=1), root)
    assert started_other
    jobs.active_job(root).cancel()


def test_a_killed_worker_reads_as_failed_and_leaves_no_checkpoint(tmp_path):
    root, _, job, _ = start(tmp_path, epochs=500)
    wait_for(lambda: len(job.status().history) >= 1)
    os.kill(int((job.folder / "pid").read_text()), signal.SIGKILL)  # a crash mid-epoch
    wait_for(lambda: not job.alive(), timeout=30)
    status = job.status()
    assert status.state == "failed" and "stopped unexpectedly" in status.message
    assert shipped_checkpoints(jobs.checkpoints_dir(root)) == {}
    assert jobs.active_job(root) is None


def test_a_bad_file_fails_the_job_with_the_readers_message(tmp_path):
    root = tmp_path / "user"
    single = tmp_path / "one_class.npz"
    np.savez(single, X=np.zeros((6, 5, 1), np.float32), y=np.zeros(6, np.int64))
    upload = jobs.save_upload(single.name, single.read_bytes(), root)
    job, _ = jobs.start_job(jobs.JobSpec(train_file=str(upload), epochs=1, nice=0), root)
    status = job.wait(timeout=600)
    assert status.state == "failed" and "at least 2 classes" in status.message


def test_publication_is_a_rename_of_complete_folders(tmp_path, monkeypatch):
    """_publish never leaves a folder the explorer lists half-written: it copies into a
    staging folder a level too deep to be listed, then renames."""
    seen: list[set[str]] = []
    real_replace = os.replace

    def watching_replace(source, target):
        seen.append(set(shipped_checkpoints(target.parent)))
        real_replace(source, target)

    folder = tmp_path / "user" / "jobs" / "20261202-031500-abcdef12"
    for architecture in jobs.ARCHITECTURES:
        checkpoint = folder / "runs" / architecture / "checkpoint"
        checkpoint.mkdir(parents=True)
        for name in ("config.json", "metadata.json", "model.safetensors"):
            (checkpoint / name).write_text("{}")
    spec = jobs.JobSpec(train_file=str(tmp_path / "x.ts"), preset="small")
    monkeypatch.setattr(jobs.os, "replace", watching_replace)
    names = jobs._publish(folder, spec)
    assert names == {
        "larnn": "x_small_20261202-031500_larnn",
        "lstm": "x_small_20261202-031500_lstm",
    }
    assert seen == [set(), {names["larnn"]}]  # each folder appears whole, by one rename
    assert set(shipped_checkpoints(tmp_path / "user" / "checkpoints")) == set(names.values())


def test_spec_validation_round_trip_and_suggestions(tmp_path):
    spec = jobs.JobSpec(train_file="a.csv", test_file="b.csv", preset="small", epochs=5)
    assert jobs.JobSpec.from_json(spec.to_json()) == spec
    assert spec.train_config("larnn").model == jobs.PRESETS["small"]["larnn"]
    assert spec.train_config("lstm").test == "b.csv"
    with pytest.raises(ConfigError, match="JobSpec.preset"):
        jobs.JobSpec(train_file="a.csv", preset="huge")
    with pytest.raises(ConfigError, match="JobSpec.epochs"):
        jobs.JobSpec(train_file="a.csv", epochs=0)
    basic_motions = jobs.suggest(40, 100)
    assert (basic_motions.preset, basic_motions.epochs, basic_motions.batch_size) == (
        "medium",
        80,
        16,
    )
    uci_har = jobs.suggest(7352, 128)
    assert (uci_har.preset, uci_har.batch_size) == ("small", 64) and uci_har.epochs == 15
    assert jobs.suggest(200_000, 1000).preset == "tiny"


def test_uploads_are_kept_by_content_under_a_safe_name(tmp_path):
    first = jobs.save_upload("../../etc/My Data (1).csv", b"a,b\n", tmp_path)
    assert first.parent.parent == (tmp_path / "uploads").resolve()
    assert first.name == "My_Data_1_.csv" and first.read_bytes() == b"a,b\n"
    assert jobs.save_upload("../../etc/My Data (1).csv", b"a,b\n", tmp_path) == first
    assert jobs.save_upload("x.csv", b"other", tmp_path).parent != first.parent
    assert jobs.safe_name(".hidden") == "hidden" and jobs.safe_name("") == "upload"


def test_a_job_folder_without_a_worker_reads_as_failed(tmp_path):
    folder = tmp_path / "jobs" / "20261202-000000-00000000"
    folder.mkdir(parents=True)
    (folder / "spec.json").write_text(json.dumps({"train_file": "a.csv"}))
    status = jobs.Job(folder).status()
    assert status.state == "failed"  # no worker holds its lock: not running, whatever it says
