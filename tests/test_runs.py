"""core.runs through real worker processes: every mode end to end, stop, resume, SIGKILL, the
queue, failures; plus the status bookkeeping (interrupted, zombies, heartbeat races) in-process."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from core import data, demo, evaluate, modelfile, rundir, runs, train
from core.config import TrainConfig, default_settings
from core.fileio import repair_jsonl
from tests.conftest import (
    CATSDOGS,
    MOBILENET_025,
    WEIGHTS,
    fake_run,
    make_demo_split,
    needs_mobilenet,
    write_status,
)

ARTIFACTS = ("config.json", "status.json", "metrics.jsonl", "best.keras", "last.keras", "state.json")
EPOCH_KEYS = {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "images_per_s", "epoch", "time"}
BATCH_KEYS = {"loss", "accuracy", "lr", "images", "images_per_s", "epoch", "batch", "step", "time"}


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


def epochs_of(rows: list[dict], complete: bool | None = None) -> list[int]:
    return [
        r["epoch"] for r in rows if r["kind"] == "epoch" and (complete is None or r["complete"] == complete)
    ]


def submit(ws: Path, **kw) -> str:
    defaults = dict(
        split="demo", model="small", image_size=64, optimizer="adam", learning_rate=1e-3, batch_size=16
    )
    return runs.submit(train.finalize(TrainConfig(**{**defaults, **kw}), ws).to_dict(), ws)


def iterations(path: Path) -> int:
    model = modelfile.load_model(path)
    return int(np.asarray(model.optimizer.iterations))


# ---------------------------------------------------------------------------- 2. every mode, end to end


@pytest.fixture(scope="module")
def mode_ws(tmp_path_factory) -> Path:
    ws = tmp_path_factory.mktemp("modes") / "workspace"
    make_demo_split(ws)
    return ws


@pytest.fixture(scope="module")
def mode_runs(mode_ws) -> dict[str, str]:
    """scratch, features, frozen, finetune (from features), and features again (cache hit).

    Every mode runs on a fresh clone too: without ../shared the base starts from random weights
    (the same network and shapes), and only the cache-hit run needs the real file (random
    weights are never cached)."""
    ws, ids = mode_ws, {}
    weights = str(MOBILENET_025) if MOBILENET_025.exists() else "none"
    pretrained = dict(model="mobilenet_0.25", weights=weights, epochs=2, log_every=1)
    ids["scratch"] = submit(ws, mode="scratch", epochs=2, augment_name="seed-001", log_every=1)
    ids["features"] = submit(ws, mode="features", **pretrained)
    ids["frozen"] = submit(ws, mode="frozen", augment_name="seed-001", **pretrained)
    wait_for(ids["features"], ws)
    ids["finetune"] = submit(
        ws, mode="finetune", from_run=ids["features"], unfreeze_top=2, epochs=1, log_every=1
    )
    if MOBILENET_025.exists():
        ids["features_again"] = submit(ws, mode="features", **{**pretrained, "epochs": 1})
    for run_id in ids.values():
        wait_for(run_id, ws)
    return ids


@pytest.mark.parametrize("mode", ["scratch", "features", "frozen", "finetune"])
def test_each_mode_trains_through_the_worker_process(mode_runs, mode_ws, mode):
    run_id, ws = mode_runs[mode], mode_ws
    status = runs.status(run_id, ws)
    assert status["state"] == "done", (status, log_tail(run_id, ws))
    path = rundir.run_dir(run_id, ws)
    for name in ARTIFACTS:
        assert (path / name).is_file(), name
    config = TrainConfig.from_dict(json.loads((path / "config.json").read_text()))
    assert config.mode == mode
    assert status["epoch"] == config.epochs and status["classes"] == sorted(demo.DEMO_CLASSES)
    rows = runs.metrics(run_id, ws)
    epoch_rows = [r for r in rows if r["kind"] == "epoch"]
    batch_rows = [r for r in rows if r["kind"] == "batch"]
    assert epochs_of(rows) == list(range(1, config.epochs + 1))
    steps = int(np.ceil(status["train_images"] / config.batch_size))
    assert len(batch_rows) == config.epochs * steps  # log_every=1: one row per batch
    for r in epoch_rows:
        assert set(r) >= EPOCH_KEYS and r["complete"] is True
        assert all(np.isfinite(r[k]) for k in EPOCH_KEYS - {"epoch", "time"})
    for r in batch_rows:
        assert set(r) >= BATCH_KEYS and np.isfinite(r["loss"]) and r["images_per_s"] > 0
        assert 0 <= r["accuracy"] <= 1
    for e in epoch_rows:  # batch rows cover their own images: together they make the epoch's means
        rows_e = [r for r in batch_rows if r["epoch"] == e["epoch"]]
        n = np.array([r["images"] for r in rows_e])
        assert n.sum() == status["train_images"]
        for key in ("loss", "accuracy"):
            assert np.dot(n, [r[key] for r in rows_e]) / n.sum() == pytest.approx(e[key], rel=1e-4, abs=1e-5)
    assert [r["step"] for r in batch_rows] == list(range(1, config.epochs * steps + 1))

    model = modelfile.load_model(path / "best.keras")
    images = np.random.default_rng(0).integers(0, 256, (3, config.image_size, config.image_size, 3), np.uint8)
    probs = np.asarray(model.predict(images.astype("float32"), verbose=0))
    assert probs.shape == (3, 4) and np.allclose(probs.sum(axis=1), 1, atol=1e-3)
    if mode in ("features", "frozen", "finetune"):  # the saved model reads images, base included
        assert tuple(model.input.shape[1:]) == (64, 64, 3) and model.get_layer("base")
    if mode == "features":
        assert status["feature_cache_hit"] is False
        assert (path / "resume.keras").is_file()  # the head with its optimizer
    if mode == "finetune":
        assert status["trainable_params"] > 0 and config.model == "mobilenet_0.25"


@needs_mobilenet
def test_second_features_run_reuses_the_feature_cache(mode_runs, mode_ws):
    status = runs.status(mode_runs["features_again"], mode_ws)
    assert status["state"] == "done" and status["feature_cache_hit"] is True
    assert "extracting" not in log_tail(mode_runs["features_again"], mode_ws)
    assert len(list((mode_ws / "features").glob("*.npy"))) == 2  # train and val, shared by both runs


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


# ---------------------------------------------------------------------------- 9. the queue


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


def test_sigterm_ends_a_queued_worker_in_a_state_it_writes(workspace):
    """SIGTERM is a stop request: the worker itself writes "stopped" (only SIGKILL leaves no word)."""
    make_demo_split(workspace, per_class=4, size=32)
    lock = open(rundir.runs_dir(workspace) / runs.LOCK_NAME, "a+")
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
    assert runs.plain_error(ValueError("the split is gone\nmore\n  detail")) == "the split is gone"
    assert runs.plain_error(KeyError("x")) == "KeyError: 'x'"
    assert runs.plain_error(RuntimeError("")) == "RuntimeError: RuntimeError"
    assert len(runs.plain_error(ValueError("x" * 1000))) == 300


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


def test_a_zombie_worker_is_not_alive(workspace):
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])  # never waited for: stays a zombie
    deadline = time.time() + 10
    while time.time() < deadline:
        stat = Path(f"/proc/{zombie.pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            break
        time.sleep(0.02)
    else:
        pytest.skip("the child did not become a zombie")
    os.kill(zombie.pid, 0)  # signal 0 still reaches it...
    assert not runs._pid_alive(zombie.pid)  # ...but it is not running anything
    path = fake_run(workspace, state="running", pid=zombie.pid, heartbeat=time.time())
    assert runs.read_status(path)["state"] == "interrupted"
    zombie.wait()


def test_status_writes_never_lose_the_final_state(workspace):
    """The heartbeat thread, progress updates and the launcher all merge under one lock."""
    path = fake_run(workspace, state="queued")
    control = rundir.RunControl(path)
    control.update(state="running", pid=os.getpid())
    stop = threading.Event()

    def hammer(i: int) -> None:
        n = 0
        while not stop.is_set():
            control.update(**{f"field{i}": n})
            n += 1

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    control.beat_forever()
    rundir.RunControl(path).update(from_launcher=True)  # another writer, like launch()
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join()
    control.end_heartbeat()
    control.update(state="done", ended=time.time())
    time.sleep(rundir.HEARTBEAT_SECONDS + 0.5)  # no late beat may bring "running" back
    raw = json.loads((path / "status.json").read_text())
    assert raw["state"] == "done" and raw["from_launcher"] is True
    assert all(raw[f"field{i}"] > 0 for i in range(3))


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
    runs._children.pop(4242, None)


# ---------------------------------------------------------------------------- hardening


@contextlib.contextmanager
def device_held(ws: Path):
    """Hold the device lock, as a running run does: submitted runs wait in the queue."""
    lock = open(rundir.runs_dir(ws) / runs.LOCK_NAME, "a+")
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
        assert raw["pid_start"] == runs.process_start(pid)  # what tells it from a later owner of its pid
        stop_and_wait([run_id], workspace)


def test_a_late_heartbeat_with_a_live_pid_reads_as_its_state(workspace):
    now = time.time()
    me = dict(pid=os.getpid(), pid_start=runs.process_start(os.getpid()))
    late = fake_run(workspace, state="running", heartbeat=now - runs.STALE_SECONDS - 5, **me)
    status = runs.read_status(late)
    assert status["state"] == "running" and status["heartbeat_late"] >= runs.STALE_SECONDS + 5
    assert status.get("error") is None
    # The same pid with another start time is another process: the worker is gone.
    other = fake_run(workspace, state="running", heartbeat=now, pid=os.getpid(), pid_start="x:1")
    assert runs.read_status(other)["state"] == "interrupted"
    assert runs.process_start(os.getpid()) == runs.process_start(os.getpid())


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
        while runs._pid_alive(pid):
            assert not path.exists(), "the folder came back"
            assert time.time() < deadline, "the worker did not end"
            time.sleep(0.05)
        time.sleep(rundir.HEARTBEAT_SECONDS + 0.5)
        assert not path.exists()
        assert not list((rundir.runs_dir(workspace) / runs.QUEUE_NAME).glob(f"*-{run_id}.json"))


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
    assert runs.worker_main(path, resume=True) == 0
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
    assert runs.worker_main(path, resume=False) == 0
    status = runs.read_status(path)
    assert failures == [1] and status["state"] == "done" and status["ended"], status


def test_the_final_status_is_written_in_place_when_no_file_can_be_made(workspace, monkeypatch):
    path = fake_run(workspace, state="queued", pid=None)
    fake_training(monkeypatch)
    monkeypatch.setattr(runs, "FINAL_RETRY_DELAYS", (0.0, 0.05))
    failures = failing_final_writes(monkeypatch, times=100)
    assert runs.worker_main(path, resume=False) == 1
    status = runs.read_status(path)
    assert len(failures) == 2 and status["state"] == "failed" and status["ended"], status
    assert "ended done" in status["error"] and "No space left on device" in status["error"]


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
    assert not list((rundir.runs_dir(workspace) / runs.QUEUE_NAME).glob("*.json"))


def test_the_queue_skips_tickets_of_dead_processes_and_waits_for_live_ones(workspace):
    queue = runs._queue_dir(rundir.runs_dir(workspace))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    runs._write_ticket(queue / runs._ticket_name("dead-run", 1), "dead-run", dead.pid)
    half_written = queue / f".tmp-{dead.pid}-ticket.json.x1"  # its writer was killed mid-write
    half_written.write_text("{")
    with runs.device_turn(workspace, "first"):  # nothing live ahead: at once
        pass
    assert not (queue / runs._ticket_name("dead-run", 1)).exists() and not half_written.exists()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        runs._write_ticket(queue / runs._ticket_name("live-run", 2), "live-run", sleeper.pid)
        entered = threading.Event()

        def second() -> None:
            with runs.device_turn(workspace, "second"):
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
            assert runs._pid_alive(status["pid"])
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


# ---------------------------------------------------------------------------- 10./13. slow


@needs_mobilenet
def test_pretrained_features_learn_the_demo_shapes(workspace):
    """The whole path (decode cache, features, head, metrics) learns: far above chance (0.25)."""
    make_demo_split(workspace, per_class=80, size=96)
    run_id = submit(
        workspace,
        mode="features",
        model="mobilenet_0.25",
        weights=str(MOBILENET_025),
        image_size=96,
        head_pooling="avg",
        head_units=64,
        head_dropout=0.3,
        epochs=8,
        log_every=10,
    )
    status = wait_for(run_id, workspace, timeout=300)
    assert status["state"] == "done", log_tail(run_id, workspace)
    val = [r["val_accuracy"] for r in runs.metrics(run_id, workspace) if r["kind"] == "epoch"]
    assert max(val) >= 0.7 and val[-1] >= 0.6, val


@pytest.mark.slow
def test_small_scratch_net_learns_the_demo_shapes(workspace):
    """The Train page's quick demo: the small net on the default demo (1000 per class) at 64 px."""
    from core import demo

    root = demo.ensure_demo(workspace)
    split = data.make_split(data.scan(root), data.SplitSpec("fractions", 0.6, 0.2, 0.2, seed=0))
    data.save_split(split, name="demo", workspace=workspace)
    run_id = submit(
        workspace,
        epochs=8,
        batch_size=32,
        augment_name="none",
        log_every=20,
        optimizer="adam",
        learning_rate=1e-3,
    )
    status = wait_for(run_id, workspace, timeout=900)
    assert status["state"] == "done", log_tail(run_id, workspace)
    val = [r["val_accuracy"] for r in runs.metrics(run_id, workspace) if r["kind"] == "epoch"]
    assert max(val) >= 0.6, val  # chance is 0.25 for the four shapes


