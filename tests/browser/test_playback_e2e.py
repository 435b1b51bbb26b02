"""End to end (issue 29): the time step t shared by the timeline and the heatmaps, moved in
the browser by the play button, a click on a heatmap column and the arrow keys, without a
rerun of the app; and a link that restores the view. In headless Chromium.

Uses the server and page fixtures of test_e2e.py (the shipped probe pair when present).
"""

from __future__ import annotations

from app_driver import LIVE_CHARTS, chart_frame
from test_e2e import (  # noqa: F401 (fixtures used by name; pytestmark: browser, Chromium)
    CHROMIUM,
    CHROMIUM_ARGS,
    checkpoint_dir,
    draw_every_chart,
    page,
    playwright_api,
    pytestmark,
    save_screenshot,
    server,
    wait_for_heatmap,
    wait_idle,
)

from app import page_state

# In a chart's frame: the t it shows, from its slider (the timeline) or from its outline of
# column t (the heatmaps); null before it is drawn.
SHOWN_T = """() => {
  const gd = document.getElementById('chart');
  if (!gd || !gd.layout) return null;
  const slider = gd.layout.sliders && gd.layout.sliders[0];
  const steps = slider && slider.steps;
  if (steps) return Number(steps[slider.active].label.split(' ')[0]);
  const mark = (gd.layout.shapes || []).find(s => s.name === 'selected t');
  return mark ? mark.x0 + 0.5 : null;
}"""
# The page's x, y of the attention heatmap's column t, near the top of its plot (white cells
# there, with no attention to report: the column is selected all the same).
COLUMN_XY = """(t) => {
  for (const frame of document.querySelectorAll('iframe')) {
    const gd = frame.contentDocument && frame.contentDocument.querySelector('.js-plotly-plot');
    if (!gd || !gd.querySelector('.heatmaplayer')) continue;
    frame.scrollIntoView({block: 'center'});
    const L = gd._fullLayout, box = frame.getBoundingClientRect();
    return [box.left + L._size.l + L.xaxis.l2p(t), box.top + L._size.t + 0.1 * L._size.h];
  }
  return null;
}"""
# The same in the head grid (the heatmap with several subplots), on its second head's plot.
GRID_COLUMN_XY = """(t) => {
  for (const frame of document.querySelectorAll('iframe')) {
    const gd = frame.contentDocument && frame.contentDocument.querySelector('.js-plotly-plot');
    if (!gd || !gd.querySelector('.heatmaplayer') || !gd._fullLayout.xaxis2) continue;
    frame.scrollIntoView({block: 'center'});
    const L = gd._fullLayout, box = frame.getBoundingClientRect();
    return [box.left + L.xaxis2._offset + L.xaxis2.l2p(t),
            box.top + L.yaxis2._offset + 0.1 * L.yaxis2._length];
  }
  return null;
}"""
COUNT_RUNS = """() => { window.__runs = 0;
  const app = document.querySelector('[data-testid=stApp]');
  new MutationObserver(() => { if (app.dataset.testScriptState === 'running')
    window.__runs += 1; }).observe(app, {attributes: true}); }"""


def shown_t(tab) -> tuple[int | None, int | None]:
    """(the heatmap's t, the timeline's t)."""
    heatmap = chart_frame(tab, ".heatmaplayer")
    timeline = chart_frame(tab, ".slider-container")
    return heatmap.evaluate(SHOWN_T), timeline.evaluate(SHOWN_T)


