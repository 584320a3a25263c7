"""Run directories, and launching, stopping and resuming training runs in their own process.

A run lives in ``workspace/runs/<id>/``:
    config.json    the TrainConfig that repeats it (written once)
    status.json    state, pid, heartbeat, epoch/batch progress, error (written atomically)
    metrics.jsonl  one JSON row per logged batch and per epoch (append-only)
    best.keras     best model by val_loss; last.keras: model (with optimizer) after the last epoch
    resume.keras   features mode only: the head with its optimizer, to resume from
    state.json     what resuming needs: epochs done, best val_loss, early-stopping wait
    log.txt        the worker's stdout and stderr (tracebacks included)
    stop.request   present when someone asked the run to stop

The worker process owns status.json once it runs; launch() only resets it before starting the
worker and fills in the pid if the worker has not written yet. Every write is a read-merge-write
under a file lock (.status.lock), so neither side clobbers the other's newer fields.

Readers derive "interrupted" when a run claims to be queued or running but its process is gone
(also a zombie) or its heartbeat is stale (e.g. SIGKILL, or a process that died before writing).
The worker itself always ends in a final state it writes (done, stopped or failed), except when
it is killed with SIGKILL.
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
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.fileio import append_jsonl, atomic_write_json, read_json, read_jsonl
from core.workspace import TRASH_PREFIX, pid_alive, subdir

ACTIVE_STATES = ("queued", "running")
FINAL_STATES = ("done", "failed", "stopped", "interrupted")
HEARTBEAT_SECONDS = 2.0
STALE_SECONDS = 30.0
LOCK_NAME = ".device.lock"
STATUS_LOCK_NAME = ".status.lock"
REPO = Path(__file__).resolve().parents[1]
INTERRUPTED_ERROR = (
    "the training process ended without saying so (killed or crashed); "
    "resume continues from the last saved epoch"
)

# Worker processes started by this process, so their exit is noticed (and they are reaped,
# not left as zombies) even where /proc is missing.
_children: dict[int, subprocess.Popen] = {}


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


# ---------------------------------------------------------------------------- status.json

_thread_lock = threading.RLock()


@contextlib.contextmanager
def _status_locked(path: Path) -> Iterator[None]:
    """Exclusive access to a run's status.json across threads and processes."""
    with _thread_lock, open(path / STATUS_LOCK_NAME, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _read_raw(path: Path) -> dict[str, Any]:
    try:
        status = read_json(path / "status.json")
    except (OSError, ValueError):
        return {}
    return status if isinstance(status, dict) else {}


def _merge_status(path: Path, **fields: Any) -> dict[str, Any]:
    """Read status.json, update it with fields and write it back, all under the status lock."""
    with _status_locked(path):
        status = {**_read_raw(path), **fields}
        atomic_write_json(path / "status.json", status)
    return status


def create_run(config: dict, workspace: str | os.PathLike | None = None, run_id: str | None = None) -> str:
    """Make a new run directory holding config.json and a queued status; returns its id."""
    run_id = run_id or new_run_id(str(config.get("mode", "run")), str(config.get("model", "model")))
    path = runs_dir(workspace) / run_id
    path.mkdir(parents=False, exist_ok=False)  # a run directory is never reused
    now = time.time()
    atomic_write_json(
        path / "status.json",
        {"state": "queued", "created": now, "pid": None, "heartbeat": now, "epoch": 0, "batch": 0},
    )
    atomic_write_json(path / "config.json", config)  # last: run_dir() needs it, so the run is whole
    return run_id


def _pid_alive(pid: int | None) -> bool:
    child = _children.get(pid) if pid else None
    if child is not None:
        return child.poll() is None  # also reaps it
    return pid_alive(pid)


def read_status(path: Path) -> dict[str, Any]:
    """status.json with the derived truth: a dead or silent active run reads as interrupted."""
    status = _read_raw(path)
    if not status:
        return {"state": "failed", "error": "status.json is missing or damaged"}
    if status.get("state") in ACTIVE_STATES:
        heartbeat = status.get("heartbeat") or status.get("created") or 0
        stale = time.time() - float(heartbeat) > STALE_SECONDS
        # No pid: launch never got to start the worker, so only the heartbeat can tell.
        dead = bool(status.get("pid")) and not _pid_alive(status.get("pid"))
        if stale or dead:
            status = {**status, "state": "interrupted", "error": status.get("error") or INTERRUPTED_ERROR}
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


# ---------------------------------------------------------------------------- caller side


def launch(
    run_id: str,
    workspace: str | os.PathLike | None = None,
    resume: bool = False,
    env: dict[str, str] | None = None,
) -> int:
    """Start the worker process for a run (detached from the caller); returns its pid."""
    path = run_dir(run_id, workspace)
    raw = _read_raw(path)
    if raw.get("state") in ACTIVE_STATES and _pid_alive(raw.get("pid")):
        raise RunError(f"run '{run_id}' still has a live process ({raw['pid']}); stop or kill it first")
    (path / "stop.request").unlink(missing_ok=True)
    if resume:
        _merge_status(
            path,
            state="queued",
            pid=None,
            heartbeat=time.time(),
            error=None,
            message=None,
            ended=None,
            resumed=time.time(),
        )
    args = [sys.executable, "-m", "core.runs", str(path)] + (["--resume"] if resume else [])
    try:
        with open(path / "log.txt", "ab") as log:
            proc = subprocess.Popen(
                args,
                cwd=REPO,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a browser refresh or Ctrl-C in the app never reaches it
                env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"},
            )
    except OSError as e:
        _merge_status(
            path, state="failed", error=f"could not start the training process: {e}", ended=time.time()
        )
        raise
    for pid, child in list(_children.items()):  # forget (and reap) workers that ended
        if child.poll() is not None:
            del _children[pid]
    _children[proc.pid] = proc
    with _status_locked(path):
        current = _read_raw(path)
        # Only while the worker has not written its own pid: never clobber its newer fields.
        if current.get("pid") is None and current.get("state") in ACTIVE_STATES:
            atomic_write_json(path / "status.json", {**current, "pid": proc.pid, "heartbeat": time.time()})
    return proc.pid


def submit(config: dict, workspace: str | os.PathLike | None = None) -> str:
    """Create a run for a finalized config (core.train.finalize) and start its process; returns its id."""
    run_id = create_run(config, workspace)
    launch(run_id, workspace)
    return run_id


def stop(run_id: str, workspace: str | os.PathLike | None = None) -> None:
    """Ask a run to stop after its current batch (it keeps its checkpoints); a queued run never starts."""
    path = run_dir(run_id, workspace)
    (path / "stop.request").write_text(str(time.time()))


def resume(run_id: str, workspace: str | os.PathLike | None = None, env: dict[str, str] | None = None) -> int:
    """Continue a stopped, failed or interrupted run from its last checkpoint; returns the new pid."""
    path = run_dir(run_id, workspace)
    state = read_status(path)["state"]
    if state in ACTIVE_STATES:
        raise RunError(f"run '{run_id}' is {state}; nothing to resume")
    if not (path / "last.keras").exists() or not (path / "state.json").exists():
        raise RunError(f"run '{run_id}' saved no checkpoint yet; start it again instead")
    return launch(run_id, workspace, resume=True, env=env)


def kill(run_id: str, workspace: str | os.PathLike | None = None, sig: int = signal.SIGKILL) -> None:
    """Send a signal to a run's worker (tests, and the last resort when stop is not enough)."""
    pid = _read_raw(run_dir(run_id, workspace)).get("pid")
    if pid and _pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def meta(run_id: str, workspace: str | os.PathLike | None = None) -> dict[str, Any]:
    """The user's name and notes for a run ({} when none); kept in meta.json, apart from config.json."""
    path = runs_dir(workspace) / run_id / "meta.json"
    try:
        return read_json(path)
    except (OSError, ValueError):
        return {}


def set_meta(run_id: str, workspace: str | os.PathLike | None = None, **fields: Any) -> dict[str, Any]:
    """Merge fields (name, notes) into a run's meta.json."""
    path = run_dir(run_id, workspace)
    merged = {**meta(run_id, workspace), **{k: str(v).strip() for k, v in fields.items()}}
    atomic_write_json(path / "meta.json", merged)
    return merged


def delete(run_id: str, workspace: str | os.PathLike | None = None) -> None:
    """Remove a finished run's directory; a queued or running run is refused."""
    import shutil

    path = run_dir(run_id, workspace)
    state = read_status(path)["state"]
    if state in ACTIVE_STATES:
        raise RunError(f"run '{run_id}' is {state}; stop it before deleting it")
    trash = path.with_name(f"{TRASH_PREFIX}{path.name}")
    os.replace(path, trash)  # one rename: the run disappears at once, even if removal takes a while
    shutil.rmtree(trash, ignore_errors=True)


# ---------------------------------------------------------------------------- worker side


@dataclass
class RunControl:
    """What the training code uses to report progress and to hear a stop request."""

    path: Path
    resume: bool = False
    _heart: threading.Thread | None = field(default=None, init=False, repr=False)
    _stop_heart: threading.Event = field(default_factory=threading.Event, init=False, repr=False)

    @property
    def config(self) -> dict:
        return read_json(self.path / "config.json")

    @property
    def workspace(self) -> Path:
        return self.path.parents[1]

    def should_stop(self) -> bool:
        return (self.path / "stop.request").exists()

    def update(self, **fields: Any) -> None:
        """Merge fields into status.json (epoch, batch, state, message...) and beat."""
        _merge_status(self.path, **fields, heartbeat=time.time())

    def log(self, row: dict) -> None:
        append_jsonl(self.path / "metrics.jsonl", {**row, "time": time.time()})

    def beat_forever(self) -> None:
        """Refresh the heartbeat every HEARTBEAT_SECONDS from a daemon thread."""

        def loop() -> None:
            while not self._stop_heart.wait(HEARTBEAT_SECONDS):
                with contextlib.suppress(OSError):  # a full disk must not kill the thread
                    self.update()

        self._heart = threading.Thread(target=loop, name="heartbeat", daemon=True)
        self._heart.start()

    def end_heartbeat(self) -> None:
        """Stop the heartbeat thread and wait for it, so no beat lands after the final state."""
        self._stop_heart.set()
        if self._heart is not None:
            self._heart.join(timeout=10)


def _acquire_device(control: RunControl) -> Any | None:
    """Wait in the queue for the device lock; None when a stop request came first."""
    lock = open(runs_dir(control.workspace) / LOCK_NAME, "a+")
    waiting = False
    while True:
        if control.should_stop():
            lock.close()
            return None
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return lock
        except BlockingIOError:
            if not waiting:
                control.update(state="queued", message="waiting for the running run to finish")
                waiting = True
            time.sleep(0.5)


def plain_error(e: BaseException) -> str:
    """One line for status.json: the first line of the message, prefixed by the type unless it
    is a ValueError (ours, such as DataError, WeightsError and ConfigError, are written for people)."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    text = lines[0] if lines else type(e).__name__
    if not isinstance(e, ValueError):
        text = f"{type(e).__name__}: {text}"
    return text if len(text) <= 300 else text[:297] + "..."


class Terminated(BaseException):
    """A second SIGTERM: stop now, without waiting for the batch to end."""


def _on_sigterm(path: Path):
    def handler(signum, frame) -> None:
        if (path / "stop.request").exists():
            raise Terminated("terminated by a signal")
        (path / "stop.request").write_text(str(time.time()))  # the first asks politely

    return handler


def worker_main(path: Path, resume: bool) -> int:
    """Body of the run process: queue, train, and record how it ended."""
    control = RunControl(path, resume=resume)
    lock = None
    try:
        control.update(state="queued", pid=os.getpid(), error=None)
        control.beat_forever()
        lock = _acquire_device(control)
        if lock is None:
            final: dict[str, Any] = {"state": "stopped", "message": "stopped while queued"}
        else:
            control.update(state="running", started=time.time(), message=None)
            from core.train import run_training  # heavy import (Keras) only once the device is ours

            outcome = run_training(control)
            final = {"state": outcome, "message": "stopped on request" if outcome == "stopped" else None}
    except (KeyboardInterrupt, Terminated) as e:
        traceback.print_exc()
        final = {"state": "stopped", "message": f"stopped: {plain_error(e)}"}
    except BaseException as e:  # every ending gets a final state, whatever raised
        traceback.print_exc()
        final = {"state": "failed", "error": plain_error(e)}
    control.end_heartbeat()
    control.update(**final, ended=time.time())
    if lock is not None:
        lock.close()
    return 0 if final["state"] in ("done", "stopped") else 1


if __name__ == "__main__":
    from core.devices import configure_tensorflow

    configure_tensorflow(defer=True)  # GPU memory growth, so this run and the dashboard share a GPU
    run_path = Path(sys.argv[1])
    signal.signal(signal.SIGTERM, _on_sigterm(run_path))
    sys.exit(worker_main(run_path, "--resume" in sys.argv[2:]))
