"""End to end: open Try it in presenter mode, upload a picture, see the class bars and the overlay
with the sidebar hidden; presenter mode off brings the sidebar back."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from core import data
from tests.e2e.conftest import QUICK_DEMO_SPLIT, screenshot, wait_idle


def test_presenter_mode_upload_shows_bars_and_overlay(app_server, e2e_workspace, quick_demo_run, page):
    run_id = quick_demo_run
    split = data.load_split(QUICK_DEMO_SPLIT, e2e_workspace)
    star = next(p for p in split.files("test") if p.startswith("star/"))
    page.goto(f"{app_server}/try_it?present=1&run={run_id}")  # other flows may have newer runs
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