def test_play_steps_the_timeline_and_the_heatmap_together(page, tmp_path):  # noqa: F811
    page.set_viewport_size({"width": 1500, "height": 2000})  # the heatmap and the timeline
    wait_idle(page)
    page.evaluate(COUNT_RUNS)
    timeline = chart_frame(page, ".slider-container")
    last = timeline.evaluate(SHOWN_T)
    assert shown_t(page) == (last, last)  # both start at the last step
    play = timeline.get_by_role("button", name="Play")
    play.click()  # at the last step: plays from the first
    timeline.wait_for_function(f"() => ({SHOWN_T})() >= 6")
    save_screenshot(page, tmp_path, "playback_mid_way.png")
    timeline.get_by_role("button", name="Pause").click()
    page.wait_for_timeout(400)
    heatmap_t, timeline_t = shown_t(page)
    assert 6 <= timeline_t < last and heatmap_t == timeline_t
    page.wait_for_timeout(600)
    assert shown_t(page) == (heatmap_t, timeline_t)  # paused
    # Through t = 0, where step t has no bar: the bars drawn after it keep their colour.
    fills = timeline.evaluate(
        "() => [...document.querySelectorAll('.bars .point path')].map(e => e.style.fill)"
    )
    assert fills and all(fills), fills
    assert page.evaluate("() => window.__runs") == 0  # all in the browser


def test_a_click_on_a_heatmap_column_selects_t_and_the_keys_step_it(page, tmp_path):  # noqa: F811
    page.set_viewport_size({"width": 1500, "height": 2000})
    wait_idle(page)
    page.evaluate(COUNT_RUNS)
    page.mouse.click(*page.evaluate(COLUMN_XY, 20))
    page.wait_for_timeout(400)
    assert shown_t(page) == (20, 20)
    page.keyboard.press("ArrowLeft")  # the heatmap has the focus
    page.keyboard.press("ArrowLeft")
    page.wait_for_timeout(400)
    assert shown_t(page) == (18, 18)
    page.keyboard.press("Shift+ArrowRight")
    page.wait_for_timeout(400)
    assert shown_t(page) == (28, 28)
    save_screenshot(page, tmp_path, "playback_t_selected.png")
    assert page.evaluate("() => window.__runs") == 0
    # A knob change redraws both at the t chosen, not at the last step.
    window = page.locator("[data-testid='stSlider']").filter(has_text="Window k'")
    window.get_by_role("slider").focus()
    window.get_by_role("slider").press("Home")
    wait_idle(page)
    page.wait_for_timeout(500)
    assert shown_t(page) == (28, 28)


def test_a_click_on_a_column_of_the_head_grid_selects_t_too(page):  # noqa: F811
    wait_idle(page)
    draw_every_chart(page)
    page.evaluate(COUNT_RUNS)
    page.mouse.click(*page.evaluate(GRID_COLUMN_XY, 12))
    page.wait_for_timeout(400)
    assert shown_t(page) == (12, 12)
    assert page.evaluate("() => window.__runs") == 0


def test_a_link_opens_the_view_it_names(server, tmp_path):  # noqa: F811
    state = page_state.PageState(sequence=7, window=2, heads=(0, 2), hidden=(10, 11, 12))
    link = page_state.link(server, state)
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            tab = browser.new_page(viewport={"width": 1500, "height": 1400})
            tab.set_default_timeout(180_000)
            tab.goto(link)
            wait_for_heatmap(tab)
            wait_idle(tab)
            subtitle = " ".join(
                chart_frame(tab, ".heatmaplayer").locator(".gtitle-subtitle").all_text_contents()
            )
            assert "k' = 2" in subtitle and "heads 0, 2 of" in subtitle, subtitle
            assert "steps 10-12 hidden" in subtitle and "sequence #7" in subtitle, subtitle
            tab.get_by_text("Export: tables, numbers and figures").click()
            wait_idle(tab)
            shown = tab.locator("[data-testid='stCode']").filter(has_text="?dataset=")
            assert "&sequence=7&window=2&heads=0,2&" in shown.inner_text()
            assert tab.locator("[data-testid='stException']").count() == 0
            save_screenshot(tab, tmp_path, "link_restored_export.png", full=True)
            assert tab.locator(LIVE_CHARTS).count() >= 3
        finally:
            browser.close()
