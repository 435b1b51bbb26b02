"""Two numbers for issue 12 ("Speed"): the wall time of training aeon's BasicMotions pair with the
"Train on my data" page's default settings, through the same job runner (larnn.jobs: a worker
process at nice +10 on one torch thread), and how long a knob change in the explorer takes while
that job runs, against the same change with no job.

    python scripts/train_job_timing.py                  # idle knob changes, then the job
    python scripts/train_job_timing.py --changes 10 --skip-knobs

A knob change: the window slider of the explorer's first screen (Home: k' = 1, End: k' = the
queue size), timed in headless Chromium from the key press until the heatmap's title names the
new window and Streamlit has finished the run. Prints every latency, the median, and the
machine's load average, which other users' work on a shared machine changes.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def basic_motions() -> tuple[Path, Path]:
    import aeon

    folder = Path(aeon.__file__).parent / "datasets" / "data" / "BasicMotions"
    return folder / "BasicMotions_TRAIN.ts", folder / "BasicMotions_TEST.ts"


def default_spec(user: Path):
    from app import training
    from larnn import jobs

    train, test = basic_motions()
    train_path = jobs.save_upload(train.name, train.read_bytes(), user)
    test_path = jobs.save_upload(test.name, test.read_bytes(), user)
    summary = training.summarise(training.read_upload(train_path), training.read_upload(test_path))
    suggestion = jobs.suggest(summary.train_cases, summary.mean_length)  # what the page offers
    return jobs.JobSpec(
        train_file=str(train_path),
        test_file=str(test_path),
        preset=suggestion.preset,
        epochs=suggestion.epochs,
        batch_size=suggestion.batch_size,
    )


def start_server(user: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "LARNN_USER_DIR": str(user), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "streamlit", "run", "app/main.py"]
    command += ["--server.headless", "true", "--server.port", str(port)]
    command += ["--server.address", "127.0.0.1", "--server.fileWatcherType", "none"]
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


# True once the heatmap's title names window 1 (w == "one") or a larger one, and the run is over.
TITLE_SHOWS = """w => {
  const titles = [...document.querySelectorAll('[data-testid=stPlotlyChart] .gtitle')];
  const title = titles.map(e => e.textContent).find(s => s.includes("window k' = "));
  if (!title) return false;
  const n = Number(title.split("window k' = ")[1].split(':')[0]);
  const busy = document.querySelector('[data-testid="stStatusWidget"]');
  return (w === 'one' ? n === 1 : n > 1) && !busy;
}"""


def knob_changes(page, n: int) -> list[float]:
    """Seconds per window-slider change, from the key press to the redrawn heatmap's title."""
    thumb = (
        page.locator("[data-testid='stSlider']").filter(has_text="Window k'").get_by_role("slider")
    )
    seconds = []
    for i in range(n):
        key, wanted = ("Home", "one") if i % 2 == 0 else ("End", "more")
        thumb.focus()
        started = time.perf_counter()
        thumb.press(key)
        page.wait_for_function(TITLE_SHOWS, arg=wanted, timeout=120_000)
        seconds.append(time.perf_counter() - started)
        page.wait_for_timeout(300)
    return seconds


def report(name: str, seconds: list[float]) -> None:
    shown = ", ".join(f"{s:.2f}" for s in seconds)
    print(f"{name}: median {statistics.median(seconds):.2f} s, max {max(seconds):.2f} s ({shown})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--changes", type=int, default=8, help="knob changes per condition")
    parser.add_argument("--skip-knobs", action="store_true", help="only time the training job")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO_ROOT))
    from larnn import jobs
    from larnn.checkpoint import load_checkpoint

    user = Path(tempfile.mkdtemp(prefix="larnn-timing-"))
    spec = default_spec(user)
    print(f"job: preset {spec.preset}, {spec.epochs} epochs, batch {spec.batch_size}, ", end="")
    print(f"{spec.threads} torch thread(s), nice +{spec.nice}; load average {os.getloadavg()}")
    server = browser = page = None
    try:
        if not args.skip_knobs:
            from playwright.sync_api import sync_playwright

            playwright = sync_playwright().start()
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
            )
            server, url = start_server(user)
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.set_default_timeout(120_000)
            page.goto(url)
            page.locator("[data-testid='stPlotlyChart'] .heatmaplayer image").first.wait_for()
            knob_changes(page, 2)  # warm the caches of both windows
            report("knob change, no job", knob_changes(page, args.changes))
        started = time.perf_counter()
        job, _ = jobs.start_job(spec, user)
        if page is not None:
            while not job.status().history and job.status().running:
                time.sleep(0.5)  # the worker is training (not importing torch)
            report("knob change, job training", knob_changes(page, args.changes))
            after = job.status()
            done = {a: sum(r.model == a for r in after.history) for a in jobs.ARCHITECTURES}
            print(f"  (after the last change: epochs done {done}, job {after.state})")
        status = job.wait(timeout=3600, poll=0.5)
        wall = time.perf_counter() - started
        load = os.getloadavg()
        print(f"job {status.state} in {wall:.1f} s wall (start_job to done); load {load}")
        for architecture, name in status.checkpoints.items():
            meta = load_checkpoint(jobs.checkpoints_dir(user) / name).metadata
            print(
                f"  {architecture}: {meta.training_seconds:.1f} s in epochs, best epoch "
                f"{meta.train_config['best_epoch']}, val {meta.metrics['val']['accuracy']:.3f}, "
                f"test {meta.metrics['test']['accuracy']:.3f}"
            )
    finally:
        if browser is not None:
            browser.close()
        if server is not None:
            server.terminate()
            server.wait(timeout=20)


if __name__ == "__main__":
    main()
