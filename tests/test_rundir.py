"""core.rundir: what a run's own process writes (RunControl) and how it refuses a deleted run."""

from __future__ import annotations

import os
import shutil
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
