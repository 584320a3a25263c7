"""End to end: upload a picture on Explain, see the overlay, change the layer, download the PNG."""

from __future__ import annotations

import re

import numpy as np
from playwright.sync_api import expect

from core import cache, data, demo, models, rundir, runs
from core.config import TrainConfig
from core.rundir import RunControl
from core.train import finalize
from tests.e2e.conftest import screenshot, wait_idle


def _trained_run(workspace) -> str:
    """A run holding a small net briefly trained on the demo shapes at 64 px."""
    root = demo.ensure_demo(workspace)
    if "e2e-explain" not in data.list_splits(workspace):
        split = data.make_split(data.scan(root), data.SplitSpec("counts", 60, 20, 20))
        data.save_split(split, name="e2e-explain", workspace=workspace)
    split = data.load_split("e2e-explain", workspace)
    config = finalize(
        TrainConfig(
            split="e2e-explain", mode="scratch", model="small", image_size=64, epochs=1, augment_name="none"
        ),
        workspace,
    )
    run_id = runs.create_run(config.to_dict(), workspace)
    model = models.build_scratch("small", 64, len(split.classes))
    model.compile(optimizer="adam", loss=models.loss_for(len(split.classes)), metrics=["accuracy"])
    train = cache.split_arrays(split, "train", (64, 64), workspace=workspace)
    model.fit(np.asarray(train.images, np.float32), np.asarray(train.labels), epochs=2, verbose=0)
    path = rundir.run_dir(run_id, workspace)
    model.save(path / "best.keras")
    RunControl(path).update(state="done", pid=None, classes=split.classes)
    return run_id


def test_upload_overlay_change_layer_download(app_server, e2e_workspace, page, tmp_path):
    _trained_run(e2e_workspace)
    picture = next((demo.ensure_demo(e2e_workspace) / "star").iterdir())
    page.goto(f"{app_server}/explain")
    expect(page.get_by_role("heading", name="Explain", exact=True)).to_be_visible()
    page.get_by_test_id("stFileUploaderDropzoneInput").first.set_input_files(str(picture))
    expect(page.get_by_text("the network says")).to_be_visible(timeout=120_000)
    wait_idle(page)
    overlay = page.get_by_test_id("stImage").filter(has_text="overlay").locator("img")
    before = overlay.get_attribute("src")
    screenshot(page, "explain-overlay")

    page.get_by_label("Layer", exact=True).first.click()
    page.get_by_role("option").first.click()  # the first conv layer instead of the last
    wait_idle(page)
    expect(overlay).not_to_have_attribute("src", before)

    with page.expect_download() as download:
        page.get_by_role("button", name=re.compile("Overlay PNG")).first.click()
    saved = tmp_path / "overlay.png"
    download.value.save_as(saved)
    assert saved.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    screenshot(page, "explain-layer-changed")
