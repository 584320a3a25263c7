"""End to end: a run's report opened from disk (file://) in headless Chromium with every network
request blocked: the four Plotly charts draw and the mistakes' pictures decode."""

from __future__ import annotations

from playwright.sync_api import expect

from core import demo, evaluate, report
from tests.e2e.conftest import screenshot
from tests.test_report import train_small_run


def test_report_opens_offline_with_charts_and_pictures(tmp_path, page):
    ws = tmp_path / "workspace"
    root = demo.generate(ws / "datasets" / "shapes", per_class=100, size=64)
    run_id = train_small_run(ws, root, "shapes", epochs=8)
    out = report.write_report(run_id, tmp_path / "report.html", workspace=ws)
    result = evaluate.cached_evaluation(run_id, workspace=ws)
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
    charts = page.locator(".js-plotly-plot")
    expect(charts).to_have_count(4)  # loss, accuracy, confusion matrix, ROC
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot .main-svg').length >= 8")
    expect(page.locator(".js-plotly-plot .heatmaplayer")).to_have_count(1)  # the confusion matrix drew
    assert page.locator(".js-plotly-plot .scatterlayer .trace").count() >= 5  # curves and ROC lines
    pictures = page.locator('img[src^="data:image/png"]')
    expect(pictures).to_have_count(2 * mistakes)
    widths = pictures.evaluate_all("imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")
    assert widths and all(w == report.THUMB_SIZE for w in widths)
    assert blocked == []  # nothing asked for the network
    screenshot(page, "run-report")
