"""core.runs: stop, resume, SIGKILL, delete and concurrent launches through real worker processes;
the derived status (interrupted, late heartbeats) in-process. Training runs end to end: test_runs_training."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from core import modelfile, processes, rundir, runs
from tests.conftest import (
    MOBILENET_025,
    fake_run,
    make_demo_split,
    needs_mobilenet,
    write_status,
)
from tests.runhelpers import device_held, epochs_of, log_tail, queued_worker, stop_and_wait, submit, wait_for


def wait_for_rows(run_id: str, ws: Path, condition, timeout: float = 180) -> list[dict]:
    """Poll metrics.jsonl until condition(rows) holds while the run is active; the rows."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        rows = runs.metrics(run_id, ws)
        if condition(rows):
            return rows
        state = runs.status(run_id, ws)["state"]
        assert state in runs.ACTIVE_STATES, (
            f"run ended ({state}) before the rows came\n{log_tail(run_id, ws)}"
        )
        time.sleep(0.01)
    raise AssertionError(f"rows never came\n{log_tail(run_id, ws)}")


def mid_training(rows: list[dict]) -> bool:
    """At least one epoch done and the next one under way."""
    return bool(epochs_of(rows)) and rows[-1]["kind"] == "batch"


def iterations(path: Path) -> int:
    model = modelfile.load_model(path)
    return int(np.asarray(model.optimizer.iterations))


# ---------------------------------------------------------------------------- 6./8. stop, then resume


@pytest.fixture(scope="module")
def long_ws(tmp_path_factory) -> Path:
    """Enough images for many small batches (96 training images)."""
    ws = tmp_path_factory.mktemp("long") / "workspace"
    make_demo_split(ws, per_class=40, size=48)
    return ws


LONG = dict(image_size=48, batch_size=4, epochs=4, log_every=1)  # 24 batches per epoch


@pytest.fixture(scope="module")
def stopped_run(long_ws) -> dict:
    """A run asked to stop in the middle of its second epoch; what it looked like then."""
    run_id = submit(long_ws, **LONG)
    wait_for_rows(run_id, long_ws, mid_training)
    requested = time.time()
    runs.stop(run_id, long_ws)
    status = wait_for(run_id, long_ws)
    path = rundir.run_dir(run_id, long_ws)
    return {
        "id": run_id,
        "requested": requested,
        "status": status,
        "rows": runs.metrics(run_id, long_ws),
        "state": json.loads((path / "state.json").read_text()),
        "iterations": iterations(path / "last.keras"),
    }


def test_stop_ends_within_a_batch_and_keeps_checkpoints(stopped_run, long_ws):
    assert stopped_run["status"]["state"] == "stopped", stopped_run["status"]
    after = [r for r in stopped_run["rows"] if r["kind"] == "batch" and r["time"] > stopped_run["requested"]]
    assert len(after) <= 2
    done = stopped_run["state"]["epochs_done"]
    assert 1 <= done < LONG["epochs"]
    assert epochs_of(stopped_run["rows"], complete=True) == list(range(1, done + 1))
    # The epoch cut short says so (unless the stop landed on its last batch).
    assert epochs_of(stopped_run["rows"], complete=False) in ([done + 1], [])
    path = rundir.run_dir(stopped_run["id"], long_ws)
    assert (path / "best.keras").is_file() and (path / "last.keras").is_file()
    modelfile.load_model(path / "last.keras")


