"""app.live_chart: the folder Streamlit serves and the arguments a chart sends the browser.
(The charts on the page: tests/test_app.py; drawn and clicked in Chromium: tests/browser.)"""

from __future__ import annotations

import plotly.graph_objects as go
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
    live_chart(fig, key="clicks", on_click=lambda: None)


def test_a_live_chart_sends_its_figure_and_whether_it_reports_clicks():
    at = AppTest.from_function(_page).run()
    assert not at.exception
    nodes = [n for n in at.main if n.type == "component_instance"]
    assert [n.key for n in nodes] == ["plain", "clicks"]
    sent = [live_chart.figure_of(n.proto.json_args) for n in nodes]
    expected = go.Figure(go.Bar(x=[1, 2], y=[3, 4])).to_plotly_json()
    assert sent[0]["data"][0]["y"] == expected["data"][0]["y"] == [3, 4]
    assert ['"clickable": false' in n.proto.json_args for n in nodes] == [True, False]
    element = nodes[0].proto.id
    at.session_state["y"] = 5
    at.run()
    again = next(n for n in at.main if n.type == "component_instance")
    assert again.proto.id == element  # named by its key: the same element, a new figure
    assert live_chart.figure_of(again.proto.json_args)["data"][0]["y"] == [3, 5]
