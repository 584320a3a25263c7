"""End to end: open Try it in presenter mode, upload a picture, see the class bars and the overlay
with the sidebar hidden; presenter mode off brings the sidebar back."""

from __future__ import annotations

import re

import numpy as np
from playwright.sync_api import expect

from core import cache, data, demo, models, rundir, runs
from core.config import QUICK_DEMO, TrainConfig
from core.rundir import RunControl
from core.train import finalize
from tests.e2e.conftest import screenshot, wait_idle

SPLIT = "e2e-try-it"


def quick_demo_like_run(workspace) -> str:
    """A run holding the quick demo's net (compact, 32 px, Adam with a cosine decay), trained here
    on 400 demo shapes per class (~20 s), so the screenshot shows a model that is mostly right."""
    import keras

    root = demo.ensure_demo(workspace)
    if SPLIT not in data.list_splits(workspace):
        split = data.make_split(data.scan(root), data.SplitSpec("counts", 400, 20, 20))
        data.save_split(split, name=SPLIT, workspace=workspace)
    split = data.load_split(SPLIT, workspace)
    config = finalize(TrainConfig(**{**QUICK_DEMO, "split": SPLIT}), workspace)
    run_id = runs.create_run(config.to_dict(), workspace)
    size, batch = config.image_size, config.batch_size
    train = cache.split_arrays(split, "train", (size, size), workspace=workspace)
    steps = config.epochs * -(-len(train.labels) // batch)
    keras.utils.set_random_seed(0)
    model = models.build_scratch(config.model, size, len(split.classes))
    lr = keras.optimizers.schedules.CosineDecay(config.learning_rate, steps)
    model.compile(optimizer=keras.optimizers.Adam(lr), loss=models.loss_for(len(split.classes)))
    x, y = np.asarray(train.images, np.float32), np.asarray(train.labels)
    model.fit(x, y, epochs=config.epochs, batch_size=batch, verbose=0)
    path = rundir.run_dir(run_id, workspace)
    model.save(path / "best.keras")
    RunControl(path).update(state="done", pid=None, classes=split.classes)
    return run_id


def test_presenter_mode_upload_shows_bars_and_overlay(app_server, e2e_workspace, page):
    run_id = quick_demo_like_run(e2e_workspace)
    split = data.load_split(SPLIT, e2e_workspace)
    star = next(p for p in split.files("test") if p.startswith("star/"))
    page.goto(f"{app_server}/try_it?present=1")
    toggle = page.get_by_role("switch", name="Presenter mode")
    expect(toggle).to_be_checked()
    expect(page.get_by_test_id("stSidebar")).to_be_hidden()
    page.get_by_test_id("stFileUploaderDropzoneInput").first.set_input_files(
        str(split.dataset_root + "/" + star)
    )
    expect(page.get_by_role("heading", name=re.compile(r"^It's"))).to_be_visible(timeout=120_000)
    wait_idle(page)
    expect(page.get_by_text(re.compile(r"^\d+% sure$"))).to_be_visible()
    expect(page.get_by_test_id("stPlotlyChart")).to_have_count(1)
    expect(page.get_by_test_id("stPlotlyChart").locator(".bars path")).to_have_count(len(split.classes))
    overlay = page.get_by_test_id("stImage").filter(has_text="Where the network looked").locator("img")
    expect(overlay).to_be_visible()
    assert overlay.evaluate("img => img.naturalWidth") > 0
    expect(page.get_by_test_id("stSidebar")).to_be_hidden()
    assert "present=1" in page.url and f"run={run_id}" in page.url
    screenshot(page, "try-it-presenter")

    toggle.click(force=True)
    expect(page.get_by_role("heading", name="Try it", exact=True)).to_be_visible()
    expect(page.get_by_text("A picture", exact=True)).to_be_visible()  # labels are back
    expect(overlay).to_be_visible()
    expect(page.get_by_text("The warm colours show")).to_be_visible()
    expect(page.get_by_test_id("stPlotlyChart").locator(".bars path")).to_have_count(len(split.classes))
    wait_idle(page)
    expect(page.get_by_test_id("stSidebar")).to_be_visible()
    assert "present=1" not in page.url
    screenshot(page, "try-it")

    page.get_by_text("Sample pictures", exact=True).click()
    wait_idle(page)
    samples = page.get_by_role("button", name="Try this")
    expect(samples).to_have_count(6)
    samples.nth(1).click()  # the second class's first test picture
    expect(page.get_by_test_id("stFileUploader")).to_have_count(0)
    wait_idle(page)
    expect(page.get_by_role("heading", name=re.compile(r"^It's"))).to_be_visible()
    expect(overlay).to_be_visible()
    screenshot(page, "try-it-samples")