def test_resume_continues_at_the_next_epoch_with_the_optimizer_state(stopped_run, long_ws):
    run_id, before = stopped_run["id"], stopped_run["iterations"]
    done, steps = stopped_run["state"]["epochs_done"], 24
    partial = epochs_of(stopped_run["rows"], complete=False)
    runs.resume(run_id, long_ws)
    status = wait_for(run_id, long_ws)
    assert status["state"] == "done", log_tail(run_id, long_ws)
    assert status["resumed_from_epoch"] == done and status["epoch"] == LONG["epochs"]
    rows = runs.metrics(run_id, long_ws)
    assert epochs_of(rows, complete=True) == [1, 2, 3, 4]  # nothing repeated but the partial epoch
    assert epochs_of(rows) == [*range(1, done + 1), *partial, *range(done + 1, LONG["epochs"] + 1)]
    # Restored, not reset: the counter goes on from the saved value by the batches trained since.
    after = iterations(rundir.run_dir(run_id, long_ws) / "last.keras")
    assert after == before + (LONG["epochs"] - done) * steps
    assert before >= done * steps + (1 if partial else 0)  # a partial epoch's batches were saved too


@needs_mobilenet
def test_features_run_stops_and_resumes_its_head(long_ws):
    """Features mode trains a head on cached features: it resumes from resume.keras (head + optimizer)."""
    run_id = submit(
        long_ws, mode="features", model="mobilenet_0.25", weights=str(MOBILENET_025), **{**LONG, "epochs": 3}
    )
    wait_for_rows(run_id, long_ws, mid_training)
    runs.stop(run_id, long_ws)
    assert wait_for(run_id, long_ws)["state"] == "stopped"
    path = rundir.run_dir(run_id, long_ws)
    before = iterations(path / "resume.keras")
    done = json.loads((path / "state.json").read_text())["epochs_done"]
    assert done >= 1

    runs.resume(run_id, long_ws)
    status = wait_for(run_id, long_ws)
    assert status["state"] == "done", log_tail(run_id, long_ws)
    assert status["feature_cache_hit"] is True  # the base did not run over the images again
    assert epochs_of(runs.metrics(run_id, long_ws), complete=True) == [1, 2, 3]
    assert iterations(path / "resume.keras") == before + (3 - done) * 24
    model = modelfile.load_model(path / "best.keras")
    assert model.predict(np.zeros((2, 48, 48, 3), "float32"), verbose=0).shape == (2, 4)


def test_resume_refuses_active_and_checkpointless_runs(workspace):
    run_id = runs.create_run({"mode": "scratch", "model": "small"}, workspace)
    with pytest.raises(rundir.RunError, match="is queued"):
        runs.resume(run_id, workspace)
    write_status(rundir.run_dir(run_id, workspace), state="failed")
    with pytest.raises(rundir.RunError, match="no checkpoint"):
        runs.resume(run_id, workspace)
    with pytest.raises(rundir.RunError, match="no run"):
        runs.resume("nope", workspace)


# ---------------------------------------------------------------------------- 7. SIGKILL


def test_sigkill_reads_interrupted_and_resume_finishes(long_ws):
    run_id = submit(long_ws, **{**LONG, "epochs": 3}, seed=1)
    wait_for_rows(run_id, long_ws, mid_training)
    runs.kill(run_id, long_ws)
    status = wait_for(run_id, long_ws, timeout=10)
    assert status["state"] == "interrupted" and "killed" in status["error"]
    raw = json.loads((rundir.run_dir(run_id, long_ws) / "status.json").read_text())
    assert raw["state"] == "running"  # the worker never got to say so: readers derive it
    path = rundir.run_dir(run_id, long_ws)
    assert json.loads((path / "state.json").read_text())["epochs_done"] >= 1
    modelfile.load_model(path / "last.keras")  # whole, never half-written

    runs.resume(run_id, long_ws)
    status = wait_for(run_id, long_ws)
    assert status["state"] == "done" and status["error"] is None, log_tail(run_id, long_ws)
    rows = runs.metrics(run_id, long_ws)
    assert epochs_of(rows, complete=True) == [1, 2, 3]
    assert [r["batch"] for r in rows if r["kind"] == "batch" and r["epoch"] == 3][-24:] == list(range(1, 25))


# ---------------------------------------------------------------------------- status bookkeeping


