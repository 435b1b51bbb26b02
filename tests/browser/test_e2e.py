"""End to end: the app in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright).

Starts `streamlit run app/main.py` on a free port, opens the page, checks that the attention
heatmap renders, moves the window slider, uploads a CSV series and saves screenshots to a tmp
folder (and to $LARNN_SCREENSHOT_DIR when set). The server is always stopped.
Uses the shipped probe checkpoints when present, else trains a tiny pair first.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from app_driver import (  # benchmarks/app_driver.py: one driver for the benchmarks and tests
    CHART_DOCUMENTS,
    CHROMIUM_ARGS,
    HEATMAP_DRAWN,
    LINE_AT_STEP,
    LIVE_CHARTS,
    chart_frame,
    slider_thumb,
)

from larnn.checkpoint import shipped_checkpoints
from larnn.data import make_probe
from larnn.data.uci_har import cache_dir, uci_har_available

CHROMIUM = Path("/usr/bin/chromium")
REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_UCI_HAR = REPO_ROOT.parent / "shared" / "data" / "uci_har"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="/usr/bin/chromium is missing: apt-get install chromium"
    ),
]
playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright Python package is not installed"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def checkpoint_dir(tmp_path_factory) -> Path | None:
    """Where the app finds checkpoints: $LARNN_CHECKPOINT_DIR when set, the shipped folder when
    it holds the probe pair (None), else tiny untrained ones made like tests/test_app.py's."""
    if os.environ.get("LARNN_CHECKPOINT_DIR"):
        return Path(os.environ["LARNN_CHECKPOINT_DIR"])
    if {"probe_recall_larnn", "probe_recall_lstm"} <= set(shipped_checkpoints()):
        return None
    spec = importlib.util.spec_from_file_location("_app_tests", REPO_ROOT / "tests/test_app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_checkpoints(tmp_path_factory.mktemp("checkpoints"))


def app_data_dir() -> str | None:
    """The LARNN_DATA_DIR `running_app` gives the app: this process's, else the shared copy."""
    if "LARNN_DATA_DIR" in os.environ:
        return os.environ["LARNN_DATA_DIR"]
    return str(SHARED_UCI_HAR) if (SHARED_UCI_HAR / "uci_har.npz").is_file() else None


def app_finds_uci_har() -> bool:
    """Whether that app finds UCI HAR: in its data folder or in the per-user cache."""
    data_dir = app_data_dir()
    in_data_dir = data_dir is not None and uci_har_available(Path(data_dir))
    return in_data_dir or uci_har_available(cache_dir())


@contextmanager
def running_app(checkpoint_dir: Path | None, extra_env: dict[str, str]) -> Iterator[str]:
    """`streamlit run app/main.py` on a free port until the block ends; yields its URL."""
    port = free_port()
    data_dir = app_data_dir()
    data = {"LARNN_DATA_DIR": data_dir} if data_dir else {}
    env = {**os.environ, "OMP_NUM_THREADS": "1", **data, **extra_env}
    if checkpoint_dir is not None:
        env["LARNN_CHECKPOINT_DIR"] = str(checkpoint_dir)
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "app/main.py",
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
    ]
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.read().strip() == b"ok":
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                output = process.stdout.read().decode(errors="replace") if process.stdout else ""
                pytest.fail(f"streamlit did not come up on {url}:\n{output[-3000:]}")
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def server(checkpoint_dir):
    with running_app(checkpoint_dir, {}) as url:
        yield url


def save_screenshot(page, tmp_path: Path, name: str, full: bool = False) -> Path:
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=full)
    extra = os.environ.get("LARNN_SCREENSHOT_DIR")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(extra) / name)
    return path


def wait_idle(page, timeout_ms: int = 90_000) -> None:
    """Wait until Streamlit has finished the current run (no 'running' status widget)."""
    page.wait_for_timeout(300)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')",
        timeout=timeout_ms,
    )
    page.wait_for_timeout(500)


def wait_for_heatmap(page, timeout: float | None = None) -> None:
    """Wait until the attention heatmap is drawn (its layer holds an image)."""
    page.wait_for_function(HEATMAP_DRAWN, timeout=timeout)


def chart_texts(page, selector: str) -> list[str]:
    """The text of every chart element matching `selector`, in page order."""
    return page.evaluate(
        f"s => {CHART_DOCUMENTS}.flatMap(d => [...d.querySelectorAll(s)].map(e => e.textContent))",
        selector,
    )


