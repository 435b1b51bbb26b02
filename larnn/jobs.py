"""Background training jobs: a LARNN and its LSTM baseline trained one after the other on a
labelled file, in a separate process, with progress any reader can follow and a Cancel.

Why a process and not a thread: training holds the interpreter between torch calls and would
slow every page of a Streamlit server sharing it, and torch's thread count is per process (the
app's inference sets its own). The worker runs `python -m larnn.jobs FOLDER` at a lower
priority (`nice`, default +10: the app's requests come first) on `threads` torch threads
(default 1: on a 2-core machine one core stays free for the app, and these small models'
batches run about as fast on one thread as on two).

Layout of the user folder (`user_dir()`: $LARNN_USER_DIR, else ~/.local/share/larnn):

    uploads/<sha256[:16]>/<file name>   uploaded data files, by content (see "uploads kept")
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

from larnn.classifier import ARCHITECTURES, READOUTS
from larnn.config_base import JsonConfig, require
from larnn.errors import LarnnError

USER_DIR_ENV = "LARNN_USER_DIR"
STATES = ("running", "done", "cancelled", "failed")


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


def uploads_dir(root: Path | None = None) -> Path:
    return Path(root or user_dir()).resolve() / "uploads"


def save_upload(name: str, data: bytes, root: Path | None = None) -> Path:
    """Keep an uploaded file under uploads/<sha256[:16]>/<name>; the same bytes, the same path
    (a checkpoint's metadata records the path and the sha256). Uploading it again makes it
    the newest (see `prune_uploads`)."""
    digest = hashlib.sha256(data).hexdigest()
    folder = uploads_dir(root) / digest[:16]
    path = folder / safe_name(name)
    if path.is_file():
        os.utime(folder)
    else:
        folder.mkdir(parents=True, exist_ok=True)
        temporary = folder / f".{path.name}.{os.getpid()}.tmp"
        temporary.write_bytes(data)
        os.replace(temporary, path)
    return path


# --- uploads kept --------------------------------------------------------------------------
# An upload is kept while something reads it: a running job's files, and every file a saved
# checkpoint was trained on (the explorer rebuilds its test split from it). Of the others,
# accepted uploads stay to be picked again after a reload: the KEEP_UPLOADS newest, and any
# younger than KEEP_FRESH_S (a file whose summary someone is reading now). A refused file is
# removed at once (`discard_upload`); the rest by `prune_uploads`, run on each upload.
KEEP_UPLOADS = 5
KEEP_FRESH_S = 3600.0


def kept_uploads(root: Path | None = None) -> list[Path]:
    """The uploaded files on disk, newest first."""
    folder = uploads_dir(root)
    if not folder.is_dir():
        return []
    found = [
        (entry.stat().st_mtime, path)
        for entry in folder.iterdir()
        if entry.is_dir()
        for path in entry.iterdir()
        if path.is_file() and not path.name.startswith(".")
    ]
    return [path for _, path in sorted(found, key=lambda pair: pair[0], reverse=True)]


def uploads_in_use(root: Path | None = None) -> set[Path]:
    """The uploaded files something still reads: the running job's files, and the files of
    every checkpoint in checkpoints/ (recorded in its metadata's split)."""
    used: set[Path] = set()
    running = active_job(root)
    if running is not None:
        spec = running.spec()
        used.update(Path(p).resolve() for p in (spec.train_file, spec.test_file) if p)
    folder = checkpoints_dir(root)
    for metadata in folder.glob("*/metadata.json") if folder.is_dir() else ():
        try:
            files = json.loads(metadata.read_text()).get("split", {}).get("files", {})
            used.update(Path(record["path"]).resolve() for record in files.values())
        except (OSError, ValueError, AttributeError, KeyError, TypeError):
            continue
    return used


def discard_upload(path: Path, root: Path | None = None) -> bool:
    """Remove a refused upload's folder at once (unless a job or checkpoint uses the same
    bytes); True when removed. Paths outside uploads/ are never touched."""
    path = Path(path).resolve()
    folder = path.parent
    if folder.parent != uploads_dir(root) or folder in {u.parent for u in uploads_in_use(root)}:
        return False
    shutil.rmtree(folder, ignore_errors=True)
    return True


def prune_uploads(
    root: Path | None = None, keep: int = KEEP_UPLOADS, fresh_s: float = KEEP_FRESH_S
) -> list[Path]:
    """Remove the uploads nothing uses any more, beyond the `keep` newest and those younger
    than `fresh_s` seconds; returns the files removed."""
    used = {path.parent for path in uploads_in_use(root)}  # a folder holds one content
    now = time.time()
    removed = []
    for rank, path in enumerate(kept_uploads(root)):
        young = now - path.parent.stat().st_mtime < fresh_s
        if rank < keep or young or path.parent in used:
            continue
        shutil.rmtree(path.parent, ignore_errors=True)
        removed.append(path)
    return removed


def safe_name(name: str) -> str:
    """A file name without folders or characters a path should not hold."""
    base = Path(str(name).replace("\\", "/")).name
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", base).lstrip(".")
    return cleaned[:120] or "upload"


# --- what to train ---------------------------------------------------------------------


@dataclass(frozen=True)
class JobSpec(JsonConfig):
    """A job: the files and what the page lets one set of the default protocol
    (larnn.protocol), which chooses everything else from the data for both models alike."""

    train_file: str  # a labelled file's path (.ts, .csv, .npz)
    test_file: str | None = None  # None: NAME_TEST.ts beside a .ts, else a held-out fifth
    readout: str = "mean"  # what the head reads (ClassifierConfig.readout)
    lr: float = 2e-3
    seeds: int = 1  # pairs trained, seeds 0 .. seeds-1
    budget_s: float = 300.0  # wall-clock seconds per model (folds and refit)
    threads: int = 1  # torch threads of the worker
    nice: int = 10  # added to the worker's niceness: the app's own work comes first

    def __post_init__(self) -> None:
        owner = "JobSpec"
        require(self.readout in READOUTS, owner, "readout", f"one of {READOUTS}")
        require(isinstance(self.lr, (int, float)) and 0 < self.lr <= 1, owner, "lr", "in (0, 1]")
        for name in ("seeds", "threads"):
            value = getattr(self, name)
            require(isinstance(value, int) and value >= 1, owner, name, f"must be >= 1: {value!r}")
        require(
            isinstance(self.budget_s, (int, float)) and self.budget_s > 0,
            owner,
            "budget_s",
            f"must be a positive number of seconds, got {self.budget_s!r}",
        )
        require(0 <= self.nice <= 19, owner, "nice", f"must be in 0..19, got {self.nice!r}")

    def train_config(self, architecture: str, seed: int = 0):
        """The `TrainConfig` of one of the pair, before the protocol plans the rest."""
        from larnn.train import TrainConfig  # torch: only where training happens

        return TrainConfig(
            architecture=architecture,
            dataset=self.train_file,
            test=self.test_file,
            readout=self.readout,
            lr=self.lr,
            seed=seed,
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


# --- progress, as any reader sees it -----------------------------------------------------


@dataclass(frozen=True)
class EpochRow:
    model: str  # "larnn" or "lstm"
    epoch: int  # within its stage
    loss: float  # mean training loss of the epoch
    val_accuracy: float  # of its fold (a refit has none: its training accuracy's stand-in)
    val_loss: float
    stage: str = ""  # "fold 2/5" or "refit" (larnn.protocol)
    epochs: int = 0  # of the stage
    seed: int = 0


@dataclass(frozen=True)
class JobStatus:
    """A job as its status.json and its lock say."""

    job_id: str
    state: str  # one of STATES
    model: str | None  # the model training now (running), else the last one
    stages: int  # stages of the whole job: seeds x models x (folds + refit); 0 until planned
    stages_done: int
    history: tuple[EpochRow, ...] = ()
    message: str = ""
    checkpoints: dict[str, str] = field(default_factory=dict)  # architecture -> name (seed 0)
    all_checkpoints: tuple[str, ...] = ()  # every published name, every seed
    verdicts: dict[str, dict] = field(default_factory=dict)  # name -> larnn.verdict's dict
    references: dict[str, dict] = field(default_factory=dict)  # seed -> larnn.rocket's score
    dataset_id: str = ""
    started: float = 0.0  # time.time()
    finished: float | None = None

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def fraction(self) -> float:
        """Share of the job's stages done, the running one by its epochs."""
        if self.state == "done":
            return 1.0
        if not self.stages:
            return 0.0
        done = float(self.stages_done)
        if (
            self.history
            and self.history[-1].epochs
            and self.history[-1].epoch < self.history[-1].epochs
        ):
            done += self.history[-1].epoch / self.history[-1].epochs
        return min(1.0, done / self.stages)

    @property
    def unlearned(self) -> dict[str, str]:
        """Published models that did not learn: name -> the reason."""
        return {
            name: verdict["reason"]
            for name, verdict in self.verdicts.items()
            if not verdict.get("learned", True)
        }


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
            data = {"state": "running"}
        rows = tuple(EpochRow(**row) for row in data.get("history", []))
        status = JobStatus(
            job_id=self.job_id,
            state=data.get("state", "running"),
            model=data.get("model"),
            stages=int(data.get("stages", 0)),
            stages_done=int(data.get("stages_done", 0)),
            history=rows,
            message=data.get("message", ""),
            checkpoints=dict(data.get("checkpoints", {})),
            all_checkpoints=tuple(data.get("all_checkpoints", ())),
            verdicts=dict(data.get("verdicts", {})),
            references=dict(data.get("references", {})),
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
                    "stages": 0,
                    "stages_done": 0,
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


def checkpoint_names(spec: JobSpec, job_id: str, seed: int) -> dict[str, str]:
    """'BasicMotions_TRAIN_20261202-031500_s0_larnn': file, start time, seed, model."""
    stem = safe_name(Path(spec.train_file).stem)
    stamp = job_id.split("-")[0] + "-" + job_id.split("-")[1]
    return {a: f"{stem}_{stamp}_s{seed}_{a}" for a in ARCHITECTURES}


def run_job(folder: Path) -> str:
    """Train the pairs of the job in `folder` (the worker's body); returns the final state.

    Each seed: MiniRocket's reference score, then the LARNN and the LSTM by the default
    protocol (larnn.protocol: planned from the data, folds, refit), the page's settings
    (readout, learning rate) kept as set."""
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

        from larnn.protocol import DataShape, fit_reference, plan, run_protocol
        from larnn.tasks import load_task

        torch.set_num_threads(spec.threads)
        first = spec.train_config(ARCHITECTURES[0])
        task = load_task(first.dataset, first.split_definition())
        shape = DataShape.of(task.train.concatenate(task.val))
        folds = plan(first, shape).folds
        progress = {"stages": spec.seeds * len(ARCHITECTURES) * (folds + 1), "stages_done": 0}
        planned = {"folds": folds, "skipped": 0}  # fold stages a budget stop left out
        _write_status(folder, progress)
        verdicts: dict[str, dict] = {}
        references: dict[str, dict] = {}
        for seed in range(spec.seeds):
            reference = fit_reference(spec.train_config(ARCHITECTURES[0], seed))
            if reference is not None:
                references[str(seed)] = reference
                _write_status(folder, {"references": references})
            for architecture in ARCHITECTURES:
                if (folder / "cancel").exists():
                    raise JobCancelled()
                config = plan(spec.train_config(architecture, seed), shape, {"readout", "lr"})
                _write_status(folder, {"model": architecture})

                def on_epoch(stage: str, epochs: int, row: dict, a=architecture, s=seed) -> None:
                    history.append({"model": a, **row, "stage": stage, "epochs": epochs, "seed": s})
                    if "/" in stage:  # "fold 2/3": the budget may have left fewer folds
                        planned["folds"] = int(stage.split("/")[1])
                    elif row["epoch"] == 1:  # the refit: folds the budget stopped won't come
                        ran = {r["stage"] for r in history if (r["model"], r["seed"]) == (a, s)}
                        planned["skipped"] += planned["folds"] + 1 - len(ran)
                    progress["stages"] = (
                        spec.seeds * len(ARCHITECTURES) * (planned["folds"] + 1)
                        - planned["skipped"]
                    )
                    if row["epoch"] == epochs:
                        progress["stages_done"] += 1
                    _write_status(folder, {"history": history, **progress})
                    if (folder / "cancel").exists():
                        raise JobCancelled()

                result = run_protocol(
                    config,
                    runs / f"{architecture}_s{seed}",
                    budget_s=spec.budget_s,
                    reference=reference,
                    progress=False,
                    on_epoch=on_epoch,
                )
                name = checkpoint_names(spec, folder.name, seed)[architecture]
                verdicts[name] = result.verdict.to_dict()
                _write_status(folder, {"verdicts": verdicts})
        cancelled["deferred"] = True
        if (folder / "cancel").exists():
            raise JobCancelled()
        names = _publish(folder, spec)
        shutil.rmtree(runs, ignore_errors=True)  # before "done": a reader then sees no runs
        _write_status(
            folder,
            {
                "state": "done",
                "checkpoints": checkpoint_names(spec, folder.name, 0),
                "all_checkpoints": names,
                "finished": time.time(),
                "message": "",
            },
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


def _publish(folder: Path, spec: JobSpec) -> list[str]:
    """Copy every finished checkpoint to a staging folder below checkpoints/ (not listed: a
    level too deep), then rename each into checkpoints/."""
    target = checkpoints_dir(folder.parents[1])
    staging = target / ".staging" / folder.name
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    names = []
    for seed in range(spec.seeds):
        for architecture, name in checkpoint_names(spec, folder.name, seed).items():
            run = folder / "runs" / f"{architecture}_s{seed}" / "checkpoint"
            shutil.copytree(run, staging / name)
            names.append(name)
    for name in names:
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
