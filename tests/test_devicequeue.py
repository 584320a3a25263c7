"""core.devicequeue: one run at a time holds the device, in submission order; dead tickets are skipped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

from core import devicequeue, rundir, runs
from tests.conftest import make_demo_split
from tests.runhelpers import device_held, log_tail, submit, wait_for


def test_queued_runs_never_overlap_and_a_stopped_queued_run_never_trains(workspace):
    make_demo_split(workspace, per_class=8, size=48)
    quick = dict(image_size=48, epochs=1, batch_size=8)
    ids = [submit(workspace, **quick) for _ in range(3)]
    overlap, stopped = False, None
    deadline = time.time() + 240
    while True:
        statuses = {r: runs.status(r, workspace) for r in ids}
        states = [s["state"] for s in statuses.values()]
        overlap |= states.count("running") > 1
        if stopped is None and "running" in states:
            # The others wait for the device; stop one of them while the first has just begun.
            waiting = [r for r, s in statuses.items() if s["state"] == "queued" and s.get("message")]
            if waiting:
                stopped = waiting[0]
                runs.stop(stopped, workspace)
        if not any(s in runs.ACTIVE_STATES for s in states):
            break
        assert time.time() < deadline, states
        time.sleep(0.05)
    assert not overlap and stopped is not None
    status = runs.status(stopped, workspace)
    assert status["state"] == "stopped" and status["message"] == "stopped while queued"
    assert "started" not in status and runs.metrics(stopped, workspace) == []
    assert not (rundir.run_dir(stopped, workspace) / "last.keras").exists()
    a, b = (runs.status(r, workspace) for r in ids if r != stopped)
    assert a["state"] == b["state"] == "done"
    (_, end1), (start2, _) = sorted([(a["started"], a["ended"]), (b["started"], b["ended"])])
    assert end1 <= start2  # one after the other


def test_the_queue_serves_runs_in_submission_order(workspace):
    """Three tiny real runs wait for the device; the first in line is suspended for a while when the
    device comes free: the others still wait for it (FIFO), then all run in submission order."""
    make_demo_split(workspace, per_class=4, size=32)
    tiny = dict(image_size=32, epochs=1, batch_size=8, augment_name="none")
    with device_held(workspace):
        ids = [submit(workspace, **tiny) for _ in range(3)]
        pids = [
            wait_for(r, workspace, states=("queued",), condition=lambda s: s.get("message"), timeout=30)[
                "pid"
            ]
            for r in ids
        ]
        os.kill(pids[0], signal.SIGSTOP)
    try:
        time.sleep(1.5)  # the device is free: only the first in line may take it
        assert [runs.status(r, workspace)["state"] for r in ids] == ["queued"] * 3
    finally:
        os.kill(pids[0], signal.SIGCONT)
    statuses = [wait_for(r, workspace, timeout=240) for r in ids]
    assert [s["state"] for s in statuses] == ["done"] * 3, log_tail(ids[-1], workspace)
    started = [s["started"] for s in statuses]
    assert started == sorted(started)
    assert statuses[0]["ended"] <= started[1] and statuses[1]["ended"] <= started[2]
    assert not list((rundir.runs_dir(workspace) / devicequeue.QUEUE_NAME).glob("*.json"))


def test_the_queue_skips_tickets_of_dead_processes_and_waits_for_live_ones(workspace):
    queue = devicequeue.queue_dir(rundir.runs_dir(workspace))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    devicequeue.write_ticket(queue / devicequeue.ticket_name("dead-run", 1), "dead-run", dead.pid)
    half_written = queue / f".tmp-{dead.pid}-ticket.json.x1"  # its writer was killed mid-write
    half_written.write_text("{")
    with devicequeue.device_turn(workspace, "first"):  # nothing live ahead: at once
        pass
    assert not (queue / devicequeue.ticket_name("dead-run", 1)).exists() and not half_written.exists()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        devicequeue.write_ticket(queue / devicequeue.ticket_name("live-run", 2), "live-run", sleeper.pid)
        entered = threading.Event()

        def second() -> None:
            with devicequeue.device_turn(workspace, "second"):
                entered.set()

        thread = threading.Thread(target=second)
        thread.start()
        assert not entered.wait(1.0)  # the device is free, but a live process is ahead
        sleeper.kill()
        sleeper.wait()
        assert entered.wait(5)
        thread.join()
    finally:
        sleeper.kill()
        sleeper.wait()