@pytest.mark.slow
def test_jax_backend_trains_a_run(workspace):
    pytest.importorskip("jax")
    make_demo_split(workspace, per_class=8, size=48)
    config = train.finalize(
        TrainConfig(split="demo", model="small", image_size=48, epochs=1, batch_size=8), workspace
    )
    run_id = runs.create_run(config.to_dict(), workspace)
    runs.launch(run_id, workspace, env={"KERAS_BACKEND": "jax"})
    status = wait_for(run_id, workspace, timeout=600)
    assert status["state"] == "done", log_tail(run_id, workspace)
    assert status["plan"]["backend"] == "jax" and status["plan"]["jit_compile"] is True
    assert (rundir.run_dir(run_id, workspace) / "best.keras").is_file()


MOBILENET_05 = WEIGHTS / "mobilenet_5_0_224_tf_no_top.h5"


@pytest.mark.slow
@pytest.mark.skipif(
    not (CATSDOGS.is_dir() and MOBILENET_05.is_file()),
    reason="no shared catsdogs photos or MobileNet weights",
)
def test_feature_extraction_and_fine_tuning_on_real_photos(workspace):
    """The issue's accuracy bar on the 3,000 shared photos, with the default settings (what the CLI
    and the Train page give for MobileNet 0.5: 224 px, a GAP head at Adam 3e-4): >= 97.5% on the
    split's 500 unseen test photos for two split seeds (97.8% and 97.8% on a Zen 4), and
    fine-tuning the top 6 weight layers from the first for 2 epochs at the default 1e-5 does not
    lose a photo and lowers the test loss. (Unfreezing the base's whole last block instead gave
    98.0% but a test loss of 0.0585 against 0.0580.)"""
    scores = []
    for seed in (0, 1):
        split = data.make_split(data.scan(CATSDOGS), data.SplitSpec("counts", 1000, 250, 250, seed=seed))
        data.save_split(split, name=f"photos{seed}", workspace=workspace)
        run_id = submit(
            workspace,
            **{
                **default_settings("features", "mobilenet_0.5"),
                "split": f"photos{seed}",
                "weights": str(MOBILENET_05),
            },
            mode="features",
            seed=0,
        )
        assert wait_for(run_id, workspace, timeout=900)["state"] == "done", log_tail(run_id, workspace)
        result = evaluate.evaluate_run(run_id, "best", "test", workspace)
        print(f"\nfeatures, split seed {seed}: test accuracy {result.accuracy:.3f}, loss {result.loss:.4f}")
        scores.append((run_id, result))
    assert all(r.n == 500 and r.accuracy >= 0.975 for _, r in scores), [r.accuracy for _, r in scores]
    features_id, features = scores[0]

    finetune_id = submit(
        workspace,
        **{**default_settings("finetune"), "from_run": features_id, "epochs": 2},
        mode="finetune",
        unfreeze_top=6,
        seed=0,
    )
    assert wait_for(finetune_id, workspace, timeout=900)["state"] == "done", log_tail(finetune_id, workspace)
    tuned = evaluate.evaluate_run(finetune_id, "best", "test", workspace)
    print(f"fine-tuned: test accuracy {tuned.accuracy:.3f}, loss {tuned.loss:.4f}")
    assert tuned.accuracy >= features.accuracy and tuned.loss < features.loss
