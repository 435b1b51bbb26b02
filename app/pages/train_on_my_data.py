"""Train on my data: upload a labelled set, train a LARNN and its LSTM baseline in the
background, follow them live, open the pair in the explorer.

A page of the explorer's app (Streamlit lists app/pages/ beside app/main.py). It lays out
widgets only: the job runner is `larnn.jobs` (a worker process per job, progress in its
folder, so every session sees the same job); words, summary and curves come from
`app.training`.
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:  # `streamlit run app/main.py` puts app/, not the root, on the path
    sys.path.insert(0, str(_ROOT))


import streamlit as st  # noqa: E402

st.set_option("client.showErrorDetails", "none")  # never a traceback on the page

from app import catalog, training  # noqa: E402
from app.guard import guard, last_resort  # noqa: E402
from larnn import jobs  # noqa: E402
from larnn.classifier import READOUTS  # noqa: E402
from larnn.errors import LarnnError  # noqa: E402

UPLOAD_MB = training.UPLOAD_LIMITS.max_bytes // 1_000_000
JOB_KEY = "train_job"  # session state: the folder of the job this session started


@st.cache_data(show_spinner="Reading the files ...", max_entries=16)
def read_summary(train_path: str, test_path: str | None) -> training.DataSummary:
    """The summary of uploaded files (their paths name their contents' sha256)."""
    train = training.read_upload(Path(train_path))
    test = training.read_upload(Path(test_path)) if test_path else None
    return training.summarise(train, test)


def checked_summary(paths: tuple[Path, Path | None]) -> training.DataSummary:
    """The files' summary; files refused are removed from the user folder at once."""
    try:
        return read_summary(str(paths[0]), str(paths[1]) if paths[1] else None)
    except LarnnError:
        for path in paths:
            if path is not None:
                jobs.discard_upload(path)
        raise


def uploads() -> tuple[Path, Path | None] | None:
    left, right = st.columns(2)
    train = left.file_uploader(
        "Train file: .ts (UEA/UCR), labelled long .csv or .npz",
        type=training.UPLOAD_TYPES,
        key="train_upload",
        max_upload_size=UPLOAD_MB,
        help="A .csv has one row per step: case_id, label, optionally time and group, and one "
        "column per channel. An .npz holds X (N, T, C) and y (N,), optionally lengths and "
        "groups; it is read without unpickling.",
    )
    test = right.file_uploader(
        "Test file (optional; same format and channels)",
        type=training.UPLOAD_TYPES,
        key="test_upload",
        max_upload_size=UPLOAD_MB,
        help="Without one, a fifth of the train file is held out as the test part.",
    )
    st.caption(training.KEPT_UPLOADS_NOTE.format(folder=jobs.uploads_dir()))
    if train is None:
        return kept_files()
    train_path = jobs.save_upload(train.name, train.getvalue())
    test_path = jobs.save_upload(test.name, test.getvalue()) if test is not None else None
    jobs.prune_uploads()
    return train_path, test_path


def kept_files() -> tuple[Path, Path | None] | None:
    """Files uploaded before (kept in the user folder), to pick again after a reload."""
    kept = jobs.kept_uploads()
    if kept:
        left, right = st.columns(2)
        train = left.selectbox(
            "... or a file uploaded before",
            kept,
            index=None,
            format_func=training.upload_label,
            placeholder="Pick a kept file",
            key="kept_train",
        )
        test = right.selectbox(
            "... and its test file (optional)",
            kept,
            index=None,
            format_func=training.upload_label,
            placeholder="None: a fifth held out",
            key="kept_test",
        )
        if train is not None:
            return train, test
    st.info(
        f"Upload a labelled train file (up to {UPLOAD_MB} MB, "
        f"{training.UPLOAD_LIMITS.max_cases:,} cases, "
        f"{training.UPLOAD_LIMITS.max_length:,} steps per case) to see its summary."
    )
    return None


def show_summary(summary: training.DataSummary) -> None:
    st.subheader("Your data")
    columns = st.columns(4)
    cases = "Cases (train / test)" if summary.test_name else "Cases (file / held out for test)"
    columns[0].metric(cases, f"{summary.train_cases} / {summary.test_cases}")
    columns[1].metric("Classes", len(summary.classes))
    columns[2].metric("Channels", len(summary.channels))
    columns[3].metric("Steps per case", summary.lengths)
    left, right = st.columns([2, 3])
    left.dataframe(summary.classes, hide_index=True)
    right.markdown(
        "Channels: "
        + ", ".join(f"`{c}`" for c in summary.channels[:40])
        + (f" and {len(summary.channels) - 40} more" if len(summary.channels) > 40 else "")
    )
    right.caption(summary.test_note)
    right.caption(summary.validation_note)
    if summary.untested_note:
        st.warning(summary.untested_note)


def pick_settings(summary: training.DataSummary, paths: tuple[Path, Path | None]) -> jobs.JobSpec:
    st.subheader("Training")
    key = f"{paths[0].parent.name}_{paths[1].parent.name if paths[1] else ''}"
    columns = st.columns(4)
    readout = columns[0].selectbox(
        "Readout",
        READOUTS,
        index=READOUTS.index("mean"),
        key=f"readout_{key}",
        help="What the classifier reads: the mean of the hidden states over the series, or "
        "the last step's (the paper's).",
    )
    lr = columns[1].number_input(
        "Learning rate", min_value=1e-5, max_value=1.0, value=2e-3, format="%.4f", key=f"lr_{key}"
    )
    seeds = columns[2].number_input(
        "Seeds (a pair each)", min_value=1, max_value=5, value=1, key=f"seeds_{key}"
    )
    budget = columns[3].number_input(
        "Budget per model (s)", min_value=10, max_value=3600, value=300, step=30, key=f"b_{key}"
    )
    spec = jobs.JobSpec(
        train_file=str(paths[0]),
        test_file=str(paths[1]) if paths[1] else None,
        readout=readout,
        lr=float(lr),
        seeds=int(seeds),
        budget_s=float(budget),
    )
    st.caption(training.plan_note(summary, spec))
    return spec


def show_progress(job: jobs.Job, status: jobs.JobStatus) -> None:
    st.progress(status.fraction, text=training.progress_line(status))
    st.plotly_chart(training.curves_figure(status), key=f"curves_{job.job_id}")


@st.fragment(run_every=1.0)
def live_progress(folder: str) -> None:
    """Redrawn every second while the job runs (any session's job); the whole page reruns
    when it ends."""
    job = jobs.Job(Path(folder))
    status = job.status()
    if not status.running:
        st.rerun()
    show_progress(job, status)
    if st.button("Cancel training", key=f"cancel_{job.job_id}"):
        job.cancel()
        st.info("Cancelling: the job stops within a moment and saves nothing.")


def show_result(job: jobs.Job, status: jobs.JobStatus) -> None:
    st.subheader("Last training job")
    show_progress(job, status)
    if status.state == "done":
        names = status.all_checkpoints or tuple(status.checkpoints.values())
        folders = [jobs.checkpoints_dir() / name for name in names]
        for name, reason in status.unlearned.items():
            st.error(
                f"**{name} {reason}.** Its attention views would mean nothing: try more "
                "budget, another learning rate or readout, or compare with MiniRocket below."
            )
        st.dataframe(training.results_table(folders), hide_index=True)
        if st.button("Open in the explorer", type="primary", key=f"open_{job.job_id}"):
            st.session_state[catalog.CHOSEN] = training.explorer_state(status)
            st.switch_page("main.py")
        st.caption(
            f"Saved in `{jobs.checkpoints_dir()}`; the explorer lists them beside the shipped "
            f"checkpoints and offers `{status.dataset_id}` as a dataset."
        )
    elif status.state == "failed":
        st.error(f"**Training failed:** {status.message}")


def main() -> None:
    st.set_page_config(page_title="Train on my data", layout="wide")
    st.title("Train a LARNN and its LSTM baseline on my data")
    st.caption(
        "Upload a labelled time-series classification set, check its summary and press Train. "
        "Both models train in the background by one protocol, settings chosen from the data; "
        "MiniRocket, a strong non-neural classifier, is scored beside them. This page, other "
        "tabs and the explorer stay usable, and every tab sees the same job."
    )
    running = jobs.active_job()
    spec = None
    with guard("Reading the files", "Try another file"):
        paths = uploads()
        if paths is not None:
            summary = checked_summary(paths)
            show_summary(summary)
            spec = pick_settings(summary, paths)
    if spec is not None:
        with guard("Starting the training", "Try another file"):
            if running is None:
                if st.button("Train", type="primary"):
                    running, _ = jobs.start_job(spec)
                    st.session_state[JOB_KEY] = str(running.folder)
            elif running.spec().data_key() == spec.data_key():
                st.info("These files are training already (started here or in another tab).")
            else:
                name = Path(running.spec().train_file).name
                st.warning(
                    f"Another training job is running (on {name}). This machine trains one "
                    "pair at a time: wait for it to finish, or cancel it below, then press Train."
                )
    if running is not None:
        st.subheader(f"Training on {Path(running.spec().train_file).name}")
        live_progress(str(running.folder))
        return
    mine = st.session_state.get(JOB_KEY)
    last = jobs.Job(Path(mine)) if mine and Path(mine).is_dir() else jobs.latest_job()
    if last is not None:
        with guard("The last job", "Try another file"):
            show_result(last, last.status())


with last_resort():
    main()
