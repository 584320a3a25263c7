"""Creating, reading and listing runs, and controlling their processes: launch, stop, resume, kill, delete.

What a run folder holds, and the locked status.json writes both sides use, are core.rundir's; the
process each run trains in is core.worker's, and the device queue it waits in core.devicequeue's.
The worker owns status.json once it runs; launch() only resets it before starting the worker and
fills in the pid if the worker has not written yet.

Readers derive "interrupted" when a run claims to be queued or running but its process is gone
(also a zombie, or a pid now used by another process: the process start time is recorded beside
the pid). While the process lives, the run is what it says, however late its heartbeat (suspend,
clock jump, full disk): `heartbeat_late` then says for how long there has been no news. Only a
run whose worker never recorded a pid is judged by its heartbeat alone.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from core.devicequeue import TICKET_ENV, drop_tickets, queue_dir, ticket_name, write_ticket
from core.fileio import atomic_write_json, read_json, read_jsonl
from core.processes import process_alive, process_start, remember_child
from core.rundir import (
    LOG_NAME,
    RunError,
    clear_stop_request,
    read_config,
    read_raw_status,
    request_stop,
    run_dir,
    run_exists,
    runs_dir,
    status_locked,
    write_json_in,
)
from core.workspace import TRASH_PREFIX

ACTIVE_STATES = ("queued", "running")
FINAL_STATES = ("done", "failed", "stopped", "interrupted")
STALE_SECONDS = 30.0
EXIT_GRACE_SECONDS = 5.0  # how long a worker that wrote its final state may take to exit
REPO = Path(__file__).resolve().parents[1]
INTERRUPTED_ERROR = (
    "the training process ended without saying so (killed or crashed); "
    "resume continues from the last saved epoch"
)


def new_run_id(mode: str, model: str) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{mode}-{model}-{secrets.token_hex(2)}".replace("/", "_")


# ---------------------------------------------------------------------------- creating and reading runs


def create_run(config: dict, workspace: str | os.PathLike | None = None, run_id: str | None = None) -> str:
    """Make a new run directory holding config.json and a queued status; returns its id.

    A generated id that is already taken (two submits in the same second) is drawn again."""
    parent = runs_dir(workspace)
    for _ in range(1000):
        rid = run_id or new_run_id(str(config.get("mode", "run")), str(config.get("model", "model")))
        path = parent / rid
        try:
            path.mkdir(parents=False, exist_ok=False)  # a run directory is never reused
            break
        except FileExistsError:
            if run_id:
                raise
    else:
        raise RunError("could not find a free run id")
    now = time.time()
    write_json_in(
        path / "status.json",
        {"state": "queued", "created": now, "pid": None, "heartbeat": now, "epoch": 0, "batch": 0},
    )
    write_json_in(path / "config.json", config)  # last: run_dir() needs it, so the run is whole
    return rid


def read_status(path: Path) -> dict[str, Any]:
    """status.json with the derived truth: an active run whose process is gone reads as interrupted
    (as does one that never got a process, once its heartbeat is stale); a live process with a
    late heartbeat keeps its state and gets `heartbeat_late` (seconds without news)."""
    status = read_raw_status(path)
    if not status:
        return {"state": "failed", "error": "status.json is missing or damaged"}
    if status.get("state") in ACTIVE_STATES:
        heartbeat = status.get("heartbeat") or status.get("created") or 0
        silence = time.time() - float(heartbeat)
        pid = status.get("pid")
        if pid:
            gone = not process_alive(pid, status.get("pid_start"))
            if not gone and silence > STALE_SECONDS:
                status = {**status, "heartbeat_late": round(silence, 1)}
        else:
            gone = silence > STALE_SECONDS  # launch never got to start the worker
        if gone:
            status = {**status, "state": "interrupted", "error": status.get("error") or INTERRUPTED_ERROR}
    return status


def status(run_id: str, workspace: str | os.PathLike | None = None) -> dict[str, Any]:
    return read_status(run_dir(run_id, workspace))


def list_runs(workspace: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """Every run, newest first: id, config, status."""
    out = []
    for path in sorted(runs_dir(workspace).iterdir(), reverse=True):
        if not path.is_dir() or path.name.startswith(".") or not run_exists(path):
            continue
        try:
            config = read_config(path)
        except (OSError, ValueError):
            continue
        out.append({"id": path.name, "path": path, "config": config, "status": read_status(path)})
    return out


def metrics(run_id: str, workspace: str | os.PathLike | None = None) -> list[dict]:
    return read_jsonl(run_dir(run_id, workspace) / "metrics.jsonl")


# ---------------------------------------------------------------------------- caller side


def _settle(path: Path) -> None:
    """Give a worker that has written its final state a moment to exit."""
    deadline = time.time() + EXIT_GRACE_SECONDS
    while time.time() < deadline:
        raw = read_raw_status(path)
        if raw.get("state") in ACTIVE_STATES or not process_alive(raw.get("pid"), raw.get("pid_start")):
            return
        time.sleep(0.05)


def launch(
    run_id: str,
    workspace: str | os.PathLike | None = None,
    resume: bool = False,
    env: dict[str, str] | None = None,
) -> int:
    """Start the worker process for a run (detached from the caller); returns its pid.

    The run joins the queue now (a resumed run by its resume time). The check, the reset, the
    start and the pid are done under the run's status lock, so two launches of one run (two tabs)
    cannot both start a worker, and a delete sees either the run before or its live worker."""
    path = run_dir(run_id, workspace)
    _settle(path)
    queue = queue_dir(path.parent)
    with status_locked(path):
        raw = read_raw_status(path)
        if process_alive(raw.get("pid"), raw.get("pid_start")):
            raise RunError(f"run '{run_id}' still has a live process ({raw['pid']}); stop or kill it first")
        clear_stop_request(path)
        if resume:
            now = time.time()
            reset = dict(pid=None, pid_start=None, heartbeat=now, error=None, message=None, ended=None)
            raw = {**raw, "state": "queued", **reset, "resumed": now}
            write_json_in(path / "status.json", raw)
        drop_tickets(queue, run_id)  # tickets of earlier launches
        ticket = queue / ticket_name(run_id)  # the place in the queue: now, before the process starts
        args = [sys.executable, "-m", "core.worker", str(path)] + (["--resume"] if resume else [])
        try:
            with open(path / LOG_NAME, "ab") as log:
                proc = subprocess.Popen(
                    args,
                    cwd=REPO,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # a browser refresh or Ctrl-C in the app never reaches it
                    env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1", TICKET_ENV: ticket.name},
                )
        except OSError as e:
            failed = {"state": "failed", "error": f"could not start the training process: {e}"}
            with contextlib.suppress(OSError):
                write_json_in(path / "status.json", {**raw, **failed, "ended": time.time()})
            raise
        remember_child(proc)
        # The worker runs: bookkeeping that fails from here on must not say it did not start.
        try:
            current = read_raw_status(path)
            # Only while the worker has not written its own pid: never clobber its newer fields.
            if current.get("pid") is None and current.get("state") in ACTIVE_STATES:
                fields = {"pid": proc.pid, "pid_start": process_start(proc.pid), "heartbeat": time.time()}
                write_json_in(path / "status.json", {**current, **fields})
        except OSError:
            traceback.print_exc()
    try:
        write_ticket(ticket, run_id, proc.pid)
    except OSError:
        traceback.print_exc()  # the worker makes its own ticket when this one never comes
    return proc.pid


def submit(config: dict, workspace: str | os.PathLike | None = None) -> str:
    """Create a run for a finalized config (core.train.finalize) and start its process; returns its id."""
    run_id = create_run(config, workspace)
    launch(run_id, workspace)
    return run_id


def stop(run_id: str, workspace: str | os.PathLike | None = None) -> None:
    """Ask a run to stop after its current batch (it keeps its checkpoints); a queued run never starts."""
    request_stop(run_dir(run_id, workspace))


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
    raw = read_raw_status(run_dir(run_id, workspace))
    pid = raw.get("pid")
    if pid and process_alive(pid, raw.get("pid_start")):  # never a process that merely got its pid
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
    """Remove a finished run's directory. Refused while the run is queued or running, and while
    its process lives whatever its status says; decided and done under the status lock, so a
    launch or a starting worker sees either the whole run or none."""
    path = run_dir(run_id, workspace)
    _settle(path)
    with status_locked(path):
        state = read_status(path)["state"]
        if state in ACTIVE_STATES:
            raise RunError(f"run '{run_id}' is {state}; stop it before deleting it")
        raw = read_raw_status(path)
        if process_alive(raw.get("pid"), raw.get("pid_start")):
            raise RunError(
                f"run '{run_id}' reads {state} but its process ({raw['pid']}) is still running; "
                "wait for it to end (or kill it) before deleting it"
            )
        trash = path.with_name(f"{TRASH_PREFIX}{path.name}")
        os.replace(path, trash)  # one rename: the run disappears at once, even if removal takes a while
    shutil.rmtree(trash, ignore_errors=True)
