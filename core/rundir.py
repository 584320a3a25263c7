"""Run folders: paths, status.json, metrics.jsonl, RunControl: what a worker writes and readers read.

A run lives in ``workspace/runs/<id>/``:
    config.json    the TrainConfig that repeats it (written once; a run without it does not exist)
    status.json    state, pid (+ its start time), heartbeat, epoch/batch progress, error (atomic)
    metrics.jsonl  one JSON row per logged batch and per epoch (append-only)
    best.keras     best model by val_loss; last.keras: model (with optimizer) after the last epoch
    resume.keras   features mode only: the head with its optimizer, to resume from
    state.json     what resuming needs: epochs done, best val_loss, early-stopping wait
    log.txt        the worker's stdout and stderr (tracebacks included)
    stop.request   present when someone asked the run to stop

Every status.json write is a read-merge-write under a file lock (.status.lock), so neither the
worker nor its launcher clobbers the other's newer fields. A run-side write (status, metrics,
heartbeat) first checks, under that lock, that the run still exists: a worker whose run was deleted
raises RunDeleted and ends quietly, never re-creating the folder.

core.runs (creating, listing, launching), core.worker, core.devicequeue and core.train (which
reports through RunControl) all import this module; core.train never imports core.runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.fileio import append_jsonl, atomic_write_json, read_json
from core.workspace import subdir

HEARTBEAT_SECONDS = 2.0
STATUS_LOCK_NAME = ".status.lock"


class RunError(ValueError):
    """A request about runs that cannot be done (unknown id, already running...)."""


class RunDeleted(RunError):
    """The run's folder is gone: its worker must stop writing (and never re-create it)."""


def runs_dir(workspace: str | os.PathLike | None = None) -> Path:
    return subdir("runs", workspace)


def run_dir(run_id: str, workspace: str | os.PathLike | None = None) -> Path:
    path = runs_dir(workspace) / run_id
    if not run_id or "/" in run_id or run_id.startswith(".") or not (path / "config.json").exists():
        raise RunError(f"no run with id '{run_id}'")
    return path


# ---------------------------------------------------------------------------- status.json

_thread_lock = threading.RLock()


def write_json_in(path: Path, obj: Any) -> None:
    """Write JSON atomically into a folder that must exist: never re-creates a deleted run."""
    atomic_write_json(path, obj, make_parents=False)


def run_exists(path: Path) -> bool:
    return (path / "config.json").exists()


def read_config(path: Path) -> dict:
    """A run's config.json: the TrainConfig fields that repeat it."""
    return read_json(path / "config.json")


LOG_NAME = "log.txt"


def log_tail(path: Path, max_chars: int = 20_000) -> str | None:
    """The end of a run's log.txt (the worker's stdout and stderr), or None when it has none."""
    try:
        return (path / LOG_NAME).read_text(errors="replace")[-max_chars:]
    except FileNotFoundError:
        return None


STOP_REQUEST = "stop.request"


def request_stop(path: Path) -> None:
    """Ask a run's worker to stop after its current batch (FileNotFoundError once the run is gone)."""
    (path / STOP_REQUEST).write_text(str(time.time()))


def stop_requested(path: Path) -> bool:
    return (path / STOP_REQUEST).exists()


def clear_stop_request(path: Path) -> None:
    (path / STOP_REQUEST).unlink(missing_ok=True)


@contextlib.contextmanager
def status_locked(path: Path) -> Iterator[None]:
    """Exclusive access to a run's status.json across threads and processes; RunDeleted when the
    run is gone (checked once the lock is held, so a delete cannot slip in before the write)."""
    with _thread_lock:
        try:
            f = open(path / STATUS_LOCK_NAME, "a+")  # never creates the folder
        except FileNotFoundError:
            raise RunDeleted(f"run '{path.name}' was deleted") from None
        with f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                if not run_exists(path):
                    raise RunDeleted(f"run '{path.name}' was deleted")
                yield
            except FileNotFoundError:
                if run_exists(path):
                    raise
                raise RunDeleted(f"run '{path.name}' was deleted") from None  # by hand, under our feet
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)


def read_raw_status(path: Path) -> dict[str, Any]:
    try:
        status = read_json(path / "status.json")
    except (OSError, ValueError):
        return {}
    return status if isinstance(status, dict) else {}


def merge_status(path: Path, **fields: Any) -> dict[str, Any]:
    """Read status.json, update it with fields and write it back, all under the status lock."""
    with status_locked(path):
        status = {**read_raw_status(path), **fields}
        write_json_in(path / "status.json", status)
    return status


def write_status_in_place(path: Path, **fields: Any) -> None:
    """The last resort when no new file can be written (full disk): merge `fields` into
    status.json by overwriting it in place, compactly, with no temp file."""
    with status_locked(path):
        data = json.dumps({**read_raw_status(path), **fields}, separators=(",", ":")).encode("utf-8")
        fd = os.open(path / "status.json", os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            done = 0
            while done < len(data):
                done += os.pwrite(fd, data[done:], done)
            os.ftruncate(fd, len(data))
            os.fsync(fd)
        finally:
            os.close(fd)


# ---------------------------------------------------------------------------- worker side


@dataclass
class RunControl:
    """What the training code uses to report progress and to hear a stop request.

    Its writes raise RunDeleted once the run's folder is gone."""

    path: Path
    resume: bool = False
    _heart: threading.Thread | None = field(default=None, init=False, repr=False)
    _stop_heart: threading.Event = field(default_factory=threading.Event, init=False, repr=False)

    @property
    def config(self) -> dict:
        return read_config(self.path)

    @property
    def workspace(self) -> Path:
        return self.path.parents[1]

    def exists(self) -> bool:
        return run_exists(self.path)

    def should_stop(self) -> bool:
        return stop_requested(self.path)

    def update(self, **fields: Any) -> None:
        """Merge fields into status.json (epoch, batch, state, message...) and beat."""
        merge_status(self.path, **fields, heartbeat=time.time())

    def save_state(self, state: dict) -> None:
        """Write state.json (what resuming needs); RunDeleted once the run's folder is gone."""
        try:
            write_json_in(self.path / "state.json", state)
        except FileNotFoundError:
            raise RunDeleted(f"run '{self.path.name}' was deleted") from None

    def log(self, row: dict) -> None:
        """Append a row to metrics.jsonl (one write ending in a newline)."""
        if not self.exists():
            raise RunDeleted(f"run '{self.path.name}' was deleted")
        try:
            append_jsonl(self.path / "metrics.jsonl", {**row, "time": time.time()})  # never makes folders
        except FileNotFoundError:
            raise RunDeleted(f"run '{self.path.name}' was deleted") from None

    def beat_forever(self) -> None:
        """Refresh the heartbeat every HEARTBEAT_SECONDS from a daemon thread."""

        def loop() -> None:
            while not self._stop_heart.wait(HEARTBEAT_SECONDS):
                try:
                    self.update()
                except RunDeleted:
                    return
                except OSError:  # a full disk must not kill the thread
                    pass

        self._heart = threading.Thread(target=loop, name="heartbeat", daemon=True)
        self._heart.start()

    def end_heartbeat(self) -> None:
        """Stop the heartbeat thread and wait for it, so no beat lands after the final state."""
        self._stop_heart.set()
        if self._heart is not None:
            self._heart.join(timeout=10)
