"""Driving the explorer in headless Chromium, for the benchmarks that time it and the browser
tests that check it.

`app_interaction.py` and `train_job_timing.py` import this (Python puts the script's folder on
the path); so do the tests in `tests/browser` (pytest's `pythonpath` names this folder). A
redraw is over when the page shows the new value and Streamlit's own run state says so: its
running indicator only appears after 500 ms of running, so its absence proves nothing.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Streamlit's own marker of a finished run, pasted into the conditions below as RUN_OVER.
RUN_OVER = "document.querySelector('[data-testid=stApp]').dataset.testScriptState == 'notRunning'"

# The documents that hold charts, in page order: app.live_chart's iframes, then the page itself
# (st.plotly_chart). Pasted into the conditions below as CHART_DOCUMENTS.
CHART_DOCUMENTS = (
    "[...[...document.querySelectorAll('iframe')].map(f => f.contentDocument), document]"
    ".filter(d => d)"
)
# The attention heatmap (its title names the window k') has drawn its image. Not any heatmap:
# the attribution chart further down is one too, and may be drawn first.
HEATMAP_DRAWN = f"""() => {CHART_DOCUMENTS}.some(d => d.querySelector('.heatmaplayer image')
  && [...d.querySelectorAll('.gtitle')].some(e => e.textContent.includes("window k' = ")))"""


def _window_named(selector: str, prefix: str, end: str) -> str:
    """JavaScript: w => true once a chart's `selector` text names window 1 (w == "one") or a
    larger one as `prefix`N`end`, and the run is over."""
    return (
        """w => {
  const texts = CHART_DOCUMENTS.flatMap(d => [...d.querySelectorAll(SELECTOR)]);
  const text = texts.map(e => e.textContent).find(s => s.includes(PREFIX));
  if (!text) return false;
  const n = Number(text.split(PREFIX)[1].split(END)[0]);
  return (w === 'one' ? n === 1 : n > 1) && RUN_OVER;
}""".replace("RUN_OVER", RUN_OVER)
        .replace("CHART_DOCUMENTS", CHART_DOCUMENTS)
        .replace("SELECTOR", repr(selector))
        .replace("PREFIX", json.dumps(prefix))
        .replace("END", repr(end))
    )


# The heatmap's title ("... window k' = N: ...") and the timeline's legend entry ("window of
# step t (k' = N)").
WINDOW_SHOWN = _window_named(".gtitle", "window k' = ", ":")
TIMELINE_WINDOW_SHOWN = _window_named(".legendtext", "window of step t (k' = ", ")")

# app.live_chart's iframes, in page order. A live chart is drawn when it comes into view.
LIVE_CHARTS = "iframe[src*='live_chart']"

# In the timeline's frame: t => true once it draws its line at step t (where its time axis
# puts t, in the frame's pixels).
LINE_AT_STEP = """t => {
  const axis = document.getElementById('chart')._fullLayout.xaxis;
  const x = axis._offset + axis.l2p(t);
  return [...document.querySelectorAll('.shapelayer path')].map(e => e.getAttribute('d'))
    .some(d => d.includes('L') && Math.abs(parseFloat(d.slice(1)) - x) < 0.5);
}"""


def chart_frame(page, selector: str):
    """The frame (an app.live_chart iframe or the page) of the first chart with `selector`.
    A live chart is drawn when it comes into view, so each is scrolled to in turn."""
    for iframe in page.locator(LIVE_CHARTS).element_handles():
        iframe.scroll_into_view_if_needed()
        frame = iframe.content_frame()
        frame.wait_for_selector(".main-svg", state="attached")  # drawn
        if frame.locator(selector).count():
            return frame
    if page.main_frame.locator(selector).count():  # st.plotly_chart
        return page.main_frame
    raise LookupError(f"no chart with {selector} on the page")


def start_server(extra_env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """`streamlit run app/main.py` on a free port, once it answers its health check."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(extra_env or {})}
    command = [sys.executable, "-m", "streamlit", "run", "app/main.py"]
    command += ["--server.headless", "true", "--server.port", str(port)]
    command += ["--server.address", "127.0.0.1", "--server.fileWatcherType", "none"]
    command += ["--browser.gatherUsageStats", "false"]
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read().strip() == b"ok":
                    return process, url
        except OSError:
            time.sleep(0.3)
    process.terminate()
    raise SystemExit(f"streamlit did not come up on {url}")


def open_page(browser, url: str):
    """A page on the explorer, once its first heatmap is drawn and the run is over."""
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    page.set_default_timeout(180_000)
    page.goto(url)
    page.wait_for_function(HEATMAP_DRAWN)
    wait_idle(page)
    return page


def slider_thumb(page, label: str):
    return page.locator("[data-testid='stSlider']").filter(has_text=label).get_by_role("slider")


def wait_idle(page) -> None:
    page.wait_for_timeout(300)
    page.wait_for_function(f"() => {RUN_OVER}")
    page.wait_for_timeout(300)


def knob_changes(page, n: int, shown: str = WINDOW_SHOWN) -> list[float]:
    """Seconds per window-slider change (Home: k' = 1, End: the queue size, in turn), from
    the key press until `shown` (the heatmap's title by default, which must be in view: a live
    chart out of view is drawn when it comes into view) names the new window."""
    thumb = slider_thumb(page, "Window k'")
    seconds = []
    for i in range(n):
        key, wanted = ("Home", "one") if i % 2 == 0 else ("End", "more")
        thumb.focus()
        started = time.perf_counter()
        thumb.press(key)
        page.wait_for_function(shown, arg=wanted)
        seconds.append(time.perf_counter() - started)
        page.wait_for_timeout(300)
    return seconds


def report(name: str, seconds: list[float]) -> None:
    shown = ", ".join(f"{1000 * s:.0f}" for s in seconds)
    median, top = 1000 * statistics.median(seconds), 1000 * max(seconds)
    print(f"{name}: median {median:.0f} ms, max {top:.0f} ms over {len(seconds)} ({shown})")
