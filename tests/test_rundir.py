"""core.rundir: what a run's own process writes (RunControl) and how it refuses a deleted run."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from core import rundir
from tests.conftest import fake_run


def test_run_side_writes_refuse_a_deleted_run(workspace):
    path = fake_run(workspace, state="running", pid=os.getpid())
    control = rundir.RunControl(path)
    control.update(epoch=1)
    control.log({"kind": "batch", "batch": 1})
    shutil.rmtree(path)
    with pytest.raises(rundir.RunDeleted):
        control.update(epoch=2)
    with pytest.raises(rundir.RunDeleted):
        control.log({"kind": "batch", "batch": 2})
    with pytest.raises(rundir.RunDeleted):
        control.save_state({"epochs_done": 2})  # the epoch's last write (core.train)
    control.beat_forever()
    time.sleep(rundir.HEARTBEAT_SECONDS + 0.5)
    control.end_heartbeat()
    assert not path.exists()
    # Nor may a folder that lost its config.json (what delete's rename leaves) be written again.
    path.mkdir()
    with pytest.raises(rundir.RunDeleted):
        control.update(epoch=3)
    assert list(path.iterdir()) == [path / rundir.STATUS_LOCK_NAME]


def test_a_deletion_during_a_status_write_does_not_bring_the_folder_back(workspace, monkeypatch):
    """The folder is removed (by hand: no lock) just after a writer took the status lock and
    checked that the run exists: the write fails, it does not make a new empty folder."""
    path = fake_run(workspace, state="running", pid=os.getpid())
    real_read = rundir.read_raw_status

    def read_then_vanish(p: Path) -> dict:
        status = real_read(p)
        if p == path and path.exists():
            trash = path.with_name(f".deleted-{path.name}")
            os.replace(path, trash)
            shutil.rmtree(trash)
        return status

    monkeypatch.setattr(rundir, "read_raw_status", read_then_vanish)
    error = None
    try:
        rundir.RunControl(path).update(epoch=2)
    except Exception as e:
        error = e
    assert not path.exists(), "the write re-created the deleted folder"
    assert isinstance(error, rundir.RunDeleted)


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
