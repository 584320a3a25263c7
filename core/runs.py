"""Run directories, and launching, stopping and resuming training runs in their own process.

A run lives in ``workspace/runs/<id>/``:
    config.json    the TrainConfig that repeats it (written once)
    status.json    state, pid, heartbeat, epoch/batch progress, error (written atomically)
    metrics.jsonl  one JSON row per logged batch and per epoch (append-only)
    best.keras     best model by val_loss; last.keras: model (with optimizer) after the last epoch
    state.json     what resuming needs: epochs done, best val_loss, early-stopping wait
    log.txt        the worker's stdout and stderr
    stop.request   present when someone asked the run to stop

Only the worker process writes status.json. Readers derive "interrupted" when a run claims
to be queued or running but its process is gone or its heartbeat is stale (e.g. SIGKILL).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.fileio import append_jsonl, atomic_write_json, read_json, read_jsonl
from core.workspace import subdir

ACTIVE_STATES = ("queued", "running")
FINAL_STATES = ("done", "failed", "stopped", "interrupted")
HEARTBEAT_SECONDS = 2.0
STALE_SECONDS = 30.0
LOCK_NAME = ".device.lock"
REPO = Path(__file__).resolve().parents[1]


class RunError(ValueError):
    """A request about runs that cannot be done (unknown id, already running...)."""


def runs_dir(workspace: str | os.PathLike | None = None) -> Path:
    return subdir("runs", workspace)


def run_dir(run_id: str, workspace: str | os.PathLike | None = None) -> Path:
    path = runs_dir(workspace) / run_id
    if not run_id or "/" in run_id or run_id.startswith(".") or not (path / "config.json").exists():
        raise RunError(f"no run with id '{run_id}'")
    return path


def new_run_id(mode: str, model: str) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{mode}-{model}-{secrets.token_hex(2)}".replace("/", "_")


def create_run(config: dict, workspace: str | os.PathLike | None = None, run_id: str | None = None) -> str:
    """Make a new run directory holding config.json and a queued status; returns its id."""
    run_id = run_id or new_run_id(str(config.get("mode", "run")), str(config.get("model", "model")))
    path = runs_dir(workspace) / run_id
    path.mkdir(parents=False, exist_ok=False)  # a run directory is never reused
    atomic_write_json(path / "config.json", config)
    atomic_write_json(
        path / "status.json",
        {
            "state": "queued",
            "created": time.time(),
            "pid": None,
            "heartbeat": time.time(),
            "epoch": 0,
            "batch": 0,
        },
    )
    return run_id


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (killed but not yet reaped by its parent) is not alive for our purposes.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def read_status(path: Path) -> dict[str, Any]:
    """status.json with the derived truth: a dead or silent active run reads as interrupted."""
    try:
        status = read_json(path / "status.json")
    except (OSError, ValueError):
        return {"state": "failed", "error": "status.json is missing or damaged"}
    if status.get("state") in ACTIVE_STATES and status.get("pid"):
        stale = time.time() - float(status.get("heartbeat", 0)) > STALE_SECONDS
        if stale or not _pid_alive(status.get("pid")):
            status = {
                **status,
                "state": "interrupted",
                "error": status.get("error")
                or "the training process ended without saying so "
                "(killed or crashed); resume continues from the last saved epoch",
            }
    return status


def status(run_id: str, workspace: str | os.PathLike | None = None) -> dict[str, Any]:
    return read_status(run_dir(run_id, workspace))


def list_runs(workspace: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """Every run, newest first: id, config, status."""
    out = []
    for path in sorted(runs_dir(workspace).iterdir(), reverse=True):
        if not path.is_dir() or path.name.startswith(".") or not (path / "config.json").exists():
            continue
        try:
            config = read_json(path / "config.json")
        except (OSError, ValueError):
            continue
        out.append({"id": path.name, "path": path, "config": config, "status": read_status(path)})
    return out


def metrics(run_id: str, workspace: str | os.PathLike | None = None) -> list[dict]:
    return read_jsonl(run_dir(run_id, workspace) / "metrics.jsonl")


def launch(
    run_id: str,
    workspace: str | os.PathLike | None = None,
    resume: bool = False,
    env: dict[str, str] | None = None,
) -> int:
    """Start the worker process for a run (detached from the caller); returns its pid."""
    path = run_dir(run_id, workspace)
    current = read_status(path)
    if current["state"] in ACTIVE_STATES and current.get("pid") and _pid_alive(current["pid"]):
        raise RunError(f"run '{run_id}' is already {current['state']}")
    (path / "stop.request").unlink(missing_ok=True)
    if resume:
        _write_status(
            path, {**current, "state": "queued", "error": None, "heartbeat": time.time(), "pid": None}
        )
    log = open(path / "log.txt", "ab")
    args = [sys.executable, "-m", "core.runs", str(path)] + (["--resume"] if resume else [])
    proc = subprocess.Popen(
        args,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # a browser refresh or Ctrl-C in the app never reaches it
        env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"},
    )
    log.close()
    status_now = read_json(path / "status.json")
    if status_now.get("pid") is None:
        _write_status(path, {**status_now, "pid": proc.pid, "heartbeat": time.time()})
    return proc.pid


def submit(config: dict, workspace: str | os.PathLike | None = None) -> str:
    """Create a run for a finalized config (core.train.finalize) and start its process; returns its id."""
    run_id = create_run(config, workspace)
    launch(run_id, workspace)
    return run_id


def stop(run_id: str, workspace: str | os.PathLike | None = None) -> None:
    """Ask a run to stop after its current batch (it keeps its checkpoints)."""
    path = run_dir(run_id, workspace)
    (path / "stop.request").write_text(str(time.time()))


def resume(run_id: str, workspace: str | os.PathLike | None = None) -> int:
    """Continue a stopped, failed or interrupted run from last.keras."""
    path = run_dir(run_id, workspace)
    state = read_status(path)["state"]
    if state in ("queued", "running"):
        raise RunError(f"run '{run_id}' is {state}; nothing to resume")
    if not (path / "last.keras").exists() and not (path / "state.json").exists():
        raise RunError(f"run '{run_id}' saved no checkpoint yet; start it again instead")
    return launch(run_id, workspace, resume=True)


def kill(run_id: str, workspace: str | os.PathLike | None = None, sig: int = signal.SIGKILL) -> None:
    """Send a signal to a run's worker (tests, and the last resort when stop is not enough)."""
    pid = read_json(run_dir(run_id, workspace) / "status.json").get("pid")
    if pid:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


