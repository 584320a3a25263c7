"""Helpers for tests that drive runs through real worker processes (test_runs, test_worker,
test_devicequeue): submit, wait for a state, hold the device, read a run's log."""

from __future__ import annotations

import contextlib
import fcntl
import time
from pathlib import Path

from core import devicequeue, rundir, runs, train
from core.config import TrainConfig


def log_tail(run_id: str, ws: Path, n: int = 3000) -> str:
    path = rundir.runs_dir(ws) / run_id / "log.txt"
    return path.read_text(errors="replace")[-n:] if path.exists() else "(no log.txt)"


def wait_for(run_id: str, ws: Path, states=runs.FINAL_STATES, timeout: float = 180, condition=None) -> dict:
    """Poll a run until its (derived) state is in `states` and `condition(status)` holds; its status."""
    deadline = time.time() + timeout
    while True:
        status = runs.status(run_id, ws)
        if status["state"] in states and (condition is None or condition(status)):
            return status
        if time.time() > deadline:
            raise AssertionError(
                f"run {run_id} still {status['state']} after {timeout} s\n{log_tail(run_id, ws)}"
            )
        time.sleep(0.05)


def submit(ws: Path, **kw) -> str:
    defaults = dict(
        split="demo", model="small", image_size=64, optimizer="adam", learning_rate=1e-3, batch_size=16
    )
    return runs.submit(train.finalize(TrainConfig(**{**defaults, **kw}), ws).to_dict(), ws)


@contextlib.contextmanager
def device_held(ws: Path):
    """Hold the device lock, as a running run does: submitted runs wait in the queue."""
    lock = open(rundir.runs_dir(ws) / devicequeue.LOCK_NAME, "a+")
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        yield lock
    finally:
        lock.close()


def queued_worker(ws: Path) -> tuple[str, int]:
    """A real worker process waiting in the queue (the device must be held); its run id and pid."""
    run_id = runs.create_run({"mode": "scratch", "model": "small"}, ws)
    runs.launch(run_id, ws)
    status = wait_for(run_id, ws, states=("queued",), condition=lambda s: s.get("message"), timeout=30)
    return run_id, status["pid"]


def stop_and_wait(run_ids, ws: Path) -> None:
    for run_id in run_ids:
        runs.stop(run_id, ws)
    for run_id in run_ids:
        assert wait_for(run_id, ws, timeout=30)["state"] == "stopped"


def epochs_of(rows: list[dict], complete: bool | None = None) -> list[int]:
    return [
        r["epoch"] for r in rows if r["kind"] == "epoch" and (complete is None or r["complete"] == complete)
    ]
