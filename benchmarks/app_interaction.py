"""How fast the explorer redraws after one interaction, in headless Chromium (issue 11,
"Interaction speed": a time step in < 150 ms, a knob change in < 400 ms, medians).

    python benchmarks/app_interaction.py            # 15 time steps, then 15 knob changes
    python benchmarks/app_interaction.py --changes 30

Starts `streamlit run app/main.py` on a free port (the default dataset, the recall probe, with
the shipped checkpoints), opens it in /usr/bin/chromium and waits for the first render. Then:

- **time step**: ArrowLeft on the "Time step t" slider, timed from the key press until the
  timeline's subplot title names the new t ("Where step t = ...") and Streamlit says the run is
  over (the stApp element's data-test-script-state; its running indicator only shows after
  500 ms of running, so its absence proves nothing);
- **knob change**: the "Window k'" slider, Home (k' = 1) and End (k' = the queue size) in turn,
  timed from the key press until the heatmap's title names the new window and the run is over.

Each latency includes the slider's own debounce in the browser, the server's run and Plotly's
redraw. Prints every latency, the median and the maximum, the load average before and after
(other users' work on a shared machine changes the numbers), the machine's cores, the app's
torch thread count and the server's OS thread count. Not a test: nothing fails on a slow run.
"""

from __future__ import annotations

import argparse
import ast
import os
import time
from pathlib import Path

from app_driver import (
    CHROMIUM,
    CHROMIUM_ARGS,
    REPO_ROOT,
    RUN_OVER,
    knob_changes,
    open_page,
    report,
    slider_thumb,
    start_server,
)

# True once the timeline's title names step t and the run is over.
STEP_SHOWN = """t => {
  const texts = [...document.querySelectorAll('[data-testid=stPlotlyChart] .annotation-text')];
  const shown = texts.some(e => e.textContent.startsWith(`Where step t = ${t} looks`));
  return shown && RUN_OVER;
}""".replace("RUN_OVER", RUN_OVER)


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
    """Seconds per ArrowLeft on the time-step slider, from the key press to the new timeline."""
    thumb = slider_thumb(page, "Time step t")
    value = page.locator("[data-testid='stSlider']").filter(has_text="Time step t")
    value = value.locator("[data-testid='stSliderThumbValue']")
    seconds = []
    for _ in range(n):
        t = int(value.text_content())
        if t == 0:
            raise SystemExit("the time-step slider reached t = 0; ask for fewer steps")
        thumb.focus()
        started = time.perf_counter()
        thumb.press("ArrowLeft")
        page.wait_for_function(STEP_SHOWN, arg=t - 1)
        seconds.append(time.perf_counter() - started)
        page.wait_for_timeout(300)
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
            report("time step (ArrowLeft on t)", time_steps(page, args.changes))
            knob_changes(page, 2)  # warm the caches of both windows
            report("knob change (window k')", knob_changes(page, args.changes))
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
