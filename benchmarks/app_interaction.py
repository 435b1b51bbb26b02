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

# Streamlit's own marker of a finished run (its running indicator only shows after 500 ms),
# pasted into the conditions below where they say RUN_OVER.
RUN_OVER = "document.querySelector('[data-testid=stApp]').dataset.testScriptState == 'notRunning'"

# True once the timeline's title names step t and the run is over.
STEP_SHOWN = """t => {
  const texts = [...document.querySelectorAll('[data-testid=stPlotlyChart] .annotation-text')];
  const shown = texts.some(e => e.textContent.startsWith(`Where step t = ${t} looks`));
  return shown && RUN_OVER;
}""".replace("RUN_OVER", RUN_OVER)

# True once the heatmap's title names window 1 (w == "one") or a larger one, and the run is over.
WINDOW_SHOWN = """w => {
  const titles = [...document.querySelectorAll('[data-testid=stPlotlyChart] .gtitle')];
  const title = titles.map(e => e.textContent).find(s => s.includes("window k' = "));
  if (!title) return false;
  const n = Number(title.split("window k' = ")[1].split(':')[0]);
  return (w === 'one' ? n === 1 : n > 1) && RUN_OVER;
}""".replace("RUN_OVER", RUN_OVER)


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


def start_server() -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
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


def slider_thumb(page, label: str):
    return page.locator("[data-testid='stSlider']").filter(has_text=label).get_by_role("slider")


def wait_idle(page) -> None:
    page.wait_for_timeout(300)
    page.wait_for_function(f"() => {RUN_OVER}")
    page.wait_for_timeout(300)


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


def knob_changes(page, n: int) -> list[float]:
    """Seconds per window-slider change, from the key press to the redrawn heatmap's title."""
    thumb = slider_thumb(page, "Window k'")
    seconds = []
    for i in range(n):
        key, wanted = ("Home", "one") if i % 2 == 0 else ("End", "more")
        thumb.focus()
        started = time.perf_counter()
        thumb.press(key)
        page.wait_for_function(WINDOW_SHOWN, arg=wanted)
        seconds.append(time.perf_counter() - started)
        page.wait_for_timeout(300)
    return seconds


def report(name: str, seconds: list[float]) -> None:
    shown = ", ".join(f"{1000 * s:.0f}" for s in seconds)
    median, top = 1000 * statistics.median(seconds), 1000 * max(seconds)
    print(f"{name}: median {median:.0f} ms, max {top:.0f} ms over {len(seconds)} ({shown})")


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
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.set_default_timeout(180_000)
            started = time.perf_counter()
            page.goto(url)
            page.locator("[data-testid='stPlotlyChart'] .heatmaplayer image").first.wait_for()
            wait_idle(page)
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
