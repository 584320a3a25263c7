"""End to end: on Evaluate, mark two confident mistakes (one mislabelled, one left out), save the
cleaned split, and find it offered on Train with what changed."""

from __future__ import annotations

import re
import time

from playwright.sync_api import expect

from core import data, marks
from core.data import cleaning
from tests.conftest import colors_run_in
from tests.e2e.conftest import screenshot, wait_idle

SPLIT = "e2e-colors"
RED_ODD, BLUE_ODD = "test/red/red_odd.png", "test/blue/blue_odd.png"  # see tests/conftest.colors


def settle(page) -> None:
    """Wait for the rerun to end and the last run's (stale) elements to go."""
    wait_idle(page)
    page.wait_for_function("() => !document.querySelector('[data-stale=\"true\"]')")


def choose(page, label: str, option: str, done=lambda: True) -> None:
    """Pick `option` in the select box labelled `label` by typing it (the option list of a box low
    on the page can open outside the viewport), then wait until `done()` and the rerun are over."""
    box = page.get_by_role("combobox", name=label, exact=True)
    expect(box).to_have_count(1)
    box.scroll_into_view_if_needed()
    box.click()
    box.fill(option)
    box.press("Enter")
    deadline = time.time() + 30
    while not done():
        assert time.time() < deadline, f"{label}: {option} did not take effect"
        page.wait_for_timeout(100)
    settle(page)
    expect(box).to_have_value(option)


def test_mark_two_mistakes_save_and_train_on_the_cleaned_split(
    app_server, e2e_workspace, page, colors, colors_model
):
    run_id = colors_run_in(e2e_workspace, colors, colors_model, SPLIT, None)  # a dated id: sorts by time
    original = data.split_path(SPLIT, e2e_workspace).read_bytes()

    page.goto(f"{app_server}/evaluate")
    expect(page.get_by_role("heading", name="Evaluate", exact=True)).to_be_visible()
    page.get_by_label("Run").click()
    page.get_by_role("option", name=re.compile(f"^{run_id}")).click()
    wait_idle(page)
    page.get_by_role("button", name=re.compile("Score on the test pictures")).click()
    expect(page.get_by_role("heading", name="Mistakes")).to_be_visible(timeout=120_000)
    settle(page)
    pending = lambda: set(marks.pending(SPLIT, e2e_workspace))  # noqa: E731
    choose(page, f"Mark {RED_ODD}", "Label is wrong → blue", lambda: pending() == {RED_ODD})
    choose(page, f"Mark {BLUE_ODD}", "Leave out", lambda: pending() == {RED_ODD, BLUE_ODD})
    expect(page.get_by_role("heading", name="Marked pictures")).to_be_visible()
    name = page.get_by_role("textbox", name="Name of the new split version")
    expect(name).to_have_value(f"{SPLIT}-clean-1")
    page.get_by_text("Mistakes", exact=True).scroll_into_view_if_needed()
    screenshot(page, "cleaning-marks")

    page.get_by_role("button", name=re.compile("Save as a new split version")).click()
    expect(page.get_by_text(f"Saved split '{SPLIT}-clean-1' (1 relabelled, 1 left out)")).to_be_visible()
    wait_idle(page)
    screenshot(page, "cleaning-saved")
    assert data.split_path(SPLIT, e2e_workspace).read_bytes() == original
    record = cleaning.read_record(f"{SPLIT}-clean-1", e2e_workspace)
    assert [(c["file"], c.get("to"), bool(c.get("dropped"))) for c in record.changes] == [
        (RED_ODD, "blue", False),
        (BLUE_ODD, None, True),
    ]

    page.goto(f"{app_server}/train")
    expect(page.get_by_role("heading", name="Train", exact=True)).to_be_visible()
    label = f"{SPLIT}-clean-1 (cleaned from {SPLIT}: 1 relabelled, 1 left out)"
    choose(page, "Saved split", label)
    screenshot(page, "cleaning-train")
