"""End to end: upload a picture on Explain, see the overlay, change the layer, download the PNG."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from core import demo
from tests.e2e.conftest import screenshot, wait_idle


def test_upload_overlay_change_layer_download(app_server, e2e_workspace, quick_demo_run, page, tmp_path):
    picture = next((demo.ensure_demo(e2e_workspace) / "star").iterdir())
    page.goto(f"{app_server}/explain")
    page.get_by_label("Run", exact=True).first.click()  # other flows may have made newer runs
    page.get_by_role("option", name=re.compile(re.escape(quick_demo_run))).click()
    wait_idle(page)
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
