"""A Plotly chart that stays on the page across reruns and is redrawn in place.

Streamlit 1.67 names an `st.plotly_chart` element by a hash of its figure, so every figure
that a knob change alters is a new element: taken off the page, put back and drawn twice
(once before its width is known). `live_chart` draws a figure in a custom component
(Streamlit's components v1: an iframe of `live_chart_assets/index.html`) named by its key
alone, so the iframe stays and the browser only calls `Plotly.react` with the new figure
(a knob change in half the time: benchmarks/README.md). A chart out of the browser's view
holds its place (the figure's height) and is drawn when it comes into view, with the last
figure sent: a knob change draws the charts the user sees, not all of them. Charts given
their time steps follow the page's time step t together, in the browser (playback, the arrow
keys, a click that selects t): see the comment at the top of `live_chart_assets/index.html`.

The iframe loads the plotly.js that ships with the plotly Python package; Streamlit serves a
component's files from one folder and follows no link out of it, so the page and a copy of
that script are put in a folder of the temporary directory, once per plotly version.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import plotly
import plotly.graph_objects as go
import streamlit.components.v1 as components

PAGE = Path(__file__).with_name("live_chart_assets") / "index.html"
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def served_folder() -> Path:
    """The component's folder: its page and plotly.min.js, written once per version."""
    page = PAGE.read_bytes()
    tag = hashlib.sha256(page).hexdigest()[:12]
    folder = Path(tempfile.gettempdir()) / f"larnn-live-chart-{plotly.__version__}-{tag}"
    for name, source in (("plotly.min.js", PLOTLY_JS), ("index.html", PAGE)):
        target = folder / name
        if not target.is_file() or target.stat().st_size != source.stat().st_size:
            folder.mkdir(parents=True, exist_ok=True)
            partial = folder / f".{name}.{os.getpid()}"
            shutil.copyfile(source, partial)
            partial.replace(target)  # atomic: a second server never reads half a file
    return folder


_component = components.declare_component("live_chart", path=str(served_folder()))


def live_chart(
    fig: go.Figure,
    key: str,
    on_click: Callable[[], None] | None = None,
    *,
    steps: tuple[int, int] | None = None,
    select_on_click: bool = False,
    playback: bool = False,
) -> dict | None:
    """Draw `fig` under `key`.

    on_click: a click on a point reruns the app after calling it, and st.session_state[key]
    holds {"points": [...], "click": ms}: each point's curve_number, point_index, x, y and
    customdata (a list), ms the click's time. steps: (first, stop), the time steps the chart
    draws: it follows the page's time step t with the other charts given steps, in the
    browser (its time slider, or its shapes named `app.figures.SELECTED_T`), and the arrow
    keys step t while it has the focus. select_on_click: a click selects its point's x as t,
    in the browser (no rerun). playback: a play button over the chart steps through time.
    """
    if on_click is not None and select_on_click:
        raise ValueError("a click either reports to the app or selects t, not both")
    return _component(
        spec=fig.to_json(),
        click="report" if on_click is not None else "select" if select_on_click else None,
        steps=None if steps is None else [int(s) for s in steps],
        playback=playback,
        key=key,
        default=None,
        on_change=on_click,
    )


def figure_of(args_json: str) -> dict:
    """The figure (as a dict) in a live chart's serialised arguments (for tests)."""
    return json.loads(json.loads(args_json)["spec"])
