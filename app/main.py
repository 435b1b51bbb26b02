"""The LARNN explorer: `streamlit run app/main.py` from the repository root.

This file lays out the page only: the sidebar's pickers are in `app.sidebar`, the result
sections in `app.sections` (one module each), the values they hand each other in
`app.values`. What they show comes from pure functions: `larnn.inference` (inference and
views of attention) and the topic modules under `app/` (`catalog`, `uploads`, `sequences`,
`knobs`, `compatibility`, `data_views`, `faithfulness`, `describe`, `figures`, `export`);
`app.resources` caches them. Every panel runs inside `guard`, so a failure shows a message
for people, never a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:  # `streamlit run app/main.py` puts app/, not the root, on the path
    sys.path.insert(0, str(_ROOT))

import streamlit as st  # noqa: E402

st.set_option("client.showErrorDetails", "none")  # a last guard: never a traceback on the page
st.set_option("client.toolbarMode", "minimal")  # no developer menu or deploy button

# The title first, before the imports below load PyTorch (seconds on a cold start) and the
# page loads models and data: a first visitor sees at once that the page is coming.
st.set_page_config(page_title="LARNN explorer", layout="wide")
st.title("LARNN explorer: what does the cell attend to?")
st.caption(
    "A LARNN is an LSTM that, at every step t, attends over its last k' cell states "
    "(steps j = t−k' … t−1). Pick data, models and a sequence in the sidebar; see where "
    "each step looks, how the knobs change it, and how the LARNN compares with an LSTM."
)
STARTING = st.empty()
if "started" not in st.session_state:  # a session's first run: say what is going on
    STARTING.info(
        "Starting the explorer: loading PyTorch, the models and the data. On a fresh server "
        "this takes up to half a minute (the compiled loops are built once per machine)."
    )

import torch  # noqa: E402
from streamlit.elements.lib.mutable_expander_container import ExpanderContainer  # noqa: E402

from app import describe, resources, sidebar  # noqa: E402
from app.catalog import UPLOAD, describe_shipped  # noqa: E402
from app.faithfulness import FaithfulnessNumbers  # noqa: E402
from app.guard import guard, last_resort  # noqa: E402
from app.sections import (  # noqa: E402
    attention,
    data,
    export,
    faithfulness,
    intro,
    models,
    predictions,
    split_attention,
    sweep,
)
from app.values import ROLES, Loaded, ModelRun  # noqa: E402

# Torch's intra-op threads, for the whole app process (every session runs in it): one. On the
# 2-core machine, one thread ran a 200-sequence, 3-window UCI HAR sweep in 0.3 s and one
# sequence with attention in 7 ms; two threads took 0.7-7.3 s and 36 ms, contending with each
# other, with other sessions and with other jobs on the same cores.
TORCH_THREADS = 1

# The sections under the predictions, each run only while it is open: a knob change reruns
# the whole page, and drawn, these four cost each change 50-100 ms of the 2-core machine's
# 300-420 ms (benchmarks/README.md, "The analyses open on demand"). The three analyses are
# fragments (`analysis`): opening one, closing it or using its widgets reruns it alone.
SPLIT = "Attention over the whole split: by lag, per head, per class; channel importance"
SWEEP = "Window sweep: accuracy against k'"
FAITHFULNESS = "Faithfulness: does what a model attends to decide its prediction?"
EXPORT = "Export: tables, numbers and figures"
MODELS = "Models: configuration, data, classes and recorded metrics"
SECTION_KEYS = {
    SPLIT: "open_split",
    SWEEP: "open_sweep",
    FAITHFULNESS: "open_faithfulness",
    EXPORT: "open_export",
    MODELS: "open_models",
}


def on_demand(label: str) -> ExpanderContainer:
    """A closed expander whose contents run only while it is open (its `.open`); opening or
    closing it reruns the page."""
    return st.expander(label, key=SECTION_KEYS[label], on_change="rerun")


# Counts the page's full runs: an analysis that sees no new one since its last run reran alone.
PAGE_RUN = "page_run"
Result = TypeVar("Result")


@st.fragment
def analysis(label: str, title: str, run: Callable[[], Result]) -> Result | None:
    """An analysis on demand (`run` while it is open; None while closed), as a fragment:
    opening or closing it, or one of its widgets, reruns it alone, not the page above it
    (0.5-1 s of the 2-core machine and the browser). Export lists what the page has drawn, so
    while Export is open such a rerun is followed by one of the whole page."""
    result = None  # also where `guard` shows a failure
    with on_demand(label) as section, guard(title):
        if section.open:
            result = run()
    seen = f"{SECTION_KEYS[label]}_{PAGE_RUN}"
    alone = st.session_state.get(seen) == st.session_state[PAGE_RUN]
    st.session_state[seen] = st.session_state[PAGE_RUN]
    if alone and st.session_state.get(SECTION_KEYS[EXPORT]):
        st.rerun(scope="app")
    return result


def model_details(loaded: list[Loaded]) -> None:
    with on_demand(MODELS) as section:
        if section.open:
            models.model_details(loaded)


def main() -> None:
    torch.set_num_threads(TORCH_THREADS)
    st.session_state[PAGE_RUN] = st.session_state.get(PAGE_RUN, 0) + 1
    shipped = describe_shipped(resources.shipped_folders())
    with st.sidebar:
        dataset, split = sidebar.pick_dataset(shipped)
        series_file = sidebar.pick_series_file() if dataset == UPLOAD else None
        st.header("2 · Models")
        readers = None
        if series_file is not None:
            with guard("Reading the series file"):
                readers = sidebar.series_readers(series_file, shipped)
        picked = [
            sidebar.pick_model(architecture, dataset, shipped, readers) for architecture in ROLES
        ]
    loaded = [m for m in picked if m is not None]
    preview = st.container()
    shown = None
    with guard("Loading the data"):
        shown = data.load_data(dataset, split, loaded, series_file, preview)
    if shown is None:
        model_details(loaded)
        return
    if shown.dataset_id is not None:  # an upload is described above, with its preview
        st.caption(shown.description)
    usable, fits = data.model_notes(loaded, shown)
    for model in usable:
        warning = describe.unlearned_warning(
            model.role, model.name, model.checkpoint.metadata.metrics
        )
        if warning:
            st.error(warning)
    larnn_model = next((m for m in usable if m.role == "LARNN"), None)
    lstm_model = next((m for m in usable if m.role == "LSTM"), None)
    if larnn_model is None:
        st.info(
            "No LARNN runs on this data, so there is no attention to show: choose or upload a "
            "LARNN checkpoint trained on it."
        )
    index = 0
    choice = None
    with st.sidebar:
        with guard("Choosing the sequence"):
            index = sidebar.pick_sequence(
                shown,
                larnn_model if larnn_model and fits["LARNN"].labels_comparable else None,
                lstm_model if lstm_model and fits["LSTM"].labels_comparable else None,
            )
        if larnn_model is not None:
            with guard("LARNN knobs"):
                choice = sidebar.pick_knobs(larnn_model, len(shown.sequence(index)))
    runs: dict[str, ModelRun] = {}  # by role, LARNN first
    with guard("Running the models"):
        not_compiled = resources.compiled_loops()
        if not_compiled:
            st.caption(f"Running LARNN's slower Python loop: {not_compiled}")
        x = shown.sequence(index)  # (T, C), without padding
        if larnn_model is not None and choice is not None:
            inference = resources.infer(larnn_model.key, larnn_model.checkpoint, x, choice.knobs)
            runs["LARNN"] = ModelRun(larnn_model, inference)
        if lstm_model is not None:
            inference = resources.infer(lstm_model.key, lstm_model.checkpoint, x)
            runs["LSTM"] = ModelRun(lstm_model, inference)
    with guard("Introduction"):
        intro.intro_section(shown, split, index, usable, choice)
    with guard("Summary"):
        predictions.summary_row(shown, index, runs, fits, choice)
    STARTING.empty()  # the first results are up
    drawn = attention.attention_sections(shown, index, runs, choice)
    numbers = FaithfulnessNumbers()
    # Containers: the predictions' live chart keeps its place (see app.sections.attention).
    with st.container(), guard("Memory edits and attribution"):
        edit_drawn, numbers = faithfulness.edit_sections(shown, index, runs, choice)
        drawn.update(edit_drawn)
    with st.container(), guard("Predictions"):
        drawn.update(predictions.predictions_section(shown, index, runs, choice))
    st.subheader("Analyses on demand")
    st.caption("Each section runs while it is open; closed, a knob change does not redraw it.")
    drawn.update(
        analysis(
            SPLIT,
            "Attention over the split",
            lambda: split_attention.split_section(shown, larnn_model, lstm_model, fits, choice),
        )
        or {}
    )
    drawn.update(
        analysis(
            SWEEP,
            "Window sweep",
            lambda: sweep.sweep_section(shown, larnn_model, lstm_model, fits, choice),
        )
        or {}
    )
    faith = analysis(
        FAITHFULNESS,
        "Faithfulness",
        lambda: faithfulness.faithfulness_section(shown, index, runs, fits, numbers),
    )
    if faith is not None:
        faith_drawn, numbers = faith
        drawn.update(faith_drawn)
    with on_demand(EXPORT) as section, guard("Export"):
        if section.open:
            export.export_section(shown, index, runs, choice, drawn, numbers)
    model_details(loaded)


try:
    with last_resort():
        main()
finally:
    STARTING.empty()
    st.session_state["started"] = True
