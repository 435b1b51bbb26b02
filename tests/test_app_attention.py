"""The attention sections on the page (app.sections.attention) under AppTest: the time step t
the heatmaps and the timeline share, what a click on the heatmap does, and a heatmap that
stays in place when a click hides a step. Moving t in the browser: tests/browser.
"""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest
from test_app import APP, _no_failure, chart_nodes

from app import figures
from app.live_chart import figure_of

T = 32  # the tiny recall probe's steps


@pytest.fixture
def app(checkpoints, monkeypatch) -> AppTest:
    monkeypatch.setenv("LARNN_CHECKPOINT_DIR", str(checkpoints))
    return AppTest.from_file(str(APP), default_timeout=60)


def live_charts(at: AppTest) -> dict[str, tuple[dict, dict]]:
    """{key: (arguments sent to the browser, figure)} of the page's live charts; the heatmap's
    key is 'heatmap' (on the page it ends with the model's key)."""
    charts = {}
    for node in chart_nodes(at):
        if node.type == "component_instance":
            key = "heatmap" if node.key.startswith("heatmap_") else node.key
            charts[key] = (json.loads(node.proto.json_args), figure_of(node.proto.json_args))
    return charts


def _marks(figure: dict) -> list[tuple[float, float]]:
    return [
        (s["x0"], s["x1"])
        for s in figure["layout"].get("shapes", [])
        if s.get("name") == "selected t"
    ]


def test_the_heatmaps_and_the_timeline_share_the_time_step(app):
    at = app.run()
    _no_failure(at)
    charts = live_charts(at)
    heatmap_args, heatmap = charts["heatmap"]
    timeline_args, timeline = charts["timeline"]
    grid_args, grid = charts["head_grid"]
    for args in (heatmap_args, timeline_args, grid_args):
        assert args["steps"] == [0, T]  # each follows the page's t over the steps drawn
    assert timeline_args["playback"] and not heatmap_args["playback"]  # one play button
    assert timeline["layout"]["sliders"][0]["active"] == T - 1  # t starts at the last step
    assert _marks(heatmap) == [(T - 1.5, T - 0.5)]  # its column outlined
    assert _marks(grid) == [(T - 1.5, T - 0.5)] * 2  # on each of the two heads
    assert charts["probabilities"][0]["steps"] is None  # no time axis: it does not follow


def test_a_click_on_the_heatmap_selects_t_or_hides_a_step_as_chosen(app):
    at = app.run()
    assert at.radio(key="heatmap_click").value == "select"
    args, heatmap = live_charts(at)["heatmap"]
    assert args["click"] == "select"  # in the browser, no rerun
    assert "click: select step t" in heatmap["data"][0]["hovertemplate"]
    caption = next(c.value for c in at.caption if c.value.startswith("Colour: attention weight"))
    assert "click it to select its t" in caption and "'hides or shows' above" in caption

    at.radio(key="heatmap_click").set_value("hide").run()
    _no_failure(at)
    args, heatmap = live_charts(at)["heatmap"]
    assert args["click"] == "report"  # the app hides or shows the step
    assert "click: hide or show step j" in heatmap["data"][0]["hovertemplate"]
    caption = next(c.value for c in at.caption if c.value.startswith("Colour: attention weight"))
    assert "click it to hide or show step j" in caption


def test_hiding_a_step_does_not_move_the_heatmap(app):
    """Issue 29: clicking the same heatmap cell twice hid a neighbouring step. The first click
    made the subtitle (which names the steps hidden) wrap to a second line; the top margin
    grew and the cells moved down under the mouse."""
    at = app.run()
    before = live_charts(at)["heatmap"][1]["layout"]
    key = next(s.key for s in at.slider if s.key and s.key.startswith("window_"))[7:]
    at.session_state[f"hidden_clicked_{key}"] = frozenset({5})  # as a click on a cell of j = 5
    at.run()
    _no_failure(at)
    after = live_charts(at)["heatmap"][1]["layout"]
    assert "<br>" not in before["title"]["subtitle"]["text"]  # one line, then two:
    assert "steps 5 hidden" in after["title"]["subtitle"]["text"].split("<br>")[0]
    assert "<br>" in after["title"]["subtitle"]["text"]
    assert (after["margin"], after["height"]) == (before["margin"], before["height"])


def test_a_subtitle_too_long_for_its_lines_is_cut_and_keeps_the_plot_in_place():
    short = figures.titled(figures.spec_figure([], {}), "a · b", lines=2)
    long = figures.titled(figures.spec_figure([], {}), " · ".join(["x" * 50] * 9), lines=2)
    assert short.layout.margin.t == long.layout.margin.t == 40 + 48 + 16
    lines = long.layout.title.subtitle.text.split("<br>")
    assert len(lines) == 2 and lines[1].endswith("…") and len(lines[1]) <= 160