# ---------------------------------------------------------------------------- worker side

_status_lock = threading.Lock()


def _write_status(path: Path, status: dict) -> None:
    with _status_lock:
        atomic_write_json(path / "status.json", status)


@dataclass
class RunControl:
    """What the training code uses to report progress and to hear a stop request."""

    path: Path
    resume: bool = False

    def __post_init__(self) -> None:
        self._status = read_json(self.path / "status.json")
        self._stop_heart = threading.Event()

    @property
    def config(self) -> dict:
        return read_json(self.path / "config.json")

    def should_stop(self) -> bool:
        return (self.path / "stop.request").exists()

    def update(self, **fields: Any) -> None:
        """Merge fields into status.json (epoch, batch, state, message...) and beat."""
        self._status.update(fields)
        self._status["heartbeat"] = time.time()
        _write_status(self.path, dict(self._status))

    def log(self, row: dict) -> None:
        append_jsonl(self.path / "metrics.jsonl", {**row, "time": time.time()})

    def beat_forever(self) -> None:
        """Refresh the heartbeat every HEARTBEAT_SECONDS from a daemon thread."""

        def loop() -> None:
            while not self._stop_heart.wait(HEARTBEAT_SECONDS):
                self.update()

        threading.Thread(target=loop, name="heartbeat", daemon=True).start()

    def end_heartbeat(self) -> None:
        self._stop_heart.set()


def _acquire_device(control: RunControl) -> Any | None:
    """Wait in the queue for the device lock; None when a stop request came first."""
    lock = open(runs_dir(control.path.parent.parent) / LOCK_NAME, "a+")
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return lock
        except BlockingIOError:
            if control.should_stop():
                lock.close()
                return None
            control.update(state="queued", message="waiting for the running run to finish")
            time.sleep(1.0)


def worker_main(path: Path, resume: bool) -> int:
    """Body of the run process: queue, train, and record how it ended."""
    control = RunControl(path, resume=resume)
    control.update(state="queued", pid=os.getpid(), error=None)
    control.beat_forever()
    lock = _acquire_device(control)
    if lock is None:
        control.update(state="stopped", message="stopped while queued", ended=time.time())
        return 0
    try:
        control.update(state="running", started=time.time(), message=None)
        from core.train import run_training  # heavy import (Keras) only in the worker

        outcome = run_training(control)
        control.update(state=outcome, ended=time.time())
        return 0
    except Exception as e:
        traceback.print_exc()
        control.update(state="failed", error=f"{type(e).__name__}: {e}", ended=time.time())
        return 1
    finally:
        control.end_heartbeat()
        lock.close()


if __name__ == "__main__":
    sys.exit(worker_main(Path(sys.argv[1]), "--resume" in sys.argv[2:]))
