"""End to end (issue 13): a click on the attention heatmap hides that step, in headless
Chromium. Streamlit reports no selection for Plotly heatmap traces (streamlit#8760); the
heatmap's click layer of square markers is what this test clicks through.

Uses the server and page fixtures of test_e2e.py (the shipped probe pair when present).
"""

from __future__ import annotations

import re

from test_e2e import (  # noqa: F401 (fixtures used by name; pytestmark: browser, Chromium)
    checkpoint_dir,
    page,
    pytestmark,
    save_screenshot,
    server,
    wait_idle,
)

CELL_XY = """(gd, [t, lag]) => {
    const L = gd._fullLayout, box = gd.getBoundingClientRect();
    return [box.left + L._size.l + L.xaxis.l2p(t), box.top + L._size.t + L.yaxis.l2p(lag)];
}"""


def hidden_caption(tab) -> str:
    sidebar = tab.locator("[data-testid='stSidebar']")
    return sidebar.get_by_text(re.compile(r"^Hidden: j = ")).first.text_content() or ""


def click_cell(tab, t: int, lag: int) -> None:
    """Click the heatmap cell of query step t and lag t - j (the page's default lag axis)."""
    plot = tab.locator("[data-testid='stPlotlyChart'] .js-plotly-plot").first
    plot.scroll_into_view_if_needed()
    x, y = plot.evaluate(CELL_XY, [t, lag])
    tab.mouse.click(x, y)
    wait_idle(tab)


def test_clicking_the_heatmap_hides_a_step_and_clicking_again_shows_it(page, tmp_path):  # noqa: F811
    assert hidden_caption(page).startswith("Hidden: j = none.")
    markdown = page.locator("[data-testid='stMarkdownContainer'] p")
    attends = markdown.filter(has_text="attends most to").first
    found = re.search(r"t = (\d+) attends most to j = (\d+) \(lag (\d+)", attends.inner_text())
    assert found, attends.inner_text()
    t, j, lag = (int(g) for g in found.groups())

    click_cell(page, t, lag)  # the step the last step attends to most
    assert hidden_caption(page).startswith(f"Hidden: j = {j}."), hidden_caption(page)
    subtitle = page.locator("[data-testid='stPlotlyChart'] .gtitle-subtitle").first
    assert f"steps {j} hidden" in (subtitle.text_content() or "")
    page.get_by_text(f"Hidden steps j = {j}: what changes").wait_for()
    assert page.locator("[data-testid='stException']").count() == 0
    shot = save_screenshot(page, tmp_path, "app_step_hidden_by_a_click.png")

    click_cell(page, t, lag)  # the same cell again: the step is shown again
    assert hidden_caption(page).startswith("Hidden: j = none."), hidden_caption(page)
    assert shot.stat().st_size > 10_000
