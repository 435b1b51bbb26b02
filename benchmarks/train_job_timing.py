"""Two numbers for issue 12 ("Speed"): the wall time of training aeon's BasicMotions pair with the
"Train on my data" page's default settings, through the same job runner (larnn.jobs: a worker
process at nice +10 on one torch thread), and how long a knob change in the explorer takes while
that job runs, against the same change with no job.

    python benchmarks/train_job_timing.py                  # idle knob changes, then the job
    python benchmarks/train_job_timing.py --changes 10 --skip-knobs

A knob change: the window slider of the explorer's first screen (Home: k' = 1, End: k' = the
queue size), timed in headless Chromium from the key press until the heatmap's title names the
new window and Streamlit's run state says the run is over (app_driver.py). Prints every
latency, the median, and the machine's load average, which other users' work on a shared
machine changes.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from app_driver import (
    CHROMIUM,
    CHROMIUM_ARGS,
    REPO_ROOT,
    knob_changes,
    open_page,
    report,
    start_server,
)


def basic_motions() -> tuple[Path, Path]:
    import aeon

    folder = Path(aeon.__file__).parent / "datasets" / "data" / "BasicMotions"
    return folder / "BasicMotions_TRAIN.ts", folder / "BasicMotions_TEST.ts"


def default_spec(user: Path):
    from larnn import jobs

    train, test = basic_motions()
    train_path = jobs.save_upload(train.name, train.read_bytes(), user)
    test_path = jobs.save_upload(test.name, test.read_bytes(), user)
    return jobs.JobSpec(train_file=str(train_path), test_file=str(test_path))  # the page's


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
    print(f"job: the default protocol, {spec.budget_s:.0f} s budget per model, ", end="")
    print(f"{spec.threads} torch thread(s), nice +{spec.nice}; load average {os.getloadavg()}")
    server = browser = page = None
    try:
        if not args.skip_knobs:
            from playwright.sync_api import sync_playwright

            playwright = sync_playwright().start()
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            server, url = start_server({"LARNN_USER_DIR": str(user)})
            page = open_page(browser, url)
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
                f"  {architecture}: refit {meta.train_config['epochs']} epochs "
                f"({meta.training_seconds:.1f} s), test {meta.metrics['test']['accuracy']:.3f}"
            )
    finally:
        if browser is not None:
            browser.close()
        if server is not None:
            server.terminate()
            server.wait(timeout=20)


if __name__ == "__main__":
    main()
