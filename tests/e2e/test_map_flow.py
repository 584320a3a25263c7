"""End to end: on Evaluate, open the map of what the network sees, draw it, hover a point and see its
thumbnail, click it and see the picture with its Grad-CAM overlay and the model's answer."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.e2e.conftest import ARTIFACTS, screenshot, wait_idle


def test_map_draws_and_a_click_opens_the_picture(app_server, quick_demo_run, page):
    page.goto(f"{app_server}/evaluate")
    page.get_by_label("Run", exact=True).first.click()  # other flows may have made newer runs
    page.get_by_role("option", name=re.compile(re.escape(quick_demo_run))).click()
    wait_idle(page)
    page.get_by_text("Map of what the network sees").click()
    expect(page.get_by_text(re.compile(r"Drawing the map of 80 pictures takes about"))).to_be_visible()
    page.get_by_role("button", name="Draw the map").click()
    chart = page.get_by_test_id("stVegaLiteChart")
    expect(chart).to_be_visible(timeout=180_000)
    wait_idle(page)
    expect(page.get_by_text(re.compile(r"^80 pictures \(\d+ wrong\), drawn in \d+ s"))).to_be_visible()
    page.wait_for_timeout(1000)  # the chart settles its size after the first draw
    # The points are drawn on a canvas: sweep the mouse over the chart until vega-tooltip shows a
    # point's thumbnail.
    thumb = page.locator("#vg-tooltip-element.visible img")
    chart.scroll_into_view_if_needed()
    box = chart.bounding_box()
    at = _hover_a_point(page, box, thumb)
    assert at is not None, "no point showed a thumbnail on hover"
    expect(thumb).to_be_visible()
    page.wait_for_function(
        "() => document.querySelector('#vg-tooltip-element img')?.naturalWidth > 0", timeout=10_000
    )
    ARTIFACTS.mkdir(exist_ok=True)  # the chart with a hovered thumbnail, for the README
    page.screenshot(path=str(ARTIFACTS / "evaluate-map-hover.png"), clip=box)
    page.mouse.click(*at)
    overlay = page.get_by_test_id("stImage").filter(has_text="Where the network looked").locator("img")
    expect(overlay).to_be_visible(timeout=60_000)
    wait_idle(page)
    assert overlay.evaluate("img => img.naturalWidth") > 0
    expect(
        page.get_by_text(re.compile(r"really .*; the model says .* sure\), so it is (right|wrong)"))
    ).to_be_visible()
    screenshot(page, "evaluate-map-page")
    ARTIFACTS.mkdir(exist_ok=True)  # the map section alone, for the README
    page.set_viewport_size({"width": 1400, "height": 1800})
    wait_idle(page)
    page.locator(".st-key-map_open").screenshot(path=str(ARTIFACTS / "evaluate-map.png"))


def _hover_a_point(page, box: dict, thumb, step: int = 6) -> tuple[float, float] | None:
    """Move the mouse over the chart row by row from its middle; where a thumbnail shows, or None."""
    rows = list(range(int(box["y"] + 30), int(box["y"] + box["height"] - 60), step))
    middle = len(rows) // 2
    for y in rows[middle:] + rows[:middle]:
        for x in range(int(box["x"] + 10), int(box["x"] + box["width"] - 10), step):
            page.mouse.move(x, y)
            if thumb.count():
                return x, y
    return None