def test_read_status_derives_interrupted(workspace):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    now = time.time()
    assert (
        runs.read_status(fake_run(workspace, state="running", pid=dead.pid, heartbeat=now))["state"]
        == "interrupted"
    )
    # A pid now given to another process (after the worker died, or a reboot) is not the worker.
    reused = fake_run(workspace, state="running", pid=os.getpid(), pid_start="another-boot:1", heartbeat=now)
    assert runs.read_status(reused)["state"] == "interrupted"
    # A run whose process died before writing anything (no pid yet) is not "queued" forever.
    never = fake_run(workspace, state="queued", pid=None, heartbeat=now - runs.STALE_SECONDS - 1)
    assert runs.read_status(never)["state"] == "interrupted"
    assert runs.read_status(fake_run(workspace, state="queued", pid=None, heartbeat=now))["state"] == "queued"
    alive = fake_run(workspace, state="running", pid=os.getpid(), heartbeat=now)
    assert runs.read_status(alive)["state"] == "running"
    done = fake_run(workspace, state="done", pid=dead.pid, heartbeat=0)
    assert runs.read_status(done)["state"] == "done"
    (done / "status.json").write_text("{half")
    assert runs.read_status(done)["state"] == "failed"


def test_launch_fills_in_the_pid_without_clobbering_the_worker(workspace, monkeypatch):
    path = fake_run(workspace, state="queued", pid=None)

    class FakePopen:
        pid = 4242

        def __init__(self, *a, **k) -> None:
            # The worker starts and writes first (here: before Popen even returns).
            write_status(path, state="running", pid=os.getpid(), epoch=3)

        def poll(self):
            return None

    monkeypatch.setattr(runs.subprocess, "Popen", FakePopen)
    runs.launch(path.name, workspace)
    raw = json.loads((path / "status.json").read_text())
    assert (raw["state"], raw["pid"], raw["epoch"]) == ("running", os.getpid(), 3)
    processes.forget_child(4242)


# ---------------------------------------------------------------------------- hardening


def test_a_live_worker_with_a_late_heartbeat_is_not_interrupted(workspace, monkeypatch):
    """Suspend (SIGSTOP) a queued worker until its heartbeat is stale: while its process lives, the
    run stays queued and says how long there has been no news."""
    monkeypatch.setattr(runs, "STALE_SECONDS", 1.0)
    with device_held(workspace):
        run_id, pid = queued_worker(workspace)
        os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(2.5)  # > STALE_SECONDS + a heartbeat
            status = runs.status(run_id, workspace)
        finally:
            os.kill(pid, signal.SIGCONT)
        assert status["state"] == "queued" and status["heartbeat_late"] > 1.0, status
        assert "heartbeat_late" not in wait_for(
            run_id, workspace, states=("queued",), condition=lambda s: "heartbeat_late" not in s, timeout=10
        )
        raw = rundir.read_raw_status(rundir.run_dir(run_id, workspace))
        assert raw["pid_start"] == processes.process_start(pid)  # what tells it from a later owner of its pid
        stop_and_wait([run_id], workspace)


def test_a_late_heartbeat_with_a_live_pid_reads_as_its_state(workspace):
    now = time.time()
    me = dict(pid=os.getpid(), pid_start=processes.process_start(os.getpid()))
    late = fake_run(workspace, state="running", heartbeat=now - runs.STALE_SECONDS - 5, **me)
    status = runs.read_status(late)
    assert status["state"] == "running" and status["heartbeat_late"] >= runs.STALE_SECONDS + 5
    assert status.get("error") is None
    # The same pid with another start time is another process: the worker is gone.
    other = fake_run(workspace, state="running", heartbeat=now, pid=os.getpid(), pid_start="x:1")
    assert runs.read_status(other)["state"] == "interrupted"
    assert processes.process_start(os.getpid()) == processes.process_start(os.getpid())


