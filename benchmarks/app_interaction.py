"""How fast the explorer redraws after one interaction, in headless Chromium (issue 11,
"Interaction speed": a time step in < 150 ms, a knob change in < 400 ms, medians).

    python benchmarks/app_interaction.py            # 15 time steps, then 15 knob changes
    python benchmarks/app_interaction.py --changes 30

Starts `streamlit run app/main.py` on a free port (the default dataset, the recall probe, with
the shipped checkpoints), opens it in /usr/bin/chromium and waits for the first render. Then:

- **time step**: a click on the timeline's own slider (Plotly's, moved in the browser: no
  rerun), timed in the page from the mousedown to the first animation frame in which the
  timeline draws its line at the new t;
- **knob change**: the "Window k'" slider, Home (k' = 1) and End (k' = the queue size) in turn,
  timed from the key press until the chart in view names the new window and the run is over:
  first with the timeline in view (its legend), then with the heatmap (its title). The charts
  out of view are drawn when they come into view (app.live_chart), so what is in view decides
  how much a change draws: the timeline is the costliest chart on the page.

A knob change's latency includes the slider's own debounce in the browser, the server's run
and Plotly's redraw; a time step's, Plotly's update of the timeline. Prints every latency, the
median and the maximum, the load average before and after (other users' work on a shared
machine changes the numbers), the machine's cores, the app's torch thread count and the
server's OS thread count. Not a test: nothing fails on a slow run.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import time
from pathlib import Path

from app_driver import (
    CHROMIUM,
    CHROMIUM_ARGS,
    LINE_AT_STEP,
    LIVE_CHARTS,
    REPO_ROOT,
    TIMELINE_WINDOW_SHOWN,
    chart_frame,
    knob_changes,
    open_page,
    report,
    start_server,
)

# Milliseconds from the last mousedown to the first animation frame in which the timeline
# draws its line at step t, or false until then.
STEP_SHOWN_MS = f"t => ({LINE_AT_STEP})(t) && performance.now() - window.__mousedown"
MARK_MOUSEDOWN = """() => window.addEventListener(
  'mousedown', () => { window.__mousedown = performance.now(); }, true)"""


# True once the heatmap's title names window 1 (w == "one") or a larger one, and the run is over.
def torch_threads() -> int:
    """The app's TORCH_THREADS, read from app/main.py without running it."""
    tree = ast.parse((REPO_ROOT / "app" / "main.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "TORCH_THREADS" for target in node.targets
        ):
            return ast.literal_eval(node.value)
    raise SystemExit("app/main.py has no TORCH_THREADS")


def os_threads(pid: int) -> str:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Threads:"):
                return line.split()[1]
    except OSError:
        pass
    return "?"


def time_steps(page, n: int) -> list[float]:
    """Seconds per click on the timeline's own time-step slider (Plotly's, in the browser), from
    the mousedown to the first frame showing the new step; the clicks walk along the rail."""
    frame = chart_frame(page, ".slider-container")  # the timeline
    frame.locator(".slider-container").first.scroll_into_view_if_needed()
    rail = frame.locator(".slider-rail-rect").first.bounding_box()  # in the page's pixels
    label = frame.locator(".slider-container text").first
    frame.evaluate(MARK_MOUSEDOWN)
    seconds = []
    for i in range(n):
        fraction = 0.05 + 0.9 * ((i * 0.37) % 1.0)  # spread over the rail, never the same step
        before = label.text_content()
        page.mouse.click(rail["x"] + fraction * rail["width"], rail["y"] + rail["height"] / 2)
        t = int(re.search(r"t = (\d+)", label.text_content()).group(1))
        if label.text_content() == before:
            continue  # the click landed on the step already shown
        shown = frame.wait_for_function(STEP_SHOWN_MS, arg=t, polling="raf")
        seconds.append(shown.json_value() / 1000)
        page.wait_for_timeout(200)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--changes", type=int, default=15, help="time steps and knob changes")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"load average {load}; {os.cpu_count()} cores; app torch threads {torch_threads()}")
    server = None
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            server, url = start_server()
            started = time.perf_counter()
            page = open_page(browser, url)
            print(f"first render: {time.perf_counter() - started:.1f} s")
            time_steps(page, 2)  # warm-up, not counted
            report("time step (click on the timeline's slider)", time_steps(page, args.changes))
            # The timeline in view (scrolled there by the time steps), then the heatmap.
            knob_changes(page, 2, TIMELINE_WINDOW_SHOWN)  # warm the caches of both windows
            changes = knob_changes(page, args.changes, TIMELINE_WINDOW_SHOWN)
            report("knob change (window k'), the timeline in view", changes)
            # The heatmap at the bottom of the view, as when the page opens (centred, the
            # timeline's top would come into view and be drawn too).
            page.locator(LIVE_CHARTS).first.evaluate("f => f.scrollIntoView({block: 'end'})")
            changes = knob_changes(page, args.changes)
            report("knob change (window k'), the heatmap in view", changes)
            print(f"server OS threads after the run: {os_threads(server.pid)}")
        finally:
            browser.close()
            if server is not None:
                server.terminate()
                server.wait(timeout=20)
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"load average after: {load}")


if __name__ == "__main__":
    main()
