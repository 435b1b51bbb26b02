"""app.live_chart: the folder Streamlit serves and the arguments a chart sends the browser.
(The charts on the page: tests/test_app.py; drawn and clicked in Chromium: tests/browser.)"""

from __future__ import annotations

import json

import plotly.graph_objects as go
import pytest
from streamlit.testing.v1 import AppTest

from app import live_chart


def test_the_served_folder_holds_the_page_and_the_packages_plotly_js():
    folder = live_chart.served_folder()
    assert (folder / "index.html").read_bytes() == live_chart.PAGE.read_bytes()
    assert (folder / "plotly.min.js").read_bytes() == live_chart.PLOTLY_JS.read_bytes()
    assert '<script src="plotly.min.js">' in live_chart.PAGE.read_text()
    stamp = (folder / "plotly.min.js").stat().st_mtime_ns
    assert live_chart.served_folder() == folder
    assert (folder / "plotly.min.js").stat().st_mtime_ns == stamp  # written once


def test_a_cut_copy_in_the_served_folder_is_written_again():
    folder = live_chart.served_folder()
    (folder / "plotly.min.js").write_bytes(b"// cut short")
    live_chart.served_folder()
    assert (folder / "plotly.min.js").read_bytes() == live_chart.PLOTLY_JS.read_bytes()


def _page() -> None:
    import plotly.graph_objects as go
    import streamlit as st

    from app.live_chart import live_chart

    fig = go.Figure(go.Bar(x=[1, 2], y=[3, st.session_state.get("y", 4)]))
    live_chart(fig, key="plain")
    live_chart(fig, key="clicks", on_click=lambda: None, steps=(0, 2))
    live_chart(fig, key="time", steps=(0, 2), select_on_click=True, playback=True)


def test_a_live_chart_sends_its_figure_and_what_its_clicks_and_keys_do():
    at = AppTest.from_function(_page).run()
    assert not at.exception
    nodes = [n for n in at.main if n.type == "component_instance"]
    assert [n.key for n in nodes] == ["plain", "clicks", "time"]
    sent = [live_chart.figure_of(n.proto.json_args) for n in nodes]
    expected = go.Figure(go.Bar(x=[1, 2], y=[3, 4])).to_plotly_json()
    assert sent[0]["data"][0]["y"] == expected["data"][0]["y"] == [3, 4]
    args = [json.loads(n.proto.json_args) for n in nodes]
    assert [(a["click"], a["steps"], a["playback"]) for a in args] == [
        (None, None, False),  # a plain chart
        ("report", [0, 2], False),  # a click reruns the app; follows the page's t
        ("select", [0, 2], True),  # a click selects t in the browser; a play button
    ]
    element = nodes[0].proto.id
    at.session_state["y"] = 5
    at.run()
    again = next(n for n in at.main if n.type == "component_instance")
    assert again.proto.id == element  # named by its key: the same element, a new figure
    assert live_chart.figure_of(again.proto.json_args)["data"][0]["y"] == [3, 5]


def test_a_click_either_reports_or_selects():
    with pytest.raises(ValueError, match="not both"):
        live_chart.live_chart(go.Figure(), "both", lambda: None, select_on_click=True)
