"""Background training jobs: a LARNN and its LSTM baseline trained one after the other on a
labelled file, in a separate process, with progress any reader can follow and a Cancel.

Why a process and not a thread: training holds the interpreter between torch calls and would
slow every page of a Streamlit server sharing it, and torch's thread count is per process (the
app's inference sets its own). The worker runs `python -m larnn.jobs FOLDER` at a lower
priority (`nice`, default +10: the app's requests come first) on `threads` torch threads
(default 1: on a 2-core machine one core stays free for the app, and these small models'
batches run about as fast on one thread as on two).

Layout of the user folder (`user_dir()`: $LARNN_USER_DIR, else ~/.local/share/larnn):

    uploads/<sha256[:16]>/<file name>   uploaded data files, by content
    jobs/<job id>/                      spec.json, status.json, lock, worker.log, runs/
    checkpoints/<name>/                 finished checkpoints: the app lists them beside the
                                        shipped ones

One job runs at a time (the machine's cores are few). The worker holds an exclusive `flock` on
the job's `lock` file from before it starts until it exits, so a job is running exactly while
that lock is held, whoever asks, and a crashed worker releases it. Starting a job on the same
files as the running one returns the running one (a second browser tab follows it instead of
starting a duplicate); starting one on other files raises `JobBusy`.

Checkpoints appear only when both models have finished: each is written to the job's `runs/`,
copied to a staging folder below `checkpoints/` and renamed into place, so a cancelled or
crashed run leaves no checkpoint, whole or half, in the folder the app lists.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from larnn.config_base import JsonConfig, require
from larnn.errors import LarnnError

USER_DIR_ENV = "LARNN_USER_DIR"
ARCHITECTURES = ("larnn", "lstm")  # trained in this order
STATES = ("running", "done", "cancelled", "failed")
# No norm on the LARNN's keys/values: batch norm would see padded steps in ragged sets (the
# trainer refuses it), and on BasicMotions none reached 100% validation accuracy where layer
# norm reached 62.5% (scripts/byod_table.py). "medium" is that script's, and the CLI's, size.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "tiny": {
        "larnn": {"hidden_size": 16, "num_layers": 1, "heads": 2, "window": 8, "kv_norm": "none"},
        "lstm": {"hidden_size": 16, "num_layers": 1},
    },
    "small": {
        "larnn": {"hidden_size": 32, "num_layers": 1, "heads": 4, "window": 16, "kv_norm": "none"},
        "lstm": {"hidden_size": 32, "num_layers": 1},
    },
    "medium": {
        "larnn": {"hidden_size": 64, "num_layers": 2, "heads": 8, "window": 16, "kv_norm": "none"},
        "lstm": {"hidden_size": 64, "num_layers": 2},
    },
}


class JobBusy(LarnnError):
    """Another job is running on other data; `running` is that job."""

    def __init__(self, message: str, running: Job) -> None:
        super().__init__(message)
        self.running = running


class JobCancelled(Exception):
    """Raised inside the worker when the job is cancelled (never leaves the worker)."""


def user_dir() -> Path:
    """$LARNN_USER_DIR, else $XDG_DATA_HOME/larnn, else ~/.local/share/larnn."""
    env = os.environ.get(USER_DIR_ENV)
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "larnn"


def checkpoints_dir(root: Path | None = None) -> Path:
    """Where finished jobs put their checkpoints (listed by `shipped_checkpoints`)."""
    return Path(root or user_dir()) / "checkpoints"


def jobs_dir(root: Path | None = None) -> Path:
    return Path(root or user_dir()) / "jobs"


def save_upload(name: str, data: bytes, root: Path | None = None) -> Path:
    """Keep an uploaded file under uploads/<sha256[:16]>/<name>; the same bytes, the same path
    (a checkpoint's metadata records the path and the sha256)."""
    digest = hashlib.sha256(data).hexdigest()
    folder = Path(root or user_dir()).resolve() / "uploads" / digest[:16]
    path = folder / safe_name(name)
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        temporary = folder / f".{path.name}.{os.getpid()}.tmp"
        temporary.write_bytes(data)
        os.replace(temporary, path)
    return path


def safe_name(name: str) -> str:
    """A file name without folders or characters a path should not hold."""
    base = Path(str(name).replace("\\", "/")).name
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", base).lstrip(".")
    return cleaned[:120] or "upload"


# --- what to train ---------------------------------------------------------------------


@dataclass(frozen=True)
class JobSpec(JsonConfig):
    """A job: the files, the size preset and the training length of both models."""

    train_file: str  # a labelled file's path (.ts, .csv, .npz)
    test_file: str | None = None  # None: NAME_TEST.ts beside a .ts, else a held-out fifth
    preset: str = "medium"  # a key of PRESETS, the same size for the LARNN and the LSTM
    epochs: int = 80
    batch_size: int = 16
    seed: int = 0
    threads: int = 1  # torch threads of the worker
    nice: int = 10  # added to the worker's niceness: the app's own work comes first

    def __post_init__(self) -> None:
        owner = "JobSpec"
        require(self.preset in PRESETS, owner, "preset", f"one of {list(PRESETS)}")
        for name in ("epochs", "batch_size", "threads"):
            value = getattr(self, name)
            require(isinstance(value, int) and value >= 1, owner, name, f"must be >= 1: {value!r}")
        require(0 <= self.nice <= 19, owner, "nice", f"must be in 0..19, got {self.nice!r}")

    def train_config(self, architecture: str):
        """The `TrainConfig` of one of the pair."""
        from larnn.train import TrainConfig  # torch: only where training happens

        return TrainConfig(
            architecture=architecture,
            dataset=self.train_file,
            test=self.test_file,
            model=dict(PRESETS[self.preset][architecture]),
            epochs=self.epochs,
            batch_size=self.batch_size,
            patience=max(10, self.epochs // 2),
            seed=self.seed,
            device="cpu",
        )

    def data_key(self) -> str:
        """Identifies the data: the files' contents (one job at a time per data)."""
        digest = hashlib.sha256()
        for path in (self.train_file, self.test_file):
            digest.update(_file_digest(path).encode() if path else b"-")
        return digest.hexdigest()


def _file_digest(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Suggestion:
    preset: str
    epochs: int
    batch_size: int
    reason: str


def suggest(train_cases: int, mean_length: float) -> Suggestion:
    """Defaults for a data set's size: about 160 optimiser steps however many cases (at
    least 15 epochs, at most 80), and a smaller model where an epoch holds many steps.

    BasicMotions (40 cases of 100 steps) gets "medium", 80 epochs of batches of 16: the
    settings of scripts/byod_table.py, which reach 90-100% test accuracy there.
    """
    batch_size = 16 if train_cases < 1000 else 64
    fit_cases = max(1, round(train_cases * 0.8))  # a fifth is held out for validation
    batches = math.ceil(fit_cases / batch_size)
    epochs = min(80, max(15, math.ceil(160 / batches)))
    work = train_cases * mean_length  # series steps per epoch
    preset = "medium" if work <= 200_000 else "small" if work <= 2_000_000 else "tiny"
    reason = (
        f"{train_cases:,} cases x {mean_length:,.0f} steps: {preset}, {epochs} epochs of "
        f"{batches} batch(es) of {batch_size}"
    )
    return Suggestion(preset, epochs, batch_size, reason)


# --- progress, as any reader sees it -----------------------------------------------------


@dataclass(frozen=True)
class EpochRow:
    model: str  # "larnn" or "lstm"
    epoch: int
    loss: float  # mean training loss of the epoch
    val_accuracy: float
    val_loss: float


@dataclass(frozen=True)
class JobStatus:
    """A job as its status.json and its lock say."""

    job_id: str
    state: str  # one of STATES
    model: str | None  # the model training now (running), else the last one
    epochs: int  # per model
    history: tuple[EpochRow, ...] = ()
    message: str = ""
    checkpoints: dict[str, str] = field(default_factory=dict)  # architecture -> name
    dataset_id: str = ""
    started: float = 0.0  # time.time()
    finished: float | None = None

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def fraction(self) -> float:
        """Share of the pair's epochs done (early stopping: a model's end counts whole)."""
        done = 0.0
        for index, architecture in enumerate(ARCHITECTURES):
            rows = [r for r in self.history if r.model == architecture]
            if self.state == "done" or ARCHITECTURES.index(self.model or "larnn") > index:
                done += 1.0
            elif rows:
                done += rows[-1].epoch / self.epochs
        return min(1.0, done / len(ARCHITECTURES))


@dataclass(frozen=True)
class Job:
    """A job folder; read it with `status()`, stop it with `cancel()`."""

    folder: Path

    @property
    def job_id(self) -> str:
        return self.folder.name

    def spec(self) -> JobSpec:
        return JobSpec.from_json((self.folder / "spec.json").read_text())

    def alive(self) -> bool:
        """Whether a worker holds the job's lock (released by the kernel if it dies)."""
        try:
            descriptor = os.open(self.folder / "lock", os.O_RDWR)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(descriptor)  # closing drops a lock taken here
        return False

    def status(self) -> JobStatus:
        try:
            data = json.loads((self.folder / "status.json").read_text())
        except (OSError, ValueError):
            data = {"state": "running", "epochs": 0}
        rows = tuple(EpochRow(**row) for row in data.get("history", []))
        status = JobStatus(
            job_id=self.job_id,
            state=data.get("state", "running"),
            model=data.get("model"),
            epochs=int(data.get("epochs", 0)),
            history=rows,
            message=data.get("message", ""),
            checkpoints=dict(data.get("checkpoints", {})),
            dataset_id=data.get("dataset_id", ""),
            started=float(data.get("started", 0.0)),
            finished=data.get("finished"),
        )
        if status.running and not self.alive() and (self.folder / "cancel").exists():
            # Stopped by Cancel before it could say so (e.g. while starting): it published
            # nothing, as publishing comes last.
            return _replace(status, state="cancelled", message="cancelled; nothing saved")
        if status.running and not self.alive():
            log = self.folder / "worker.log"
            return _replace(
                status,
                state="failed",
                message="the training process stopped unexpectedly"
                + (f" (see {log})" if log.is_file() else ""),
            )
        return status

    def cancel(self) -> None:
        """Ask the worker to stop: a flag it checks after each epoch, and SIGTERM now."""
        (self.folder / "cancel").touch()
        pid = _read_pid(self.folder)
        if pid is not None and self.alive():
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def wait(self, timeout: float, poll: float = 0.2) -> JobStatus:
        """The status once the job is no longer running, or after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.status()
            if not status.running or time.monotonic() > deadline:
                return status
            time.sleep(poll)


def _replace(status: JobStatus, **changes: Any) -> JobStatus:
    return JobStatus(**{**status.__dict__, **changes})


def _read_pid(folder: Path) -> int | None:
    try:
        return int((folder / "pid").read_text())
    except (OSError, ValueError):
        return None


def list_jobs(root: Path | None = None) -> list[Job]:
    """Every job folder, oldest first (job ids begin with their start time)."""
    folder = jobs_dir(root)
    if not folder.is_dir():
        return []
    return [Job(p) for p in sorted(folder.iterdir()) if (p / "spec.json").is_file()]


def active_job(root: Path | None = None) -> Job | None:
    """The running job, or None (a worker that has written its end but not yet exited is
    not running)."""
    return next((job for job in reversed(list_jobs(root)) if job.status().running), None)


def latest_job(root: Path | None = None) -> Job | None:
    jobs = list_jobs(root)
    return jobs[-1] if jobs else None


@contextmanager
def _starting_lock(root: Path | None) -> Iterator[None]:
    """Serialises starts across sessions and processes (held for milliseconds)."""
    folder = jobs_dir(root)
    folder.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(folder / ".start.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def start_job(spec: JobSpec, root: Path | None = None) -> tuple[Job, bool]:
    """Start training `spec` in a worker process; returns (job, started_now).

    If a job on the same data is running, returns it (started_now False) and starts nothing;
    if one on other data is running, raises JobBusy.
    """
    key = spec.data_key()
    root = Path(root or user_dir()).resolve()
    with _starting_lock(root):
        running = active_job(root)
        if running is not None:
            if running.spec().data_key() == key:
                return running, False
            status = running.status()
            minutes = (time.time() - status.started) / 60 if status.started else 0.0
            raise JobBusy(
                f"another training job is running (on {Path(running.spec().train_file).name}, "
                f"started {minutes:.0f} min ago); this machine trains one pair at a time: "
                "wait for it to finish, or cancel it, then press Train again",
                running,
            )
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        folder = jobs_dir(root) / f"{stamp}-{key[:8]}"
        suffix = 1
        while folder.exists():
            suffix += 1
            folder = jobs_dir(root) / f"{stamp}-{key[:8]}-{suffix}"
        folder.mkdir(parents=True)
        # The lock is taken before the job is visible (spec.json) and handed to the worker,
        # which holds it until it exits: no moment in which the job exists but looks dead to
        # another session, and a crashed worker releases it.
        descriptor = os.open(folder / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            _write_status(
                folder,
                {
                    "state": "running",
                    "model": ARCHITECTURES[0],
                    "epochs": spec.epochs,
                    "history": [],
                    "started": time.time(),
                    "dataset_id": f"file:{Path(spec.train_file).name}",
                },
            )
            temporary = folder / "spec.json.tmp"
            temporary.write_text(spec.to_json())
            os.replace(temporary, folder / "spec.json")
            env = {**os.environ, "OMP_NUM_THREADS": str(spec.threads), USER_DIR_ENV: str(root)}
            try:
                with (folder / "worker.log").open("wb") as log:
                    process = subprocess.Popen(
                        [sys.executable, "-m", "larnn.jobs", str(folder)],
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        pass_fds=(descriptor,),
                        start_new_session=True,  # not stopped by a Ctrl-C meant for the app
                        cwd=Path(__file__).resolve().parents[1],
                        env=env,
                    )
            except OSError as error:
                message = f"could not start the training process: {error}"
                _write_status(folder, {"state": "failed", "message": message})
                raise LarnnError(message) from None
            (folder / "pid").write_text(str(process.pid))
        finally:
            os.close(descriptor)
        _reap_later(process)
    return Job(folder), True


def _reap_later(process: subprocess.Popen) -> None:
    """Collect the worker's exit status when it ends, so it leaves no zombie behind."""
    import threading

    threading.Thread(target=process.wait, daemon=True, name="larnn-job-reaper").start()


def _write_status(folder: Path, changes: dict[str, Any]) -> dict[str, Any]:
    """Merge `changes` into status.json, replaced atomically (readers never see half)."""
    path = folder / "status.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = {}
    data.update(changes)
    temporary = folder / "status.json.tmp"
    temporary.write_text(json.dumps(data))
    os.replace(temporary, path)
    return data


# --- the worker ----------------------------------------------------------------------------


def checkpoint_names(spec: JobSpec, job_id: str) -> dict[str, str]:
    """'BasicMotions_TRAIN_tiny_20261202-031500_larnn': file, preset, start time, model."""
    stem = safe_name(Path(spec.train_file).stem)
    stamp = job_id.split("-")[0] + "-" + job_id.split("-")[1]
    return {a: f"{stem}_{spec.preset}_{stamp}_{a}" for a in ARCHITECTURES}


def run_job(folder: Path) -> str:
    """Train the pair of the job in `folder` (the worker's body); returns the final state."""
    cancelled = {"now": False, "deferred": False}

    def on_term(signum, frame) -> None:
        if cancelled["deferred"]:  # publishing: finish the renames, then stop
            cancelled["now"] = True
            return
        raise JobCancelled()

    signal.signal(signal.SIGTERM, on_term)
    folder = Path(folder)
    spec = JobSpec.from_json((folder / "spec.json").read_text())
    os.nice(spec.nice)
    runs = folder / "runs"
    history: list[dict[str, Any]] = []
    _write_status(folder, {"pid": os.getpid()})
    try:
        import torch

        from larnn.train import train

        torch.set_num_threads(spec.threads)
        for architecture in ARCHITECTURES:
            if (folder / "cancel").exists():
                raise JobCancelled()
            config = spec.train_config(architecture)
            out = runs / architecture
            _write_status(folder, {"model": architecture})

            def on_epoch(epoch: int, val_accuracy: float, out: Path = out, a=architecture) -> None:
                # train() has saved resume/progress.json before calling: its last row is this
                # epoch's (training loss, validation accuracy and loss).
                row = json.loads((out / "resume" / "progress.json").read_text())["history"][-1]
                history.append({"model": a, **row})
                _write_status(folder, {"history": history})
                if (folder / "cancel").exists():
                    raise JobCancelled()

            train(config, out, progress=False, on_epoch=on_epoch)
        cancelled["deferred"] = True
        if (folder / "cancel").exists():
            raise JobCancelled()
        names = _publish(folder, spec)
        shutil.rmtree(runs, ignore_errors=True)  # before "done": a reader then sees no runs
        _write_status(
            folder,
            {"state": "done", "checkpoints": names, "finished": time.time(), "message": ""},
        )
        return "done"
    except JobCancelled:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second Cancel: already stopping
        shutil.rmtree(runs, ignore_errors=True)
        _write_status(
            folder,
            {"state": "cancelled", "finished": time.time(), "message": "cancelled; nothing saved"},
        )
        return "cancelled"
    except LarnnError as error:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        shutil.rmtree(runs, ignore_errors=True)
        _write_status(folder, {"state": "failed", "finished": time.time(), "message": str(error)})
        return "failed"
    except Exception as error:  # the page shows it; the log keeps the traceback
        import traceback

        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        traceback.print_exc()
        shutil.rmtree(runs, ignore_errors=True)
        message = f"training failed: {type(error).__name__}: {error}"
        _write_status(folder, {"state": "failed", "finished": time.time(), "message": message})
        return "failed"


def _publish(folder: Path, spec: JobSpec) -> dict[str, str]:
    """Copy both finished checkpoints to a staging folder below checkpoints/ (not listed: a
    level too deep), then rename each into checkpoints/."""
    names = checkpoint_names(spec, folder.name)
    target = checkpoints_dir(folder.parents[1])
    staging = target / ".staging" / folder.name
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for architecture, name in names.items():
        shutil.copytree(folder / "runs" / architecture / "checkpoint", staging / name)
    for name in names.values():
        os.replace(staging / name, target / name)
    shutil.rmtree(staging, ignore_errors=True)
    return names


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m larnn.jobs JOB_FOLDER", file=sys.stderr)
        return 2
    return 0 if run_job(Path(args[0])) in ("done", "cancelled") else 1


if __name__ == "__main__":
    raise SystemExit(main())