def test_delete_refuses_a_run_whose_process_lives_whatever_its_status_says(workspace, monkeypatch):
    monkeypatch.setattr(runs, "EXIT_GRACE_SECONDS", 0.3, raising=False)
    me = dict(pid=os.getpid())
    for state in ("done", "interrupted", "failed", "stopped"):
        path = fake_run(workspace, state=state, heartbeat=0, **me)
        with pytest.raises(rundir.RunError, match="still running"):
            runs.delete(path.name, workspace)
        assert (path / "config.json").is_file()
    stale = fake_run(workspace, state="running", heartbeat=0, **me)  # old code: "interrupted"
    with pytest.raises(rundir.RunError, match="is running"):
        runs.delete(stale.name, workspace)
    # A real worker whose status.json says it ended (it has not).
    with device_held(workspace):
        run_id, pid = queued_worker(workspace)
        rundir.merge_status(rundir.run_dir(run_id, workspace), state="stopped")
        with pytest.raises(rundir.RunError, match="still running"):
            runs.delete(run_id, workspace)
        assert rundir.run_dir(run_id, workspace).is_dir()
        rundir.merge_status(rundir.run_dir(run_id, workspace), state="queued")
        stop_and_wait([run_id], workspace)
    monkeypatch.setattr(runs, "EXIT_GRACE_SECONDS", 10.0, raising=False)  # time to exit after its last word
    runs.delete(run_id, workspace)  # ended: now it goes
    assert not (rundir.runs_dir(workspace) / run_id).exists()


def test_delete_cannot_slip_in_while_a_launch_resets_the_run(workspace):
    """launch() checks and resets a run under its status lock; delete decides under the same lock,
    so it sees the run queued (and refuses) rather than deleting it under the starting worker."""
    path = fake_run(workspace, state="stopped", pid=None, heartbeat=0)
    holding = threading.Event()

    def launcher() -> None:
        with rundir.status_locked(path):
            holding.set()
            time.sleep(0.5)
            write_status(path, state="queued", pid=os.getpid(), heartbeat=time.time())

    thread = threading.Thread(target=launcher)
    thread.start()
    holding.wait(5)
    with pytest.raises(rundir.RunError, match="is queued"):
        runs.delete(path.name, workspace)
    thread.join()
    assert (path / "config.json").is_file()


def at_once(n: int, action) -> tuple[list, list[BaseException]]:
    """Call `action` from n threads released together, as n browser tabs clicking at the same
    moment; returns what the calls returned and what they raised."""
    barrier = threading.Barrier(n)
    results: list = []
    errors: list[BaseException] = []

    def tab() -> None:
        barrier.wait()
        try:
            results.append(action())
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=tab) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, errors


def test_concurrent_submits_all_start(workspace, monkeypatch):
    """Eight tabs submitting at the same moment (two drawing the same id): every submit returns
    the id of a run whose worker started, and none raises."""
    ids_drawn = iter(["20260101-000000-scratch-small-beef"] * 2 + [f"r{i}" for i in range(100)])
    lock = threading.Lock()

    def new_run_id(mode: str, model: str) -> str:
        with lock:
            return next(ids_drawn)

    monkeypatch.setattr(runs, "new_run_id", new_run_id)
    with device_held(workspace):
        results, errors = at_once(8, lambda: runs.submit({"mode": "scratch", "model": "small"}, workspace))
        assert not errors, errors
        assert len(set(results)) == 8
        for run_id in results:
            status = wait_for(
                run_id, workspace, states=("queued",), condition=lambda s: s.get("message"), timeout=30
            )
            assert processes.process_alive(status["pid"])
        stop_and_wait(results, workspace)


def test_two_launches_of_one_run_start_one_worker(workspace):
    """Two tabs pressing resume (or start) at the same moment: one worker, one RunError."""
    run_id = runs.create_run({"mode": "scratch", "model": "small"}, workspace)
    with device_held(workspace):
        pids, errors = at_once(2, lambda: runs.launch(run_id, workspace))
        assert len(pids) == 1 and len(errors) == 1 and "live process" in str(errors[0])
        status = wait_for(run_id, workspace, states=("queued",), condition=lambda s: s.get("message"))
        assert status["pid"] == pids[0]
        stop_and_wait([run_id], workspace)
