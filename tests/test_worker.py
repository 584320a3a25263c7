"""core.worker: the run process ends in a state it writes (stopped on SIGTERM, failed with a plain
error), retries and falls back when its final write fails, and ends quietly when its run is deleted."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import signal
import time
from pathlib import Path

from core import devicequeue, processes, rundir, runs, train, worker
from core.config import TrainConfig
from core.fileio import repair_jsonl
from tests.conftest import fake_run, make_demo_split
from tests.runhelpers import device_held, log_tail, queued_worker, submit, wait_for


def test_sigterm_ends_a_queued_worker_in_a_state_it_writes(workspace):
    """SIGTERM is a stop request: the worker itself writes "stopped" (only SIGKILL leaves no word)."""
    make_demo_split(workspace, per_class=4, size=32)
    lock = open(rundir.runs_dir(workspace) / devicequeue.LOCK_NAME, "a+")
    fcntl.flock(lock, fcntl.LOCK_EX)  # the device is busy: the run waits in the queue
    try:
        run_id = submit(workspace, image_size=32, epochs=1)
        wait_for(run_id, workspace, states=("queued",), condition=lambda s: s.get("message"), timeout=30)
        runs.kill(run_id, workspace, sig=signal.SIGTERM)
        status = wait_for(run_id, workspace, timeout=30)
    finally:
        lock.close()
    assert status["state"] == "stopped"
    raw = json.loads((rundir.run_dir(run_id, workspace) / "status.json").read_text())
    assert raw["state"] == "stopped" and raw["ended"]


# ---------------------------------------------------------------------------- 12. failures


def test_failures_end_failed_with_a_plain_error_and_the_traceback_in_the_log(workspace, tmp_path):
    make_demo_split(workspace, per_class=4, size=32)
    bogus = tmp_path / "mobilenet_2_5_224_tf_no_top.h5"
    bogus.write_text("not weights")
    base = dict(split="demo", mode="features", model="mobilenet_0.25", image_size=32, epochs=1)
    configs = {
        "split": TrainConfig(**{**base, "split": "gone", "mode": "scratch", "model": "small"}),
        "missing weights": TrainConfig(**{**base, "weights": str(tmp_path / "nope.h5")}),
        "bad weights": TrainConfig(**{**base, "weights": str(bogus)}),
    }
    ids = {k: runs.submit({**c.to_dict(), "augment": {}}, workspace) for k, c in configs.items()}
    expected = {
        "split": "no saved split named 'gone'",
        "missing weights": "nope.h5 does not exist",
        "bad weights": "is not a Keras weights file",
    }
    for key, run_id in ids.items():
        status = wait_for(run_id, workspace)
        assert status["state"] == "failed", (key, status)
        error = status["error"]
        assert expected[key] in error
        assert "\n" not in error and "Traceback" not in error and 'File "' not in error
        log = log_tail(run_id, workspace, 20000)
        assert "Traceback (most recent call last)" in log and expected[key] in log
        assert "ended" in status and runs.metrics(run_id, workspace) == []


def test_plain_error_is_one_line():
    assert worker.plain_error(ValueError("the split is gone\nmore\n  detail")) == "the split is gone"
    assert worker.plain_error(KeyError("x")) == "KeyError: 'x'"
    assert worker.plain_error(RuntimeError("")) == "RuntimeError: RuntimeError"
    assert len(worker.plain_error(ValueError("x" * 1000))) == 300


# ---------------------------------------------------------------------------- a deleted run, a torn metrics row, a full disk


def test_a_worker_whose_run_was_deleted_ends_without_recreating_it(workspace):
    """A run folder removed under its live worker (by hand: delete() refuses) stays gone: no
    heartbeat or status write brings an empty folder back, and the worker ends quietly."""
    with device_held(workspace):
        run_id, pid = queued_worker(workspace)
        path = rundir.run_dir(run_id, workspace)
        trash = path.with_name(f".deleted-{run_id}")
        os.replace(path, trash)
        shutil.rmtree(trash)
        deadline = time.time() + 15
        while processes.process_alive(pid):
            assert not path.exists(), "the folder came back"
            assert time.time() < deadline, "the worker did not end"
            time.sleep(0.05)
        time.sleep(rundir.HEARTBEAT_SECONDS + 0.5)
        assert not path.exists()
        assert not list((rundir.runs_dir(workspace) / devicequeue.QUEUE_NAME).glob(f"*-{run_id}.json"))


def fake_training(monkeypatch, body=None):
    """worker_main in this process, with run_training replaced by `body(control)` -> "done"."""

    def run_training(control):
        if body is not None:
            body(control)
        return "done"

    monkeypatch.setattr(train, "run_training", run_training)


def test_a_torn_metrics_line_does_not_swallow_the_next_row(workspace, monkeypatch):
    path = fake_run(workspace, state="stopped", pid=None)
    rows = [{"kind": "epoch", "epoch": 1}, {"kind": "epoch", "epoch": 2}]
    torn = "".join(json.dumps(r) + "\n" for r in rows) + '{"kind": "batch", "epoch": 3, "lo'
    (path / "metrics.jsonl").write_text(torn)
    fake_training(monkeypatch, lambda control: control.log({"kind": "epoch", "epoch": 3}))
    assert worker.worker_main(path, resume=True) == 0
    assert [r["epoch"] for r in runs.metrics(path.name, workspace)] == [1, 2, 3]
    assert (path / "metrics.jsonl").read_text().endswith("\n")
    # A whole row that only lost its newline is kept.
    (path / "metrics.jsonl").write_text(json.dumps({"kind": "epoch", "epoch": 1}))
    assert repair_jsonl(path / "metrics.jsonl") == 0
    rundir.RunControl(path).log({"kind": "epoch", "epoch": 2})
    assert [r["epoch"] for r in runs.metrics(path.name, workspace)] == [1, 2]


def failing_final_writes(monkeypatch, times: int) -> list[int]:
    """os.replace fails with ENOSPC on the first `times` writes of a final status.json."""
    real, failures = os.replace, []

    def replace(src, dst, *a, **k):
        if Path(dst).name == "status.json" and len(failures) < times:
            if json.loads(Path(src).read_text()).get("ended"):
                failures.append(1)
                raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", replace)
    return failures


def test_a_failed_final_status_write_is_retried(workspace, monkeypatch):
    path = fake_run(workspace, state="queued", pid=None)
    fake_training(monkeypatch)
    failures = failing_final_writes(monkeypatch, times=1)
    assert worker.worker_main(path, resume=False) == 0
    status = runs.read_status(path)
    assert failures == [1] and status["state"] == "done" and status["ended"], status


def test_the_final_status_is_written_in_place_when_no_file_can_be_made(workspace, monkeypatch):
    path = fake_run(workspace, state="queued", pid=None)
    fake_training(monkeypatch)
    monkeypatch.setattr(worker, "FINAL_RETRY_DELAYS", (0.0, 0.05))
    failures = failing_final_writes(monkeypatch, times=100)
    assert worker.worker_main(path, resume=False) == 1
    status = runs.read_status(path)
    assert len(failures) == 2 and status["state"] == "failed" and status["ended"], status
    assert "ended done" in status["error"] and "No space left on device" in status["error"]
