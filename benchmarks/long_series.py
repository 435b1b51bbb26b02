"""How the explorer serves a long uploaded series, in headless Chromium (issue 11, item 3:
a 100,000-step upload renders in < 15 s and a knob change on it in < 5 s on the 2-core CPU).

    python benchmarks/long_series.py                   # 100,000 steps x 9 channels
    python benchmarks/long_series.py --steps 5000 --repeats 3 --changes 4
    python benchmarks/long_series.py --steps 20000 --limit 240

Writes a wide CSV of `--steps` x 9 in UCI HAR's channel layout (the names and units of the
shipped checkpoints/uci_har_larnn, values at its normaliser's scale, written by the app's own
`example_csv`, so exactly what its "Example CSV" button gives), starts `streamlit run
app/main.py` on a free port and opens it in /usr/bin/chromium. Then, `--repeats` times (each
on a fresh page, the server and its caches kept):

- **upload**: choose "My own series (upload)" in the sidebar, wait for the page to settle,
  hand the CSV to the uploader and time from there until the first attention heatmap is drawn
  and Streamlit says the run is over (the stApp element's data-test-script-state). The first
  repetition reads the file, runs both UCI HAR models (the app picks those that read the
  file's channels) and fills the caches; later ones show what a returning visitor pays.
- **knob change** (on the last page): the "Window k'" slider, Home (k' = 1) and End (the
  queue size) in turn, as `app_driver.knob_changes`, `--changes` times each way after two
  warm-ups that fill the caches of both windows; reported each way apart, as drawing k' = 1
  costs far less than drawing the whole queue. These are cache hits: both windows ran in
  the warm-ups.
- **new window** (same page): ArrowLeft from End, `--changes` times (k' = K-1, K-2, ...),
  each a window not run before: the model runs the whole series again.

Every wait gives up after `--limit` seconds; what happened then is printed (a JavaScript
error in the page, a crashed tab, an error shown by the app, or a plain time-out) and the
script goes on to the summary. Prints the load average before and after, the cores, the
app's torch threads, and the server's peak resident memory (VmHWM, sampled while waiting;
past `--max-rss-mb`, default 12,000, the server is stopped and the run ends there). Not a
test: nothing fails on a slow run. On a shared machine, pause other jobs while it runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from app_driver import (
    CHART_DOCUMENTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    HEATMAP_DRAWN,
    REPO_ROOT,
    RUN_OVER,
    WINDOW_SHOWN,
    slider_thumb,
    start_server,
    wait_idle,
)
from app_interaction import torch_threads

sys.path.insert(0, str(REPO_ROOT))  # for the app's own example CSV
from app import catalog, uploads  # noqa: E402

CHECKPOINT = REPO_ROOT / "checkpoints" / "uci_har_larnn"
UPLOADER = "[data-testid='stSidebar'] [data-testid='stFileUploaderDropzoneInput']"

# True once the attention heatmap is drawn and the run is over.
HEATMAP_DRAWN_AND_RUN_OVER = f"() => ({HEATMAP_DRAWN})() && {RUN_OVER}"

# True once the heatmap's title names window k' = n and the run is over.
WINDOW_IS = """n => {
  const titles = CHART_DOCUMENTS.flatMap(d => [...d.querySelectorAll('.gtitle')]);
  const title = titles.map(e => e.textContent).find(s => s.includes("window k' = "));
  return title !== undefined && Number(title.split("window k' = ")[1].split(':')[0]) === n
    && RUN_OVER;
}""".replace("RUN_OVER", RUN_OVER).replace("CHART_DOCUMENTS", CHART_DOCUMENTS)

# What the app shows when a section fails: Streamlit's exception box or an st.error.
APP_ERRORS = """() => {
  const boxes = '[data-testid=stException], [data-testid=stAlertContentError]';
  const shown = [...document.querySelectorAll(boxes)].map(e => e.innerText.slice(0, 300));
  const text = document.body.innerText;
  const at = text.search(/RangeError|Invalid string length/);
  return at < 0 ? shown : [...shown, text.slice(Math.max(0, at - 100), at + 200)];
}"""


class Gave(Exception):
    """A wait that ended without the page it waited for; the message says why."""


def write_series(steps: int, folder: Path) -> Path:
    """A (steps, 9) wide CSV in UCI HAR's channel layout, at its training data's scale."""
    metadata = json.loads((CHECKPOINT / "metadata.json").read_text())
    X = uploads.example_series(metadata["normalizer"], length=steps)  # (T, C)
    path = folder / f"uci_har_{steps}_steps.csv"
    path.write_bytes(uploads.example_csv(X, metadata["channel_names"]))
    return path


def load() -> str:
    return ", ".join(f"{v:.2f}" for v in os.getloadavg())


class Server:
    """The app's server process and the most memory it was seen to hold; stopped when it
    holds more than `max_rss_mb` (the tester's 100,000-step upload grew it past 19 GB)."""

    def __init__(self, process, max_rss_mb: float) -> None:
        self.process = process
        self.max_rss_mb = max_rss_mb
        self.peak_mb = 0.0

    def check(self) -> str | None:
        """Why the server can serve no more (exited, or stopped here for its memory); else None."""
        if self.process.poll() is not None:
            return f"the server exited with status {self.process.returncode}"
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text().splitlines()
        except OSError:
            return None
        for line in status:
            if line.startswith("VmHWM:"):
                self.peak_mb = max(self.peak_mb, int(line.split()[1]) / 1024)
        if self.peak_mb > self.max_rss_mb:
            self.process.kill()
            return f"the server held {self.peak_mb:,.0f} MB (over --max-rss-mb): stopped it"
        return None


class Watched:
    """A page whose JavaScript errors and crash are recorded, so a wait can say why it ended."""

    def __init__(self, browser, url: str, limit_s: float, server: Server) -> None:
        self.problems: list[str] = []
        self.server = server
        self.limit_ms = 1000 * limit_s
        self.page = browser.new_page(viewport={"width": 1440, "height": 1000})
        self.page.set_default_timeout(self.limit_ms)
        self.page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        self.page.on("crash", lambda _: self.problems.append("the tab crashed"))
        self.page.goto(url)

    def wait(self, condition: str, arg=None) -> None:
        """Wait for `condition`, polling; Gave when the page errs, crashes or the limit passes."""
        started = time.monotonic()
        deadline = started + self.limit_ms / 1000
        while True:
            stopped = self.server.check()
            if stopped:
                self.problems.append(stopped)
            if self.problems:
                waited = time.monotonic() - started
                raise Gave(f"{'; '.join(self.problems)} ({waited:.0f} s into the wait)")
            try:
                if self.page.evaluate(condition, arg):
                    return
            except Exception as error:  # a crashed or closed page
                raise Gave(f"{type(error).__name__}: {str(error)[:300]}") from error
            if time.monotonic() > deadline:
                raise Gave(f"still not drawn after {self.limit_ms / 1000:.0f} s")
            time.sleep(0.1)

    def app_errors(self) -> list[str]:
        try:
            return self.page.evaluate(APP_ERRORS)
        except Exception:
            return []


def upload(watched: Watched, csv: Path) -> float:
    """Seconds from handing `csv` to the uploader of "My own series" on a fresh page to the
    first heatmap drawn."""
    page = watched.page
    watched.wait(f"() => {RUN_OVER} && document.querySelector('[data-testid=stSidebar]')")
    page.locator("[data-testid='stSidebar']").get_by_text(
        catalog.dataset_label(catalog.UPLOAD)
    ).click()
    wait_idle(page)
    page.wait_for_selector(UPLOADER, state="attached")
    started = time.perf_counter()
    page.locator(UPLOADER).set_input_files(str(csv))
    page.wait_for_timeout(300)  # the upload starts a run; before it, the old page is "over"
    watched.wait(HEATMAP_DRAWN_AND_RUN_OVER)
    return time.perf_counter() - started


def knob_change(watched: Watched, i: int) -> float:
    """Seconds for one window-slider change: Home (k' = 1) when i is even, else End."""
    key, wanted = ("Home", "one") if i % 2 == 0 else ("End", "more")
    thumb = slider_thumb(watched.page, "Window k'")
    thumb.focus()
    started = time.perf_counter()
    thumb.press(key)
    watched.wait(WINDOW_SHOWN, wanted)
    seconds = time.perf_counter() - started
    watched.page.wait_for_timeout(300)
    return seconds


def new_windows(watched: Watched, n: int, seconds: list[float]) -> None:
    """Seconds per ArrowLeft on the window slider from its end (k' = K-1, K-2, ...), added to
    `seconds`: each a window not run before, so the model runs the whole series again."""
    thumb = slider_thumb(watched.page, "Window k'")
    thumb.focus()
    thumb.press("End")
    watched.page.wait_for_timeout(300)
    watched.wait(WINDOW_SHOWN, "more")
    value = watched.page.locator("[data-testid='stSlider']").filter(has_text="Window k'")
    window = int(value.locator("[data-testid='stSliderThumbValue']").text_content())
    for _ in range(min(n, window - 1)):
        window -= 1
        thumb.focus()
        started = time.perf_counter()
        thumb.press("ArrowLeft")
        watched.wait(WINDOW_IS, window)
        seconds.append(time.perf_counter() - started)
        print(f"new window k' = {window}: {seconds[-1]:.1f} s", flush=True)
        watched.page.wait_for_timeout(300)


def summary(name: str, seconds: list[float]) -> str:
    if not seconds:
        return f"{name}: none completed"
    shown = ", ".join(f"{s:.1f}" for s in seconds)
    return f"{name}: median {statistics.median(seconds):.1f} s over {len(seconds)} ({shown})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=100_000, help="time steps of the series")
    parser.add_argument("--repeats", type=int, default=3, help="uploads, each on a fresh page")
    parser.add_argument("--changes", type=int, default=2, help="timed knob changes each way")
    parser.add_argument("--limit", type=float, default=180, help="seconds before a wait gives up")
    parser.add_argument(
        "--max-rss-mb", type=float, default=12_000, help="stop the server past this memory"
    )
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    print(f"load average {load()}; {os.cpu_count()} cores; app torch threads {torch_threads()}")
    with tempfile.TemporaryDirectory() as folder:
        csv = write_series(args.steps, Path(folder))
        print(f"series: {csv.name}, {args.steps:,} x 9, {csv.stat().st_size / 1e6:.1f} MB")
        uploads: list[float] = []
        changes: list[float] = []
        misses: list[float] = []
        server = None
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                process, url = start_server()
                server = Server(process, args.max_rss_mb)
                watched = None
                for repeat in range(args.repeats):
                    if watched is not None:
                        watched.page.close()
                    watched = Watched(browser, url, args.limit, server)
                    seconds = upload(watched, csv)
                    uploads.append(seconds)
                    print(f"upload {repeat + 1}: first render {seconds:.1f} s", flush=True)
                    for error in watched.app_errors():
                        print(f"  the app shows: {error}")
                for i in range(2 * args.changes + 2):
                    seconds = knob_change(watched, i)
                    if i >= 2:  # two warm-ups fill the caches of both windows
                        changes.append(seconds)
                    print(f"knob change {i + 1}: {seconds:.1f} s", flush=True)
                new_windows(watched, args.changes, misses)
            except Gave as why:
                print(f"gave up: {why}")
                if watched is not None:
                    for error in watched.app_errors():
                        print(f"  the app shows: {error}")
            finally:
                print(summary("upload to first render, cold caches", uploads[:1]))
                print(summary("upload to first render, warm (same file again)", uploads[1:]))
                print(summary("knob change to k' = 1 (Home)", changes[::2]))
                print(summary("knob change to the whole queue (End)", changes[1::2]))
                print(summary("knob change to a window not run before", misses))
                if server is not None:
                    server.check()
                    print(f"server peak RSS (VmHWM): {server.peak_mb:,.0f} MB")
                browser.close()
                if server is not None:
                    server.process.terminate()
                    server.process.wait(timeout=20)
    print(f"load average after: {load()}")


if __name__ == "__main__":
    main()
