"""Monitor in the browser: the run picker's labels follow runs that change state while the page
is open, also runs other than the one on screen."""

from __future__ import annotations

import subprocess
import sys
import time

from playwright.sync_api import expect

from core import rundir, runs
from core.rundir import RunControl
from tests.e2e.conftest import screenshot, streamlit_server, wait_idle

CONFIG = {"mode": "scratch", "model": "small", "split": "s", "epochs": 3, "image_size": 32}


def _run(workspace, name: str, state: str, pid: int | None) -> str:
    run_id = runs.create_run(CONFIG, workspace, run_id=name)
    RunControl(rundir.run_dir(run_id, workspace)).update(state=state, pid=pid, epoch=1, epochs=3)
    return run_id


def test_picker_labels_follow_a_run_that_ends_while_the_page_is_open(page, tmp_path):
    workspace = tmp_path / "ws"
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        _run(workspace, "20260101-000000-a", "done", None)
        busy = _run(workspace, "20260101-000001-b", "running", worker.pid)
        with streamlit_server(tmp_path / "log.txt", env={"CONVNET_WORKSPACE": str(workspace)}) as url:
            page.goto(f"{url}/monitor")
            picker = page.get_by_label("Run", exact=True)
            expect(page.get_by_text("State", exact=True)).to_be_visible()  # not the table's "state"
            wait_idle(page)
            picker.click()
            expect(page.get_by_role("option", name=f"{busy} · running")).to_be_visible()
            page.get_by_role("option", name="20260101-000000-a").click()  # watch the finished one
            wait_idle(page)

            RunControl(rundir.run_dir(busy, workspace)).update(state="done", ended=time.time())
            worker.kill()
            time.sleep(7)  # longer than the idle poll: the page has had its chance to look again
            picker.click()
            expect(page.get_by_role("option", name=f"{busy} · done")).to_be_visible()
            expect(page.get_by_role("option", name=f"{busy} · running")).to_have_count(0)
            screenshot(page, "monitor-picker-follows-state")
    finally:
        worker.kill()
        worker.wait()