def heatmap_title(page) -> str:
    return next(iter(chart_texts(page, ".gtitle")), "")


@pytest.fixture
def page(server):
    """A fresh page on the app's first screen, the heatmap drawn."""
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            page.set_default_timeout(180_000)  # a first render on a busy 2-core machine
            page.goto(server)
            wait_for_heatmap(page)
            wait_idle(page)
            yield page
        finally:
            browser.close()


def slider_value(page, label: str) -> str:
    slider = page.locator("[data-testid='stSlider']").filter(has_text=label)
    return slider.locator("[data-testid='stSliderThumbValue']").text_content() or ""


def test_reset_knobs_sets_the_widgets_back(page, tmp_path):
    """Issue 11.1: Reset knobs sets the widgets themselves, so the next interaction does not
    bring the changed knobs back from the browser."""
    window = slider_thumb(page, "Window k'")
    trained = slider_value(page, "Window k'")
    assert trained.isdigit()
    window.focus()
    window.press("Home")  # k' = 1
    wait_idle(page)
    page.locator("[data-testid='stSidebar']").get_by_role("button", name="head 0").click()
    wait_idle(page)
    assert "window k' = 1:" in heatmap_title(page) and "mean over heads" in heatmap_title(page)

    page.get_by_role("button", name="Reset knobs").click()
    wait_idle(page)
    assert slider_value(page, "Window k'") == trained
    page.get_by_text("absolute time j").click()  # any other interaction sends every widget back
    wait_idle(page)
    assert slider_value(page, "Window k'") == trained
    title = heatmap_title(page)
    assert f"window k' = {trained}:" in title and "mean over all heads" in title, title
    save_screenshot(page, tmp_path, "app_after_reset.png")


def test_heatmap_window_slider_and_csv_upload(server, tmp_path):
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.set_default_timeout(90_000)
            page.goto(server)
            # The heatmap: a Plotly chart whose heatmap layer has drawn an image.
            wait_for_heatmap(page)
            wait_idle(page)
            assert page.locator("[data-testid='stException']").count() == 0
            assert "window k'" in heatmap_title(page)
            before = heatmap_title(page)
            first = save_screenshot(page, tmp_path, "app_first_screen.png")

            # Move the window slider to its minimum with the keyboard.
            slider = page.locator("[data-testid='stSlider']").filter(has_text="Window k'")
            thumb = slider.get_by_role("slider")
            thumb.focus()
            thumb.press("Home")
            page.wait_for_function(
                f"() => {CHART_DOCUMENTS}.some(d => [...d.querySelectorAll('.gtitle')]"
                '.some(e => e.textContent.includes("window k\' = 1:")))',
                timeout=90_000,
            )
            wait_idle(page)
            assert heatmap_title(page) != before
            page.set_viewport_size({"width": 1440, "height": 4200})
            wait_idle(page)
            whole = save_screenshot(page, tmp_path, "app_window_1_whole_page.png")

            # Export, opened (it runs only while open): the attention table downloads as CSV.
            page.get_by_text("Export: tables, numbers and figures").click()
            wait_idle(page)
            with page.expect_download() as download:
                page.get_by_role("button", name="Attention (CSV)").click()
            header = Path(download.value.path()).read_text().splitlines()[0]
            assert header.startswith("layer,t,head,slot,j,lag,weight,dataset,")
            assert header.endswith(",window,kv_activation,heads_on")  # what it shows
            page.set_viewport_size({"width": 1440, "height": 1000})

            # Upload a CSV series with the default probe's (recall's) channel names.
            sidebar = page.locator("[data-testid='stSidebar']")
            sidebar.get_by_text("My own series (upload)").click()
            wait_idle(page)
            series = make_probe("recall", 1, seed=0, length=64)
            csv = tmp_path / "my_series.csv"
            lines = [",".join(["time", *series.channel_names])] + [
                ",".join([str(t), *(f"{v:.4f}" for v in row)]) for t, row in enumerate(series.X[0])
            ]
            csv.write_text("\n".join(lines) + "\n")
            sidebar.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(csv))
            page.get_by_text("Read my_series.csv").wait_for()
            # Warnings (a probe's models on an upload) push the heatmap below a 1000 px fold,
            # and a chart out of sight is drawn only once it is seen.
            page.set_viewport_size({"width": 1440, "height": 2000})
            wait_idle(page)
            wait_for_heatmap(page)
            assert page.locator("[data-testid='stException']").count() == 0
            uploaded = save_screenshot(page, tmp_path, "app_uploaded_csv.png")
        finally:
            browser.close()
    for path in (first, whole, uploaded):
        assert path.stat().st_size > 10_000


