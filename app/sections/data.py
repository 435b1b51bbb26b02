"""The data section: the split or upload shown (or why there is none), and the models' fit."""

from __future__ import annotations

import hashlib
import json

import streamlit as st
from streamlit.delta_generator import DeltaGenerator
from streamlit.runtime.uploaded_file_manager import UploadedFile

from app import catalog, compatibility, data_views, resources, uploads
from app.guard import guard
from app.values import DataView, Fit, Loaded
from larnn.data import download_uci_har, uci_har_available
from larnn.data.uci_har import CACHE_NAME, default_data_dir


def load_data(
    dataset: str,
    split: str,
    models: list[Loaded],
    series_file: UploadedFile | None,
    preview: DeltaGenerator,
) -> DataView | None:
    if dataset == catalog.UPLOAD:
        return uploaded_series(models, series_file, preview)
    if dataset == "uci_har" and not uci_har_available():
        uci_har_missing()
        return None
    recorded = [(m.name, m.checkpoint.metadata.to_dict()) for m in models]
    definition, origin = data_views.split_definition(dataset, recorded)
    split_json = json.dumps(definition, sort_keys=True)
    task = resources.task(dataset, split_json, resources.data_dir())
    return data_views.split_view(task, split, split_json, origin)


def uci_har_missing() -> None:
    st.subheader("UCI HAR is not on this machine yet")
    st.write(
        "The smartphone activity data (UCI HAR, about 60 MB from archive.ics.uci.edu) is "
        f"downloaded once, checked and cached in `{default_data_dir()}`."
    )
    if st.button("Download UCI HAR", type="primary"):
        bar = st.progress(0.0, text="Connecting to archive.ics.uci.edu ...")
        shown = [-1]

        def progress(done: int, total: int | None) -> None:
            percent = int(100 * done / total) if total else -1
            if percent != shown[0]:
                shown[0] = percent
                text = (
                    f"{done / 1e6:.1f} of {total / 1e6:.1f} MB" if total else f"{done / 1e6:.1f} MB"
                )
                bar.progress(max(percent, 0) / 100, text=text)

        with guard("Download of UCI HAR"):
            download_uci_har(progress=False, progress_callback=progress)
            bar.progress(1.0, text="Downloaded and verified.")
            st.rerun()
    st.info(
        "**Offline?** Copy `uci_har.npz` (or the UCI zip, or the extracted `UCI HAR Dataset` "
        "folder) into a folder on this machine and start the app with "
        "`LARNN_DATA_DIR=/that/folder streamlit run app/main.py`. "
        f"After one successful load the folder holds a fast `{CACHE_NAME}`."
    )


def uploaded_series(
    models: list[Loaded], file: UploadedFile | None, preview: DeltaGenerator
) -> DataView | None:
    if not models:
        preview.warning("Choose a model first: its checkpoint says which channels a series needs.")
        return None
    reference = models[0].checkpoint.metadata
    channels, units = tuple(reference.channel_names), tuple(reference.channel_units)
    with preview:
        left, right = st.columns([2, 3])
        left.markdown(
            f"**Your series.** Channels expected by {models[0].name}: "
            f"{', '.join(f'`{c}`' for c in channels)}. A wide CSV has one column per channel "
            "(by name, or in this order) and an optional `time` column; a long CSV adds a "
            "`case_id` column; `.npy`/`.npz` hold an array (T, C) or (N, T, C)."
        )
        left.download_button(
            "Example CSV for this model",
            uploads.example_csv(uploads.example_series(reference.normalizer), channels),
            file_name="example_series.csv",
            mime="text/csv",
            on_click="ignore",
        )
        if file is None:
            left.info("Upload a series in the sidebar (section 1 · Data) to see it here.")
            return None
        contents = file.getvalue()
        digest = hashlib.sha256(contents).hexdigest()[:16]
        if file.name.lower().endswith(".ts"):
            left.page_link("pages/train_on_my_data.py", label="Train on my data", icon="➡️")
        # The file on its own first: its own faults are named before any model's channels.
        own = resources.user_series(digest, contents, file.name, None)
        series = resources.user_series(digest, contents, file.name, channels)
        view = data_views.upload_view(series, own.channel_names, file.name, digest, units)
        n, length, _ = series.X.shape  # (N, T, C)
        read = f"Read {file.name}: {n} case(s) of {length} steps. {series.mapping_note}"
        fits = [compatibility.data_fit(m.role, m.checkpoint.metadata, view) for m in models]
        if all(fit.belongs for fit in fits):
            left.success(read)
        else:  # no green box: the warnings below say why the models and the data do not belong
            left.info(f"{read} The models below run on it, but see the warnings.")
        right.caption(f"Preview: the first steps of case {series.case_ids[0]}")
        right.dataframe(uploads.series_preview(series.X[0], channels), height=210, hide_index=True)
    return view


def model_notes(models: list[Loaded], data: DataView) -> tuple[list[Loaded], dict[str, Fit]]:
    """Show whether each model fits the data; return the usable ones and every fit."""
    usable, fits = [], {}
    for model in models:
        fit = compatibility.data_fit(model.role, model.checkpoint.metadata, data)
        fits[model.role] = fit
        for problem in fit.problems:
            st.error(problem)
        if fit.notes:  # one box per model: its notes as a list where there are several
            st.warning(
                fit.notes[0] if len(fit.notes) == 1 else "\n".join(f"- {n}" for n in fit.notes)
            )
        if fit.usable:
            usable.append(model)
    return usable, fits
