"""End to end (issue 13): a click on the attention heatmap hides that step, in headless
Chromium. The heatmap is an app.live_chart (an iframe) that reports Plotly's clicks; the
test clicks a cell at the page's coordinates of its (t, lag).

Uses the server and page fixtures of test_e2e.py (the shipped probe pair when present).
"""

from __future__ import annotations

import re

from test_e2e import (  # noqa: F401 (fixtures used by name; pytestmark: browser, Chromium)
    chart_texts,
    checkpoint_dir,
    page,
    pytestmark,
    save_screenshot,
    server,
    wait_idle,
)

# The page's (x, y) of the attention heatmap's cell (t, lag), its iframe scrolled into view:
# the first app.live_chart iframe with a heatmap.
CELL_XY = """([t, lag]) => {
    for (const frame of document.querySelectorAll('iframe')) {
        const gd = frame.contentDocument && frame.contentDocument.querySelector('.js-plotly-plot');
        if (!gd || !gd.querySelector('.heatmaplayer')) continue;
        frame.scrollIntoView({block: 'center'});
        const L = gd._fullLayout, box = frame.getBoundingClientRect();
        return [box.left + L._size.l + L.xaxis.l2p(t), box.top + L._size.t + L.yaxis.l2p(lag)];
    }
    return null;
}"""


def clicks_hide(tab) -> None:
    """Choose 'A click on a heatmap cell: hides or shows its past step j' (not: selects t)."""
    tab.get_by_text("hides or shows its past step j (memory edits)", exact=True).click()
    wait_idle(tab)


# The largest lag of column t of the attention heatmap that holds a weight.
TOP_LAG = """(t) => {
    for (const frame of document.querySelectorAll('iframe')) {
        const gd = frame.contentDocument && frame.contentDocument.querySelector('.js-plotly-plot');
        if (!gd || !gd.querySelector('.heatmaplayer')) continue;
        const heat = gd._fullData[0], column = [...heat.x].indexOf(t);
        const lags = [...heat.y].filter((_, r) => Number.isFinite(heat.z[r][column]));
        return Math.max(...lags);
    }
    return null;
}"""


def hidden_caption(tab) -> str:
    sidebar = tab.locator("[data-testid='stSidebar']")
    return sidebar.get_by_text(re.compile(r"^Hidden: j = ")).first.text_content() or ""


def click_cell(tab, t: int, lag: int) -> None:
    """Click the heatmap cell of query step t and lag t - j (the page's default lag axis)."""
    x, y = tab.evaluate(CELL_XY, [t, lag])
    tab.mouse.click(x, y)
    wait_idle(tab)


def test_clicking_the_heatmap_hides_a_step_and_clicking_again_shows_it(page, tmp_path):  # noqa: F811
    clicks_hide(page)
    assert hidden_caption(page).startswith("Hidden: j = none.")
    markdown = page.locator("[data-testid='stMarkdownContainer'] p")
    attends = markdown.filter(has_text="attends most to").first
    found = re.search(r"t = (\d+) attends most to j = (\d+) \(lag (\d+)", attends.inner_text())
    assert found, attends.inner_text()
    t, j, lag = (int(g) for g in found.groups())

    click_cell(page, t, lag)  # the step the last step attends to most
    assert hidden_caption(page).startswith(f"Hidden: j = {j}."), hidden_caption(page)
    assert f"steps {j} hidden" in chart_texts(page, ".gtitle-subtitle")[0]
    page.get_by_text(f"Hidden steps j = {j}: what changes").wait_for()
    assert page.locator("[data-testid='stException']").count() == 0
    shot = save_screenshot(page, tmp_path, "app_step_hidden_by_a_click.png")

    click_cell(page, t, lag)  # the same cell again: the step is shown again
    assert hidden_caption(page).startswith("Hidden: j = none."), hidden_caption(page)
    assert shot.stat().st_size > 10_000


def test_a_second_click_on_the_same_spot_shows_the_step_again(page, tmp_path):  # noqa: F811
    """Issue 29: the first click's hidden step lengthened the heatmap's subtitle to two lines,
    the plot moved down, and a second click on the same spot hid a neighbouring step."""
    clicks_hide(page)
    t = 40
    # The largest lag at t with a value: near the top, where a move of the plot's top edge
    # moves the cells most (its bottom edge stays).
    lag = page.evaluate(TOP_LAG, t)
    x, y = page.evaluate(CELL_XY, [t, lag])  # once: the mouse stays where it is
    page.mouse.click(x, y)
    wait_idle(page)
    found = re.match(r"Hidden: j = (\d+)\.", hidden_caption(page))
    assert found, hidden_caption(page)
    assert f"steps {found.group(1)} hidden" in " ".join(chart_texts(page, ".gtitle-subtitle"))
    page.mouse.click(x, y)
    wait_idle(page)
    assert hidden_caption(page).startswith("Hidden: j = none."), hidden_caption(page)
    save_screenshot(page, tmp_path, "app_same_spot_clicked_twice.png")
