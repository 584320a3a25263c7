"""End to end: on the Augment page, moving a slider in column B redraws B and leaves A alone."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.e2e.conftest import screenshot, wait_idle


def _previews(page):
    return page.get_by_test_id("stImage").locator("img")


def test_augment_b_changes_a_does_not(app_server, page):
    page.goto(f"{app_server}/augment")
    expect(page.get_by_role("heading", name="Augment", exact=True)).to_be_visible()
    wait_idle(page)  # a click during the first run can be lost on a slow machine
    pictures = page.get_by_role("radiogroup", name="Pictures")
    pictures.get_by_text("Demo dataset").click()
    expect(pictures.get_by_role("radio", name="Demo dataset")).to_be_checked()
    wait_idle(page)
    expect(_previews(page)).to_have_count(2, timeout=120_000)  # first visit: demo pictures + TensorFlow
    a_before, b_before = (_previews(page).nth(i).get_attribute("src") for i in range(2))
    screenshot(page, "augment-before")

    rotation_b = page.get_by_role("slider", name="Rotation (degrees)").nth(1)
    rotation_b.focus()
    rotation_b.press("End")  # 180 degrees
    wait_idle(page)
    expect(_previews(page).nth(1)).not_to_have_attribute("src", b_before)
    assert _previews(page).nth(0).get_attribute("src") == a_before
    expect(page.get_by_text("rotation=180.0").first).to_be_attached()  # B's code shows the new setting
    _previews(page).nth(1).scroll_into_view_if_needed()
    screenshot(page, "augment-b-rotated")
