"""What every figure of the app shares: colours, margins, the plain-spec helpers, the title
and subtitle, the standalone HTML page. Data in, Plotly figure out; no Streamlit, no model.

The figures themselves are by topic: `app.timeline_figures` (the timeline and the overview),
`app.heatmap_figures` (attention heatmaps), `app.chart_figures` (probabilities, the window
sweep) and `app.faithfulness_figures`. The figures redrawn on every knob change (timeline,
heatmaps) are written as plain Plotly specs (trace and layout dicts, subplot domains computed
here) and wrapped without Plotly's per-property validation, which costs ~10x the drawing
itself; the tests validate each of them in full. Shape letters: T time steps, C channels,
K window slots, R heatmap rows.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from html import escape

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative

CHANNEL_COLORS = qualitative.D3
CLASS_COLORS = qualitative.Set2
MODEL_COLORS = {"LARNN": "#4c72b0", "LSTM": "#dd8452"}
TRUTH_COLOR = "#e45756"
STEP_COLOR = "#d62728"
WINDOW_FILL = "rgba(76, 114, 176, 0.10)"
HEATMAP_SCALE = "Viridis"
FONT = {"size": 13}
TITLE_HEIGHT = 48  # px the top margin grows by for a title and a one-line subtitle (`titled`)
SUBTITLE_LINE = 16  # px for each further line of the subtitle
# The shapes marking the page's time step t on a chart without a time slider (the heatmaps):
# each spans the column of step t, x0 = t - 1/2 to x1 = t + 1/2. The live chart moves them in
# the browser as t moves (app/live_chart_assets/index.html finds them by this name).
SELECTED_T = "selected t"
# The heatmap uses it too, so the time axes align. Fixed (no autoexpand): Plotly otherwise
# measures its legends, colour bars and slider after drawing and draws the whole figure again
# to make room (doAutoMargin: ~30% of the browser's time on a knob change, Chrome's profiler).
TIMELINE_MARGIN = {"l": 60, "r": 210, "t": 40, "b": 45, "autoexpand": False}


def pick_color(colors: Sequence[str], i: int) -> str:
    return colors[i % len(colors)]


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) of each run of True in a 1-D bool array."""
    padded = np.concatenate([[False], np.asarray(mask, dtype=bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def spec_figure(data: list[dict], layout: dict) -> go.Figure:
    """A Figure from specs this module wrote, skipping Plotly's validation (tests do it)."""
    return go.Figure({"data": data, "layout": layout}, _validate=False)


def axis_suffix(i: int) -> str:
    """Subplot i (0-based) -> the axis suffix Plotly uses: '', '2', '3', ..."""
    return "" if i == 0 else str(i + 1)


def stack(heights: Sequence[float], gap: float) -> list[tuple[float, float]]:
    """Vertical domains (bottom, top) of stacked rows, first row on top."""
    scale = (1.0 - gap * (len(heights) - 1)) / sum(heights)
    domains, top = [], 1.0
    for h in heights:
        bottom = max(top - h * scale, 0.0)
        domains.append((bottom, top))
        top = bottom - gap
    return domains


def subplot_title(text: str, x: float, y: float) -> dict:
    return {
        "text": text,
        "x": x,
        "y": y,
        "xref": "paper",
        "yref": "paper",
        "xanchor": "center",
        "yanchor": "bottom",
        "showarrow": False,
        "font": {"size": 13},
    }


def vline(x: float, axis: str, color: str = STEP_COLOR, width: float = 2) -> dict:
    return {
        "type": "line",
        "x0": x,
        "x1": x,
        "y0": 0,
        "y1": 1,
        "xref": f"x{axis}",
        "yref": f"y{axis} domain",
        "line": {"color": color, "width": width, "dash": "dot"},
    }


def vrect(x0: float, x1: float, axis: str, color: str, opacity: float = 1.0) -> dict:
    return {
        "type": "rect",
        "x0": x0,
        "x1": x1,
        "y0": 0,
        "y1": 1,
        "xref": f"x{axis}",
        "yref": f"y{axis} domain",
        "fillcolor": color,
        "opacity": opacity,
        "line": {"width": 0},
        "layer": "below",
    }


def time_marker(t: int, axis: str) -> dict:
    """The outline of column t on subplot `axis` (a SELECTED_T shape): the page's time step."""
    return {
        "type": "rect",
        "name": SELECTED_T,
        "x0": t - 0.5,
        "x1": t + 0.5,
        "y0": 0,
        "y1": 1,
        "xref": f"x{axis}",
        "yref": f"y{axis} domain",
        "line": {"color": STEP_COLOR, "width": 2},
        "layer": "above",
    }


def legend_marker(name: str, color: str, legend: str = "legend") -> dict:
    """A legend entry without data, for a shaded band."""
    return {
        "type": "scatter",
        "x": [None],
        "y": [None],
        "mode": "markers",
        "marker": {"color": color, "symbol": "square", "size": 12},
        "name": name,
        "legend": legend,
    }


# --- titles and pages ------------------------------------------------------------------------


def titled(
    fig: go.Figure,
    subtitle: str,
    title: str | None = None,
    line_chars: int = 160,
    lines: int | None = None,
) -> go.Figure:
    """The figure with a title at the top (its own when `title` is None) and, under it, what
    it shows (models, knobs, data), broken at ' · ' into lines of about `line_chars`
    characters; the top margin grows to hold them. With `lines`, the margin holds that many
    whatever the subtitle (a longer one is cut with '…'): the plot stays in place when the
    subtitle changes, so a second click on a cell lands on the same cell."""
    shown = wrap_parts(subtitle, line_chars)
    if lines is not None and len(shown) > lines:
        rest = " · ".join(shown[lines - 1 :])
        shown = [*shown[: lines - 1], rest[: line_chars - 1].rstrip() + "…"]
    top = fig.layout.margin.t if fig.layout.margin.t is not None else 40
    # Assigned, not passed to update_layout: that took ten times as long (4 ms a figure), on
    # every figure of every run.
    fig.layout.title = {
        "text": fig.layout.title.text if title is None else title,
        "subtitle": {"text": "<br>".join(shown), "font": {"size": 12}},
        "x": 0,
        "xanchor": "left",
        "xref": "paper",
        "y": 1,
        "yref": "container",
        "yanchor": "top",
        "pad": {"t": 8},
        "font": {"size": 15},
    }
    fig.layout.margin.t = top + TITLE_HEIGHT + SUBTITLE_LINE * ((lines or len(shown)) - 1)
    return fig


def wrap_parts(text: str, line_chars: int, separator: str = " · ") -> list[str]:
    """Lines of at most about `line_chars` characters, broken only between parts."""
    lines: list[str] = []
    for part in text.split(separator):
        if lines and len(lines[-1]) + len(separator) + len(part) <= line_chars:
            lines[-1] += separator + part
        else:
            lines.append(part)
    return lines


def figure_html(fig: go.Figure, offline: bool = True) -> str:
    """A standalone HTML page of the figure; offline embeds plotly.js (~4.5 MB), else a CDN link.

    The page's <title> is the figure's title and subtitle (what it shows).
    """
    html = fig.to_html(include_plotlyjs=True if offline else "cdn", full_html=True)
    title = fig.layout.title
    words = " · ".join(plain_text(t) for t in (title.text, title.subtitle.text) if t)
    words = escape(words or "LARNN figure", quote=False)
    return html.replace("<head>", f"<head>\n    <title>{words}</title>", 1)


def plain_text(text: str) -> str:
    """A Plotly title as plain words: its line breaks ('<br>') as ' · ', other tags dropped
    (a page's <title> shows markup literally)."""
    text = re.sub(r"<br\s*/?>", " · ", text, flags=re.IGNORECASE)
    return re.sub(r"<[^>]*>", "", text)