def test_class_names_are_shown_whole(page, tmp_path):
    """Issue 11.6: the summary cut 'WALKING_UPSTAIRS' and 'WALKING_DOWNSTAIRS' alike to
    'WALKING_...' at 1500 px."""
    if not app_finds_uci_har():  # asked here: the page may not have rerun yet after a click
        pytest.skip("UCI HAR is not on this machine (set LARNN_DATA_DIR)")
    sidebar = page.locator("[data-testid='stSidebar']")
    sidebar.get_by_text("UCI HAR (smartphone activity)").click()
    wait_idle(page)
    sidebar.get_by_text("true class").click()
    wait_idle(page)
    sidebar.locator("[data-testid='stSelectbox']").filter(has_text="True class").click()
    page.get_by_role("option", name="WALKING_DOWNSTAIRS").click()
    wait_idle(page)
    values = page.locator("[data-testid='stMetricValue'] [data-testid='stMarkdownContainer']")
    values.filter(has_text="DOWNSTAIRS").first.wait_for()  # the rerun has drawn the choice
    wait_idle(page)
    # One read of every value at once: a rerun between reads would detach the elements.
    shown = [
        tuple(row)
        for row in values.evaluate_all(
            "els => els.map(e => [e.innerText, e.scrollWidth <= e.clientWidth + 1])"
        )
    ]
    save_screenshot(page, tmp_path, "app_uci_har_class_names.png")
    assert any("WALKING_" in text and "DOWNSTAIRS" in text for text, _ in shown), shown
    assert all(whole for _, whole in shown), shown


# A cold start, made repeatable: torch takes TORCH_DELAY_S longer to import (sitecustomize).
TORCH_DELAY_S = 12
SLOW_TORCH = """
import importlib.abc, os, sys, time


class _SlowTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch":
            sys.meta_path.remove(self)
            time.sleep(float(os.environ["LARNN_TEST_TORCH_DELAY"]))
        return None


sys.meta_path.insert(0, _SlowTorch())
"""


def test_title_and_progress_show_at_once_on_a_fresh_server(checkpoint_dir, tmp_path):
    """Issue 11.10: a fresh server showed a blank page until torch and the app were loaded."""
    (tmp_path / "sitecustomize.py").write_text(SLOW_TORCH)
    path = os.pathsep.join(p for p in (str(tmp_path), os.environ.get("PYTHONPATH")) if p)
    env = {"PYTHONPATH": path, "LARNN_TEST_TORCH_DELAY": str(TORCH_DELAY_S)}
    with running_app(checkpoint_dir, env) as url, playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            started = time.monotonic()
            page.goto(url)
            page.get_by_role("heading", name="LARNN explorer").wait_for(timeout=120_000)
            title_s = time.monotonic() - started
            page.get_by_text("Starting the explorer").wait_for(timeout=5_000)
            save_screenshot(page, tmp_path, "app_fresh_server_first_paint.png")
            wait_for_heatmap(page, timeout=300_000)
            chart_s = time.monotonic() - started
        finally:
            browser.close()
    assert title_s < TORCH_DELAY_S / 2, (title_s, chart_s)
    assert chart_s > TORCH_DELAY_S  # the slow import did happen, after the title


# JavaScript statements for a chart iframe's window `w`: const reacts = its Plotly.react calls
# since the last time they were taken (counting starts at the first).
TAKE_REACTS = """if (!w.__reacts) { w.__reacts = {n: 0}; const react = w.Plotly.react;
          w.Plotly.react = (...args) => { w.__reacts.n += 1; return react(...args); }; }
        const reacts = w.__reacts.n; w.__reacts.n = 0;"""


def draw_every_chart(page) -> None:
    """A view tall enough to hold every chart, so that each is drawn (one out of view is not),
    and wait until each is."""
    page.set_viewport_size({"width": 1500, "height": 6000})
    page.wait_for_function(
        "() => [...document.querySelectorAll('iframe')].every(f => f.contentWindow.Plotly"
        " && f.contentDocument.querySelector('.main-svg'))"
    )


