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


QUICK, LONG = 0.1, 3600.0  # budgets: 3 folds of an epoch or two; hundreds of epochs


def start(tmp_path: Path, budget_s: float, name: str = "mine.npz", seed: int = 0):
    root = tmp_path / "user"
    data = labelled_npz(tmp_path, name, seed=seed)
    upload = jobs.save_upload(name, data.read_bytes(), root)
    # nice 0: on a machine busy with other work a nice +10 worker may wait minutes for a core.
    spec = jobs.JobSpec(train_file=str(upload), budget_s=budget_s, nice=0)
    job, started = jobs.start_job(spec, root)
    return root, spec, job, started


def wait_for(condition, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_job_trains_the_pair_reports_each_epoch_and_publishes_both(tmp_path):
    root, spec, job, started = start(tmp_path, QUICK)
    assert started and job.status().running  # at once, before the worker has begun
    status = job.wait(timeout=600)
    assert status.state == "done", (status.message, (job.folder / "worker.log").read_text())
    for model in ("larnn", "lstm"):  # a 0.1 s budget: 3 folds rather than 5, few epochs each
        rows = [r for r in status.history if r.model == model]
        stages = [f"fold {j}/3" for j in range(1, 4)] + ["refit"]
        assert list(dict.fromkeys(r.stage for r in rows)) == stages
        for stage in stages:  # every epoch of every stage, in order
            part = [r for r in rows if r.stage == stage]
            assert [r.epoch for r in part] == list(range(1, part[0].epochs + 1))
    assert all(r.loss > 0 and 0 <= r.val_accuracy <= 1 for r in status.history)
    assert status.fraction == 1.0 and status.dataset_id == "file:mine.npz"
    assert status.stages == status.stages_done == 8
    listed = shipped_checkpoints(jobs.checkpoints_dir(root))
    assert set(listed) == set(status.checkpoints.values()) == set(status.all_checkpoints)
    assert set(status.verdicts) == set(listed)  # each published model is judged
    for architecture, name in status.checkpoints.items():
        assert name.startswith("mine_") and name.endswith(f"_s0_{architecture}")
        checkpoint = load_checkpoint(listed[name])
        assert checkpoint.architecture == architecture
        meta = checkpoint.metadata
        assert meta.dataset_id == "file:mine.npz"
        assert {"test", "majority", "learning"} <= set(meta.metrics) and "val" not in meta.metrics
        assert (
            meta.train_config["refit"] and meta.train_config["choices"]["readout"] == "set by you"
        )
        assert meta.split["files"]["train"]["path"] == spec.train_file
        # The explorer rebuilds the parts from the record, with $LARNN_DATA_DIR pointing
        # elsewhere (UCI HAR's folder): found at the recorded path.
        task = load_task(meta.dataset_id, meta.split, data_dir=tmp_path / "uci_har_elsewhere")
        assert len(task.train) + len(task.val) + len(task.test) == 40
    assert not (job.folder / "runs").exists()  # the run folders are gone once published
    assert jobs.active_job(root) is None
    wait_for(lambda: not job.alive(), timeout=30)  # the worker exits


def test_cancel_stops_the_worker_and_saves_nothing(tmp_path):
    root, _, job, _ = start(tmp_path, LONG)
    wait_for(lambda: len(job.status().history) >= 2)
    job.cancel()
    status = job.wait(timeout=120)
    assert status.state == "cancelled" and "nothing saved" in status.message
    wait_for(lambda: not job.alive(), timeout=30)  # the worker exits
    assert shipped_checkpoints(jobs.checkpoints_dir(root)) == {}
    assert not (job.folder / "runs").exists()
    assert jobs.active_job(root) is None


def test_one_job_at_a_time_same_data_joins_other_data_is_refused(tmp_path):
    root, spec, job, started = start(tmp_path, LONG)
    try:
        again, started_again = jobs.start_job(spec, root)  # e.g. a second browser tab
        assert started_again is False and again.folder == job.folder
        assert len(jobs.list_jobs(root)) == 1 and jobs.active_job(root) == job
        other = labelled_npz(tmp_path, "other.npz", seed=1)
        upload = jobs.save_upload("other.npz", other.read_bytes(), root)
        with pytest.raises(jobs.JobBusy, match="another training job is running .*mine.npz"):
            jobs.start_job(jobs.JobSpec(train_file=str(upload)), root)
        assert len(jobs.list_jobs(root)) == 1
    finally:
        job.cancel()
        job.wait(timeout=120)
    # Once it has ended, other data starts.
    _, started_other = jobs.start_job(jobs.JobSpec(train_file=str(upload), budget_s=QUICK), root)
    assert started_other
    jobs.active_job(root).cancel()


def test_a_killed_worker_reads_as_failed_and_leaves_no_checkpoint(tmp_path):
    root, _, job, _ = start(tmp_path, LONG)
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
    job, _ = jobs.start_job(jobs.JobSpec(train_file=str(upload), budget_s=QUICK, nice=0), root)
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
    for seed in (0, 1):
        for architecture in jobs.ARCHITECTURES:
            checkpoint = folder / "runs" / f"{architecture}_s{seed}" / "checkpoint"
            checkpoint.mkdir(parents=True)
            for name in ("config.json", "metadata.json", "model.safetensors"):
                (checkpoint / name).write_text("{}")
    spec = jobs.JobSpec(train_file=str(tmp_path / "x.ts"), seeds=2)
    monkeypatch.setattr(jobs.os, "replace", watching_replace)
    names = jobs._publish(folder, spec)
    assert names == [
        f"x_20261202-031500_s{seed}_{architecture}"
        for seed in (0, 1)
        for architecture in ("larnn", "lstm")
    ]
    assert seen == [set(names[:i]) for i in range(4)]  # each folder appears whole, by a rename
    assert set(shipped_checkpoints(tmp_path / "user" / "checkpoints")) == set(names)


def test_spec_validation_and_round_trip():
    spec = jobs.JobSpec(train_file="a.csv", test_file="b.csv", readout="last", lr=1e-3, seeds=2)
    assert jobs.JobSpec.from_json(spec.to_json()) == spec
    for fields, name in (
        ({"readout": "max"}, "readout"),
        ({"lr": 0}, "lr"),
        ({"seeds": 0}, "seeds"),
        ({"budget_s": -5}, "budget_s"),
        ({"nice": 30}, "nice"),
    ):
        with pytest.raises(ConfigError, match=f"JobSpec.{name}"):
            jobs.JobSpec(train_file="a.csv", **fields)
    config = spec.train_config("lstm", seed=1)
    assert (config.readout, config.lr, config.seed, config.test) == ("last", 1e-3, 1, "b.csv")


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


def _aged(path: Path, seconds_ago: float) -> Path:
    stamp = time.time() - seconds_ago
    os.utime(path.parent, (stamp, stamp))
    return path


def test_uploads_nothing_uses_are_pruned_beyond_the_newest(tmp_path):
    """Issue 29: every upload stayed on disk under uploads/, refused ones included."""
    root = tmp_path / "user"
    paths = [
        _aged(jobs.save_upload(f"f{i}.npz", f"data {i}".encode(), root), 10_000 + 100 * i)
        for i in range(9)
    ]  # f0 the newest ... f8 the oldest, all older than an hour
    trained_on = paths[8]
    checkpoint = jobs.checkpoints_dir(root) / "mine_larnn"
    checkpoint.mkdir(parents=True)
    split = {"kind": "files", "files": {"train": {"name": "f8.npz", "path": str(trained_on)}}}
    (checkpoint / "metadata.json").write_text(json.dumps({"split": split}))
    fresh = jobs.save_upload("new.npz", b"just now", root)
    assert jobs.kept_uploads(root)[0] == fresh
    removed = jobs.prune_uploads(root, keep=3)
    assert sorted(p.name for p in removed) == [
        "f2.npz",
        "f3.npz",
        "f4.npz",
        "f5.npz",
        "f6.npz",
        "f7.npz",
    ]
    kept = {p.name for p in jobs.kept_uploads(root)}
    assert kept == {"new.npz", "f0.npz", "f1.npz", "f8.npz"}  # 3 newest, and the one in use
    young = _aged(jobs.save_upload("young.npz", b"young", root), 60)
    assert jobs.prune_uploads(root, keep=0) == [paths[0], paths[1]] and young.is_file()


def test_a_refused_upload_is_discarded_unless_something_uses_it(tmp_path):
    root = tmp_path / "user"
    refused = jobs.save_upload("bad.npz", b"not an npz", root)
    assert jobs.discard_upload(refused, root) and not refused.parent.exists()
    outside = tmp_path / "elsewhere.npz"
    outside.write_bytes(b"x")
    assert not jobs.discard_upload(outside, root) and outside.is_file()
    used = jobs.save_upload("used.npz", b"trained on", root)
    checkpoint = jobs.checkpoints_dir(root) / "m"
    checkpoint.mkdir(parents=True)
    files = {"train": {"path": str(used)}}
    (checkpoint / "metadata.json").write_text(json.dumps({"split": {"files": files}}))
    assert not jobs.discard_upload(used, root) and used.is_file()
