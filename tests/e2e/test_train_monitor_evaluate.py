"""End to end: launch a short run from Train, watch Monitor's curves grow, see Evaluate's confusion matrix."""

from __future__ import annotations

import json
import re
import time

from playwright.sync_api import expect

from core import data, demo, rundir, runs
from tests.e2e.conftest import screenshot, wait_idle


def _plotted_points(page) -> int:
    """Points in the loss chart's bold (smoothed) lines, read from Plotly's own data."""
    return page.evaluate(
        """() => {
            const plot = [...document.querySelectorAll('.js-plotly-plot')]
                .find(p => (p.layout && p.layout.title && p.layout.title.text || '').includes('Loss'));
            if (!plot) return 0;
            return plot.data.filter(t => !String(t.name).endsWith('(raw)'))
                .reduce((n, t) => n + (t.y ? t.y.filter(v => v !== null).length : 0), 0);
        }"""
    )


def test_train_then_watch_then_evaluate(app_server, e2e_workspace, page):
    root = demo.ensure_demo(e2e_workspace)
    if "e2e-train" not in data.list_splits(e2e_workspace):
        data.save_split(
            data.make_split(data.scan(root), data.SplitSpec("fractions", 0.6, 0.2, 0.2)),
            name="e2e-train",
            workspace=e2e_workspace,
        )

    page.goto(f"{app_server}/train")
    expect(page.get_by_role("heading", name="Train", exact=True)).to_be_visible()
    page.get_by_label("Saved split").click()
    page.get_by_role("option", name="e2e-train").click()
    wait_idle(page)
    page.get_by_role("button", name=re.compile("Quick demo settings")).click()
    wait_idle(page)
    expect(page.get_by_role("spinbutton", name="Image size (pixels)")).to_have_value("32")
    epochs = page.get_by_role("spinbutton", name="Epochs")
    epochs.fill("6")
    epochs.press("Enter")
    wait_idle(page)
    page.get_by_role("button", name=re.compile("Start training")).click()
    expect(page.get_by_text("Started run")).to_be_visible()
    screenshot(page, "train-started")
    run = runs.list_runs(e2e_workspace)[0]  # newest first: the one just launched (other tests add runs)
    assert run["config"]["model"] == "compact" and run["config"]["epochs"] == 6

    page.goto(f"{app_server}/monitor")
    expect(page.get_by_role("heading", name="Monitor", exact=True)).to_be_visible()
    page.get_by_role("radiogroup", name="Points").get_by_text("per batch").click()
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length > 0", timeout=120_000)
    deadline = time.time() + 120
    first = _plotted_points(page)
    while first < 2 and time.time() < deadline:
        page.wait_for_timeout(500)
        first = _plotted_points(page)
    screenshot(page, "monitor-early")
    while _plotted_points(page) <= first and time.time() < deadline:
        page.wait_for_timeout(500)
    second = _plotted_points(page)
    screenshot(page, "monitor-later")
    assert second > first, f"no new points between screenshots ({first} -> {second})"

    while (
        runs.status(run["id"], e2e_workspace)["state"] in runs.ACTIVE_STATES and time.time() < deadline + 120
    ):
        time.sleep(1)
    assert runs.status(run["id"], e2e_workspace)["state"] == "done"

    page.goto(f"{app_server}/evaluate")
    expect(page.get_by_role("heading", name="Evaluate", exact=True)).to_be_visible()
    page.get_by_role("button", name=re.compile("Score on the test pictures")).click()
    expect(page.get_by_text("Test accuracy")).to_be_visible(timeout=120_000)
    heatmap = page.locator(".js-plotly-plot .heatmaplayer")
    expect(heatmap).to_have_count(1)
    screenshot(page, "evaluate-confusion")
    cached = json.loads((rundir.run_dir(run["id"], e2e_workspace) / "eval-best-test.json").read_text())
    assert sum(map(sum, cached["confusion"])) == cached["n"] > 0