def test_a_knob_change_redraws_the_charts_in_place(page):
    """Issue 11 (a knob change < 400 ms): each chart a knob changes stays on the page (its
    iframe keeps its window) and gets one Plotly.react with the new figure, where
    st.plotly_chart took it off the page and drew it anew, twice. k' = 1 also drops a line
    above the charts, which must not move them."""
    mark = """() => [...document.querySelectorAll('iframe')].map((f, i) => {
        const w = f.contentWindow, kept = w.__mark === i;
        w.__mark = i;
        TAKE_REACTS
        return {kept, reacts}; })""".replace("TAKE_REACTS", TAKE_REACTS)
    draw_every_chart(page)
    charts = page.evaluate(mark)
    assert len(charts) >= 4  # heatmap, timeline, head grid, probabilities
    window = slider_thumb(page, "Window k'")
    for key, shown in (("Home", "window k' = 1:"), ("End", "window k' = ")):
        window.focus()
        window.press(key)
        wait_idle(page)
        assert shown in heatmap_title(page)
        after = page.evaluate(mark)
        assert len(after) == len(charts)
        assert all(chart["kept"] for chart in after), after
        assert [chart["reacts"] for chart in after] == [1] * len(after), after


def test_a_chart_out_of_view_is_drawn_when_it_comes_into_view(page):
    """Issue 11 (a knob change < 400 ms): a knob change draws the charts in view at once; a
    chart out of view keeps its place (its height) and is drawn when scrolled to, once, with
    the last figure it was sent."""
    count_reacts = """() => [...document.querySelectorAll("LIVE_CHARTS")].map(f => {
        const w = f.contentWindow, box = f.getBoundingClientRect();
        TAKE_REACTS
        return {reacts, height: box.height, inView: box.bottom > 0 && box.top < innerHeight}; })
    """.replace("LIVE_CHARTS", LIVE_CHARTS).replace("TAKE_REACTS", TAKE_REACTS)
    # The view ends 250 px above the timeline, the heatmap's top in it: with 80 px, once in CI
    # the timeline was drawn during the knob changes (reacts 1): too thin a margin. Measured,
    # not fixed: the lines above the charts change with the page's text.
    tops = page.evaluate(
        f'() => [...document.querySelectorAll("{LIVE_CHARTS}")]'
        ".map(f => f.getBoundingClientRect().top + scrollY)"
    )
    assert tops[1] - tops[0] > 300, tops  # room for a view that holds one but not the other
    page.set_viewport_size({"width": 1500, "height": int(tops[1]) - 250})
    page.wait_for_function(
        f'() => [...document.querySelectorAll("{LIVE_CHARTS}")].every(f => f.contentWindow.Plotly)'
    )
    page.evaluate(count_reacts)
    window = slider_thumb(page, "Window k'")
    window.focus()
    window.press("Home")  # k' = 1
    wait_idle(page)
    window.press("ArrowRight")  # k' = 2
    wait_idle(page)
    assert "window k' = 2:" in heatmap_title(page)
    charts = page.evaluate(count_reacts)
    in_view = [chart for chart in charts if chart["inView"]]
    out_of_view = [chart for chart in charts if not chart["inView"]]
    assert in_view and out_of_view, charts  # the heatmap at the top; the timeline below
    # (Exactly one draw per change: test_a_knob_change_redraws_the_charts_in_place.)
    assert all(chart["reacts"] >= 2 for chart in in_view), charts
    assert all(chart["reacts"] == 0 and chart["height"] > 100 for chart in out_of_view), charts

    for i, iframe in enumerate(page.locator(LIVE_CHARTS).element_handles()):
        iframe.scroll_into_view_if_needed()
        if charts[i] in out_of_view:  # drawn once it is in view
            iframe.wait_for_element_state("stable")
            iframe.content_frame().wait_for_function("() => window.__reacts.n > 0")
    page.wait_for_timeout(300)
    assert [chart["reacts"] for chart in page.evaluate(count_reacts)] == [
        1 if chart in out_of_view else 0 for chart in charts
    ]
    timeline = chart_frame(page, ".slider-container")
    legend = timeline.locator(".legendtext").filter(has_text="window of step t")
    assert legend.text_content() == "window of step t (k' = 2)"


