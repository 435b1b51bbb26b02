"""How fast "Attention over the whole split" opens (issue 29: under 2 s on UCI HAR's test split,
2,947 sequences x 128 steps x 9 channels, with each shipped UCI HAR LARNN, run as the app runs
it: batches side by side on `app.resources.SPLIT_WORKERS` threads, torch on one intra-op thread).

    python benchmarks/split_view.py               # the section's computation, cold and cached
    python benchmarks/split_view.py --browser     # and opening the section in headless Chromium

The computation is what the section runs when it opens: `larnn.split_attention.split_attention`
over the whole split (a pass of the LARNN with attention, in batches, and the aggregates), the
head table and the two figures of the model view and the heads. "cold": the aggregate computed
(the first open after a knob change); "cached": through `app.resources` (`st.cache_data`, as the
app: a hit unpickles a copy), each with the figures. Head importance and Integrated Gradients run
on a button, not on opening; one IG sequence is timed per model to say what that button costs.

`--browser` starts the app (`benchmarks/app_driver.py`), picks UCI HAR, and times from the click
on the closed expander until its lag figure is drawn and the run is over: the first open (cold),
on a fresh server each of `--repeats` times; on the first server also closing and reopening it
(cached) and window changes with it open (Home: k' = 1, End: the queue size). The LARNN is the
one the explorer opens UCI HAR on (`EXPLORER_LARNN`). Chromium runs on the same two cores as the
app's server (in use it runs on the user's machine). Prints
ATen's CPU capability and the load average before and after. Not a test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402

from app import resources  # noqa: E402
from larnn import split_attention as sa  # noqa: E402
from larnn.checkpoint import load_checkpoint  # noqa: E402
from larnn.data import Normalizer  # noqa: E402
from larnn.data.uci_har import ENV_VAR  # noqa: E402
from larnn.model import InferenceKnobs  # noqa: E402
from larnn.tasks import load_task  # noqa: E402

LAGS_TITLE = "Where each head looks over the split"
LARNNS = ("uci_har_larnn", "uci_har_larnn_k16")  # the shipped UCI HAR LARNNs, k = 3 and 16
EXPLORER_LARNN = "uci_har_larnn_k16"  # the newest: the explorer's default on UCI HAR
SECTION = "Attention over the whole split"


def median_ms(seconds: list[float]) -> str:
    shown = ", ".join(f"{1000 * s:.0f}" for s in seconds)
    return f"median {1000 * statistics.median(seconds):.0f} ms ({shown})"


def figures_of(split, choice_text: str) -> None:
    """What the section draws from the aggregate: head table, model view, heads figure."""
    from app import figures, split_figures

    table = sa.head_table(split)
    figures.titled(split_figures.lag_figure(split.by_lag, "t"), choice_text)
    figures.titled(split_figures.heads_figure(table, split.uniform_oldest, "t"), choice_text)


def computation(repeats: int, name: str) -> None:
    import logging

    logging.getLogger("streamlit").setLevel(logging.ERROR)  # bare mode: no ScriptRunContext
    checkpoint = load_checkpoint(REPO_ROOT / "checkpoints" / name)
    print(f"--- {name} (k = {checkpoint.config.encoder_config().window})")
    data_dir = os.environ.get(ENV_VAR)
    task = load_task("uci_har", checkpoint.metadata.split, Path(data_dir) if data_dir else None)
    X, y = task.test.X, task.test.y
    print(
        f"UCI HAR test split: {X.shape[0]} sequences x {X.shape[1]} steps x {X.shape[2]} channels"
    )
    normalizer = Normalizer.from_dict(checkpoint.metadata.normalizer)
    knobs = InferenceKnobs(window=checkpoint.config.encoder_config().window)
    model = checkpoint.model
    sa.split_attention(model, X[:64], normalizer, knobs, y[:64])  # the compiled loops loaded
    cold = []
    for _ in range(repeats):
        started = time.perf_counter()
        split = sa.split_attention(model, X, normalizer, knobs, y, workers=resources.SPLIT_WORKERS)
        figures_of(split, "context")
        cold.append(time.perf_counter() - started)
    print(f"cold (aggregate over the whole split + figures): {median_ms(cold)}")
    started = time.perf_counter()
    split = sa.split_attention(model, X, normalizer, knobs, y, workers=resources.SPLIT_WORKERS)
    aggregate = time.perf_counter() - started
    started = time.perf_counter()
    figures_of(split, "context")
    print(
        f"  of which the aggregate {1000 * aggregate:.0f} ms, the figures "
        f"{1000 * (time.perf_counter() - started):.0f} ms (one run)"
    )
    resources.split_attention_of(name, checkpoint, "uci_har|test", X, y, knobs)  # first: a miss
    cached = []
    for _ in range(repeats):
        started = time.perf_counter()
        split = resources.split_attention_of(name, checkpoint, "uci_har|test", X, y, knobs)
        figures_of(split, "context")
        cached.append(time.perf_counter() - started)
    print(f"cached (st.cache_data hit + figures): {median_ms(cached)}")
    print(f"accuracy with the knobs as trained: {split.accuracy:.4f}")
    for other_name in (name, "uci_har_lstm"):
        other = load_checkpoint(REPO_ROOT / "checkpoints" / other_name)
        norm = Normalizer.from_dict(other.metadata.normalizer)
        started = time.perf_counter()
        sa.channel_importance(other.model, X[:10], norm)
        print(
            f"Integrated Gradients ({other_name}, 10 sequences): "
            f"{(time.perf_counter() - started) / 10:.2f} s a sequence"
        )


def browser(repeats: int) -> None:
    """First opens, each on a fresh server (nothing cached); on the first, reopenings and
    window changes too."""
    print(f"--- browser, {EXPLORER_LARNN}")
    from app_driver import CHROMIUM, CHROMIUM_ARGS
    from playwright.sync_api import sync_playwright

    first_opens = []
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for round in range(repeats):
                first_opens.append(browser_round(chromium, repeats if round == 0 else 0))
        finally:
            chromium.close()
    print(f"browser, first open (cold, a fresh server each time): {median_ms(first_opens)}")


def browser_round(chromium, repeats: int) -> float:
    """Start the app, pick UCI HAR, time the section's first open; then `repeats` reopenings
    and window changes. Returns the first open's seconds."""
    from app_driver import RUN_OVER, open_page, start_server, wait_idle

    drawn = f"""() => [...document.querySelectorAll('.gtitle')]
  .some(e => e.textContent.startsWith({LAGS_TITLE!r}))
  && document.body.textContent.includes('all 2,947 sequences') && {RUN_OVER}"""
    closed = f"""() => ![...document.querySelectorAll('.gtitle')]
  .some(e => e.textContent.startsWith({LAGS_TITLE!r})) && {RUN_OVER}"""
    server, url = start_server()
    try:
        page = open_page(chromium, url)
        sidebar = page.locator("[data-testid='stSidebar']")
        sidebar.get_by_text("UCI HAR (smartphone activity)").click()
        page.wait_for_function(  # the data's caption: "... test split: 2947 sequences ..."
            f"() => document.body.textContent.includes('2947 sequences') && {RUN_OVER}"
        )
        wait_idle(page)
        header = page.get_by_text(SECTION, exact=False).first
        opens = []
        for _ in range(repeats + 1):
            header.scroll_into_view_if_needed()
            started = time.perf_counter()
            header.click()
            page.wait_for_function(drawn)
            opens.append(time.perf_counter() - started)
            page.wait_for_timeout(300)
            header.click()  # close it again
            page.wait_for_function(closed)
            wait_idle(page)
        if not repeats:
            return opens[0]
        print(f"browser, reopening (cached): {median_ms(opens[1:])}")
        queue = load_checkpoint(REPO_ROOT / "checkpoints" / EXPLORER_LARNN).config.encoder_config()
        header.click()
        page.wait_for_function(drawn)
        wait_idle(page)
        thumb = (
            page.locator("[data-testid='stSlider']")
            .filter(has_text="Window k'")
            .get_by_role("slider")
        )
        changes = []
        for i in range(repeats):
            key, window = ("Home", 1) if i % 2 == 0 else ("End", queue.queue_size)
            thumb.focus()
            started = time.perf_counter()
            thumb.press(key)
            page.wait_for_function(
                f"""() => [...document.querySelectorAll('.gtitle')].some(e =>
  e.textContent.startsWith({LAGS_TITLE!r}) && /window k' = {window}(?![0-9])/.test(e.textContent))
  && {RUN_OVER}"""
            )
            changes.append(time.perf_counter() - started)
            wait_idle(page)
        print(
            f"browser, window change with the section open (first two cold): {median_ms(changes)}"
        )
        return opens[0]
    finally:
        server.terminate()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--browser", action="store_true", help="also time it in Chromium")
    args = parser.parse_args()
    torch.set_num_threads(1)  # as the app (app.main.TORCH_THREADS)
    print(
        f"ATen CPU capability: {torch.backends.cpu.get_cpu_capability()}, "
        f"{os.cpu_count()} cores, torch threads {torch.get_num_threads()}, "
        f"workers {resources.SPLIT_WORKERS}"
    )
    print(f"load average before: {os.getloadavg()}")
    for name in LARNNS:
        computation(args.repeats, name)
    if args.browser:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        browser(args.repeats)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
