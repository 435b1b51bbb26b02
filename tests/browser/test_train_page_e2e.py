"""End to end, the "Train on my data" page in headless Chromium: upload aeon's BasicMotions train
and test files, train the pair by the default protocol on a short budget, see the new models
and their record (test accuracy, how chosen) in the explorer.

The server runs with its own empty user folder ($LARNN_USER_DIR), so the only trained models
are this test's. Screenshots go to a tmp folder (and $LARNN_SCREENSHOT_DIR when set).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_e2e import (
    CHROMIUM,
    CHROMIUM_ARGS,
    playwright_api,
    running_app,
    save_screenshot,
    wait_for_heatmap,
    wait_idle,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="/usr/bin/chromium is missing: apt-get install chromium"
    ),
]
aeon = pytest.importorskip("aeon", reason='aeon reads .ts files: pip install -e ".[aeon]"')
BASIC_MOTIONS = Path(aeon.__file__).parent / "datasets" / "data" / "BasicMotions"
BUDGET_S = 20  # per model: a few epochs per fold


@pytest.fixture(scope="module")
def user_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("user")


@pytest.fixture(scope="module")
def server(user_dir):
    # The shipped checkpoints (no LARNN_CHECKPOINT_DIR), beside the pair trained here.
    with running_app(None, {"LARNN_USER_DIR": str(user_dir)}) as url:
        yield url


def test_upload_basic_motions_train_and_open_the_pair(server, user_dir, tmp_path):
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1900})
            page.set_default_timeout(90_000)
            page.goto(f"{server}/train_on_my_data")
            page.get_by_text("Upload a labelled train file").wait_for()
            wait_idle(page)
            inputs = page.locator("[data-testid='stFileUploaderDropzoneInput']")
            inputs.nth(0).set_input_files(str(BASIC_MOTIONS / "BasicMotions_TRAIN.ts"))
            wait_idle(page)
            inputs.nth(1).set_input_files(str(BASIC_MOTIONS / "BasicMotions_TEST.ts"))
            page.get_by_text("Cases (train / test)").wait_for()
            wait_idle(page)
            values = page.locator("[data-testid='stMetricValue']").all_inner_texts()
            assert values == ["40 / 40", "4", "6", "100"], values
            assert page.locator("[data-testid='stException']").count() == 0
            summary = save_screenshot(page, tmp_path, "train_page_summary.png", full=True)

            page.get_by_text("Chosen from the data: a convolutional stem").wait_for()
            budget = page.get_by_label("Budget per model (s)")
            budget.fill(str(BUDGET_S))
            budget.press("Enter")
            wait_idle(page)
            page.get_by_role("button", name="Train", exact=True).click()
            page.get_by_text("Training on BasicMotions_TRAIN.ts").wait_for()
            page.locator("[data-testid='stPlotlyChart']").first.wait_for()
            # The worker runs at nice +10: on a busy machine its first epoch can take a while,
            # and on an idle one the pair may be done before a redraw shows an epoch.
            open_button = page.get_by_role("button", name="Open in the explorer")
            epoch = page.get_by_text("fold 1/", exact=False).first
            epoch.or_(open_button).wait_for(timeout=600_000)
            training = save_screenshot(page, tmp_path, "train_page_training.png", full=True)

            open_button.wait_for(timeout=600_000)
            wait_idle(page)
            said = page.get_by_text("Done: BasicMotions_TRAIN_").or_(
                page.get_by_text("Done, but a model did not learn")
            )
            assert said.count() >= 1  # the progress line, and the chart title when unlearned
            done = save_screenshot(page, tmp_path, "train_page_done.png", full=True)
            names = sorted(p.name for p in (user_dir / "checkpoints").glob("BasicMotions_*"))
            assert [n.rsplit("_", 2)[1:] for n in names] == [["s0", "larnn"], ["s0", "lstm"]]

            open_button.click()
            wait_for_heatmap(page)
            wait_idle(page)
            sidebar = page.locator("[data-testid='stSidebar']")
            labels = ("LARNN checkpoint", "LSTM baseline checkpoint")
            for label, name in zip(labels, names, strict=True):
                chosen = sidebar.get_by_role("combobox", name=label).input_value()
                assert chosen.startswith(name), (label, chosen)
                assert "chosen over" in chosen and "test " in chosen, chosen  # its record
            page.get_by_text("My data: BasicMotions (.ts), test split: 40 sequences").wait_for()
            assert page.locator("[data-testid='stException']").count() == 0
            page.set_viewport_size({"width": 1400, "height": 2600})
            wait_idle(page)
            explorer = save_screenshot(page, tmp_path, "explorer_basic_motions.png")
        finally:
            browser.close()
    for path in (summary, training, done, explorer):
        assert path.stat().st_size > 10_000