def test_time_step_moves_in_the_browser_without_a_rerun(page, tmp_path):
    """Issue 11 (interaction speed): the time step was a Streamlit slider, ~0.8 s per step
    through the server. The timeline's own slider now moves t in the browser: its text,
    the marker and the bars change, and the app does not run."""
    page.evaluate(
        """() => { window.__runs = 0; const app = document.querySelector('[data-testid=stApp]');
        new MutationObserver(() => { if (app.dataset.testScriptState === 'running')
          window.__runs += 1; }).observe(app, {attributes: true}); }"""
    )
    timeline = chart_frame(page, ".slider-container")
    timeline.locator(".slider-container").first.scroll_into_view_if_needed()
    rail = timeline.locator(".slider-rail-rect").first.bounding_box()  # in the page's pixels
    label = timeline.locator(".slider-container text").first
    assert label.text_content().startswith("drag the red handle to move the time step: t = ")
    last = int(re.search(r"t = (\d+)", label.text_content()).group(1))
    page.mouse.click(rail["x"] + 0.3 * rail["width"], rail["y"] + rail["height"] / 2)
    t = int(re.search(r"t = (\d+)", label.text_content()).group(1))
    assert 0 < t < last
    assert re.search(rf"t = {t} · looks most at j = \d+ \(0\.\d\d\)", label.text_content())
    timeline.wait_for_function(LINE_AT_STEP, arg=t)
    page.wait_for_timeout(500)
    assert page.evaluate("() => window.__runs") == 0
    save_screenshot(page, tmp_path, "timeline_after_click.png")
    # The step is drawn in place (Plotly.animate without a redraw): the same picture as a
    # full redraw of the moved figure draws.
    moved = timeline.evaluate(DRAWN_STEP)
    assert min(len(moved[key]) for key in ("bars", "shapes", "lines")) > 1, moved
    assert (
        timeline.evaluate(
            f"async () => {{ await Plotly.redraw('chart'); return ({DRAWN_STEP})(); }}"
        )
        == moved
    )


# JavaScript: what a timeline shows of its time step, as drawn: the shapes (the lines at t
# and the window), the row titles, the attention bars, the lines and the axes' tick labels.
DRAWN_STEP = """() => ({
  shapes: [...document.querySelectorAll('.shapelayer path')].map(e => e.getAttribute('d')),
  titles: [...document.querySelectorAll('.annotation-text')].map(e => e.textContent),
  bars: [...document.querySelectorAll('.bars .point path')].map(e => e.getAttribute('d')),
  lines: [...document.querySelectorAll('.scatterlayer .js-line')].map(e => e.getAttribute('d')),
  ticks: [...document.querySelectorAll('.yaxislayer-above')].map(e => e.textContent),
})"""


def test_an_analysis_reruns_alone_unless_export_is_open(page):
    """Issue 29 (the whole-split view opens in under 2 s): opening or closing an analysis on
    demand reruns it alone (a fragment): the heatmap above is never marked stale, as every
    element is in a run of the whole page. While Export is open the whole page reruns after
    it, so Export lists what is drawn."""
    split = page.get_by_text("Attention over the whole split", exact=False).first
    lags_drawn = """() => [...document.querySelectorAll('.gtitle')]
        .some(e => e.textContent.startsWith('Where each head looks over the split'))"""
    split_html = page.get_by_role("button", name="split attention (HTML)")
    page.evaluate(
        f"""() => {{ window.__stale = 0;
        const box = document.querySelector("{LIVE_CHARTS}").closest('[data-stale]');
        new MutationObserver(() => {{ if (box.dataset.stale === 'true') window.__stale += 1; }})
          .observe(box, {{attributes: true, attributeFilter: ['data-stale']}}); }}"""
    )
    split.click()
    page.wait_for_function(lags_drawn)
    wait_idle(page)
    split.click()  # closed again
    wait_idle(page)
    assert not page.evaluate(lags_drawn)
    assert page.evaluate("window.__stale") == 0
    page.get_by_text("Export: tables, numbers and figures").click()  # the whole page reruns
    wait_idle(page)
    assert page.evaluate("window.__stale") > 0  # what the check above would have seen
    split.click()  # opened, with Export open
    page.wait_for_function(lags_drawn)
    wait_idle(page)
    assert split_html.count() == 1
    split.click()  # closed, with Export open
    wait_idle(page)
    assert split_html.count() == 0  # Export drawn again: it no longer lists the figure
