"""End to end: Evaluate → score → "Make the report" → download; the downloaded file opened from disk
(file://) in headless Chromium with every network request blocked: the four Plotly charts draw
and the mistakes' pictures decode."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from core import demo, evaluate, report
from tests.e2e.conftest import screenshot, wait_idle
from tests.test_report import train_small_run


def test_evaluate_makes_a_report_that_opens_offline(app_server, e2e_workspace, page, tmp_path):
    root = demo.generate(tmp_path / "shapes", per_class=100, size=64)
    run_id = train_small_run(e2e_workspace, root, "e2e-report", epochs=8)  # the newest run: Evaluate's pick

    page.goto(f"{app_server}/evaluate")
    page.get_by_label("Run", exact=True).first.click()  # other flows may have made newer runs
    page.get_by_role("option", name=re.compile(re.escape(run_id))).click()
    wait_idle(page)
    page.get_by_role("button", name=re.compile("Score on the test pictures")).click()
    expect(page.get_by_text("Test accuracy")).to_be_visible(timeout=120_000)
    wait_idle(page)
    page.get_by_role("button", name="Make the report").click()
    download_button = page.get_by_role("button", name=re.compile(r"Download the report \(\d+\.\d MB\)"))
    expect(download_button).to_be_visible(timeout=120_000)
    wait_idle(page)
    page.wait_for_function("() => !document.querySelector('[data-stale=\"true\"]')")  # the rerun's leftovers
    download_button.scroll_into_view_if_needed()
    screenshot(page, "evaluate-report-button")
    with page.expect_download() as info:
        download_button.click()
    assert info.value.suggested_filename == f"{run_id}-report.html"
    out = tmp_path / info.value.suggested_filename
    info.value.save_as(out)

    result = evaluate.cached_evaluation(run_id, workspace=e2e_workspace)
    mistakes = min(len(result.top_losses), report.MAX_MISTAKES)
    blocked: list[str] = []

    def offline(route) -> None:
        url = route.request.url
        if url.startswith(("file:", "data:")):
            route.continue_()
        else:
            blocked.append(url)
            route.abort()

    page.context.route("**/*", offline)
    page.goto(out.as_uri())
    expect(page.get_by_role("heading", name="Test results")).to_be_visible()
    expect(page.locator(".js-plotly-plot")).to_have_count(4)  # loss, accuracy, confusion matrix, ROC
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot .main-svg').length >= 8")
    expect(page.locator(".js-plotly-plot .heatmaplayer")).to_have_count(1)  # the confusion matrix drew
    assert page.locator(".js-plotly-plot .scatterlayer .trace").count() >= 5  # curves and ROC lines
    pictures = page.locator('img[src^="data:image/png"]')
    expect(pictures).to_have_count(2 * mistakes)
    widths = pictures.evaluate_all("imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")
    assert widths and all(w == report.THUMB_SIZE for w in widths)
    assert blocked == []  # nothing asked for the network
    screenshot(page, "run-report")
