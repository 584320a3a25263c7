"""Launching, stopping and resuming training runs in their own process; the queue; reading runs.

What a run folder holds, and the locked status.json writes both sides use, are core.rundir's.
The worker process owns status.json once it runs; launch() only resets it before starting the
worker and fills in the pid if the worker has not written yet.

Readers derive "interrupted" when a run claims to be queued or running but its process is gone
(also a zombie, or a pid now used by another process: the process start time is recorded beside
the pid). While the process lives, the run is what it says, however late its heartbeat (suspend,
clock jump, full disk): `heartbeat_late` then says for how long there has been no news. Only a
run whose worker never recorded a pid is judged by its heartbeat alone. The worker always ends in
a final state it writes (done, stopped or failed; retried, then written in place), except when it
is killed with SIGKILL.

The queue: one run at a time holds the device lock (runs/.device.lock). Waiting runs hold a
ticket in runs/.queue/ named by submission (or resume) time, and only the holder of the earliest
ticket of a live process tries the lock, so runs start in the order they were submitted.
Multi-process runs (core.distributed) wait in the same queue with device_turn().
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from core.fileio import atomic_write_json, read_json, read_jsonl, repair_jsonl
from core.rundir import (
    RunControl,
    RunDeleted,
    RunError,
    merge_status,
    read_raw_status,
    run_dir,
    run_exists,
    runs_dir,
    status_locked,
    write_json_in,
    write_status_in_place,
)
from core.workspace import TEMP_PREFIX, TRASH_PREFIX, pid_alive, temp_owner

ACTIVE_STATES = ("queued", "running")
FINAL_STATES = ("done", "failed", "stopped", "interrupted")
STALE_SECONDS = 30.0
LOCK_NAME = ".device.lock"
QUEUE_NAME = ".queue"
TICKET_ENV = "CONVNET_RUN_TICKET"  # the queue ticket launch() writes for the worker it starts
QUEUE_POLL_SECONDS = 0.2
TICKET_WAIT_SECONDS = 10.0  # how long a worker waits for the ticket its launcher writes
EXIT_GRACE_SECONDS = 5.0  # how long a worker that wrote its final state may take to exit
FINAL_RETRY_DELAYS = (0.0, 0.5, 2.0)
REPO = Path(__file__).resolve().parents[1]
INTERRUPTED_ERROR = (
    "the training process ended without saying so (killed or crashed); "
    "resume continues from the last saved epoch"
)

# Worker processes started by this process, so their exit is noticed (and they are reaped,
# not left as zombies) even where /proc is missing. Several threads (browser tabs) may launch.
_children: dict[int, subprocess.Popen] = {}
_children_lock = threading.Lock()


def new_run_id(mode: str, model: str) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{mode}-{model}-{secrets.token_hex(2)}".replace("/", "_")


# ---------------------------------------------------------------------------- processes


_boot_id: str | None = None


def process_start(pid: int | None) -> str | None:
    """What tells process `pid` from a later one given the same pid: the boot id and its start
    time in clock ticks after boot (/proc/<pid>/stat field 22). None where /proc cannot tell."""
    global _boot_id
    if not pid:
        return None
    try:
        start = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None
    if _boot_id is None:
        try:
            _boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        except OSError:
            _boot_id = ""
    return f"{_boot_id}:{start}" if _boot_id else start


def _pid_alive(pid: int | None, start: str | None = None) -> bool:
    """The process `pid` runs (not a zombie) and, when its start time was recorded, is that process."""
    if not pid:
        return False
    with _children_lock:
        child = _children.get(pid)
        if child is not None:
            return child.poll() is None  # also reaps it
    if not pid_alive(pid):
        return False
    if start:
        now = process_start(pid)
        if now is not None and now != start:
            return False  # the pid was given to another process since
    return True


def _forget_ended_children() -> None:
    with _children_lock:
        for pid, child in list(_children.items()):
            if child.poll() is not None:
                del _children[pid]


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
            gone = not _pid_alive(pid, status.get("pid_start"))
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


# ---------------------------------------------------------------------------- the queue


def _queue_dir(runs: Path) -> Path:
    path = runs / QUEUE_NAME
    path.mkdir(exist_ok=True)
    return path


def _ticket_name(label: str, stamp_ns: int | None = None) -> str:
    """Tickets sort by name in the order they were taken."""
    return f"{time.time_ns() if stamp_ns is None else stamp_ns:020d}-{label}.json"


def _write_ticket(ticket: Path, label: str, pid: int) -> None:
    write_json_in(ticket, {"run": label, "pid": pid, "pid_start": process_start(pid), "created": time.time()})


def _ticket_live(ticket: Path) -> bool:
    """A ticket counts while its process lives; a damaged one counts for a few seconds only."""
    try:
        info = read_json(ticket)
        return _pid_alive(int(info["pid"]), info.get("pid_start"))
    except FileNotFoundError:
        return False
    except (OSError, ValueError, KeyError, TypeError):
        try:
            return time.time() - ticket.stat().st_mtime < 5
        except OSError:
            return False


def _earlier_live_ticket(queue: Path, mine: str) -> bool:
    """True when a live process holds a ticket taken before `mine`; dead ones are removed."""
    try:
        names = sorted(os.listdir(queue))
    except FileNotFoundError:
        return False
    for name in names:
        if name >= mine:
            break
        if name.startswith(TEMP_PREFIX):  # a ticket being written; its writer may have been killed
            owner = temp_owner(name)
            if owner is not None and not pid_alive(owner):
                (queue / name).unlink(missing_ok=True)
            continue
        if name.startswith(".") or not name.endswith(".json"):
            continue
        ticket = queue / name
        if _ticket_live(ticket):
            return True
        ticket.unlink(missing_ok=True)
    return False


def wait_for_device(
    runs: Path,
    ticket: Path,
    label: str,
    should_stop: Callable[[], bool] = lambda: False,
    on_wait: Callable[[], Any] | None = None,
) -> IO | None:
    """Wait for the device lock in submission order; the locked file (close it to release), or None
    when should_stop() said so first. `ticket` (in runs/.queue) is this process's place in the queue
    (re-written if someone removed it); it is removed once the lock is held or the wait ends."""
    lock = open(runs / LOCK_NAME, "a+")
    waiting = False
    try:
        while True:
            if should_stop():
                lock.close()
                return None
            if not ticket.exists():
                _write_ticket(ticket, label, os.getpid())
            if not _earlier_live_ticket(ticket.parent, ticket.name):
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return lock
                except BlockingIOError:
                    pass
            if not waiting:
                waiting = True
                if on_wait is not None:
                    on_wait()
            time.sleep(QUEUE_POLL_SECONDS)
    except BaseException:
        lock.close()
        raise
    finally:
        ticket.unlink(missing_ok=True)


@contextlib.contextmanager
def device_turn(
    workspace: str | os.PathLike | None = None, label: str = "job", on_wait: Callable[[], Any] | None = None
) -> Iterator[None]:
    """Hold the device lock for a with block, after the runs queued before this call (for jobs that
    are not runs, such as multi-process training: its launcher holds the lock for all its workers)."""
    runs = runs_dir(workspace)
    label = f"{label}-{os.getpid()}-{secrets.token_hex(4)}".replace("/", "_")
    ticket = _queue_dir(runs) / _ticket_name(label)
    _write_ticket(ticket, label, os.getpid())
    lock = wait_for_device(runs, ticket, label, on_wait=on_wait)
    assert lock is not None
    try:
        yield
    finally:
        lock.close()


# ---------------------------------------------------------------------------- caller side


def _settle(path: Path) -> None:
    """Give a worker that has written its final state a moment to exit."""
    deadline = time.time() + EXIT_GRACE_SECONDS
    while time.time() < deadline:
        raw = read_raw_status(path)
        if raw.get("state") in ACTIVE_STATES or not _pid_alive(raw.get("pid"), raw.get("pid_start")):
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
    queue = _queue_dir(path.parent)
    with status_locked(path):
        raw = read_raw_status(path)
        if _pid_alive(raw.get("pid"), raw.get("pid_start")):
            raise RunError(f"run '{run_id}' still has a live process ({raw['pid']}); stop or kill it first")
        (path / "stop.request").unlink(missing_ok=True)
        if resume:
            now = time.time()
            reset = dict(pid=None, pid_start=None, heartbeat=now, error=None, message=None, ended=None)
            raw = {**raw, "state": "queued", **reset, "resumed": now}
            write_json_in(path / "status.json", raw)
        for old in queue.glob(f"{'[0-9]' * 20}-{run_id}.json"):  # tickets of earlier launches
            old.unlink(missing_ok=True)
        ticket = queue / _ticket_name(run_id)  # the place in the queue: now, before the process starts
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
                    env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1", TICKET_ENV: ticket.name},
                )
        except OSError as e:
            failed = {"state": "failed", "error": f"could not start the training process: {e}"}
            with contextlib.suppress(OSError):
                write_json_in(path / "status.json", {**raw, **failed, "ended": time.time()})
            raise
        _forget_ended_children()
        with _children_lock:
            _children[proc.pid] = proc
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
        _write_ticket(ticket, run_id, proc.pid)
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
    raw = read_raw_status(run_dir(run_id, workspace))
    pid = raw.get("pid")
    if pid and _pid_alive(pid, raw.get("pid_start")):  # never a process that merely got its pid
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
        if _pid_alive(raw.get("pid"), raw.get("pid_start")):
            raise RunError(
                f"run '{run_id}' reads {state} but its process ({raw['pid']}) is still running; "
                "wait for it to end (or kill it) before deleting it"
            )
        trash = path.with_name(f"{TRASH_PREFIX}{path.name}")
        os.replace(path, trash)  # one rename: the run disappears at once, even if removal takes a while
    shutil.rmtree(trash, ignore_errors=True)


# ---------------------------------------------------------------------------- worker side


def _acquire_device(control: RunControl) -> IO | None:
    """Wait in the queue for the device lock; None when a stop request came first (RunDeleted when
    the run was deleted). The ticket is the one launch() wrote, or a new one."""
    runs = control.path.parent
    queue = _queue_dir(runs)
    name = os.environ.get(TICKET_ENV, "")
    ticket = queue / name if name.endswith(f"-{control.path.name}.json") and "/" not in name else None
    if ticket is not None:
        deadline = time.time() + TICKET_WAIT_SECONDS
        while not ticket.exists() and time.time() < deadline:  # launch writes it just after the start
            time.sleep(0.02)
    if ticket is None or not ticket.exists():
        ticket = queue / _ticket_name(control.path.name)
        _write_ticket(ticket, control.path.name, os.getpid())

    def should_stop() -> bool:
        if not control.exists():
            raise RunDeleted(f"run '{control.path.name}' was deleted")
        return control.should_stop()

    return wait_for_device(
        runs,
        ticket,
        control.path.name,
        should_stop=should_stop,
        on_wait=lambda: control.update(state="queued", message="waiting for the running run to finish"),
    )


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
        with contextlib.suppress(FileNotFoundError):  # the run may have been deleted
            (path / "stop.request").write_text(str(time.time()))  # the first asks politely

    return handler


def _write_final(path: Path, final: dict[str, Any]) -> str | None:
    """Record how the run ended; returns the state recorded. Retried; when no write works (e.g. a
    full disk), status.json is overwritten in place with state failed and the write's error.
    None when even that failed."""
    error: OSError | None = None
    for delay in FINAL_RETRY_DELAYS:
        time.sleep(delay)
        try:
            merge_status(path, **final, heartbeat=time.time())
            return final["state"]
        except RunDeleted:
            raise
        except OSError as e:
            error = e
            traceback.print_exc()
    problem = f"its final status could not be written ({plain_error(error)})"
    if final.get("error"):
        message = f"{final['error']}; {problem}"
    else:
        message = f"the run ended {final['state']} but {problem}"
    try:
        write_status_in_place(
            path, **{**final, "state": "failed", "error": message, "heartbeat": time.time()}
        )
        return "failed"
    except RunDeleted:
        raise
    except OSError:
        traceback.print_exc()
        return None


def _remove_stray(path: Path) -> None:
    """A deleted run's folder that something re-created (without config.json) goes again."""
    if path.is_dir() and not run_exists(path):
        shutil.rmtree(path, ignore_errors=True)


def worker_main(path: Path, resume: bool) -> int:
    """Body of the run process: queue, train, and record how it ended."""
    control = RunControl(path, resume=resume)
    lock = None
    try:
        control.update(state="queued", pid=os.getpid(), pid_start=process_start(os.getpid()), error=None)
        try:
            repair_jsonl(path / "metrics.jsonl")  # a row torn by a kill must not swallow the next one
        except OSError:
            traceback.print_exc()
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
        if not control.exists():
            final = {}  # deleted: nothing to record, nowhere to record it
        else:
            traceback.print_exc()
            final = {"state": "failed", "error": plain_error(e)}
    control.end_heartbeat()
    recorded = None
    if final:
        try:
            recorded = _write_final(path, {**final, "ended": time.time()})
        except RunDeleted:
            final = {}
    if not final:
        print(f"run '{path.name}' was deleted; its worker ends without writing", flush=True)
        _remove_stray(path)
    if lock is not None:
        lock.close()
    return 0 if not final or recorded in ("done", "stopped") else 1


if __name__ == "__main__":
    from core.devices import configure_tensorflow

    configure_tensorflow(defer=True)  # GPU memory growth, so this run and the dashboard share a GPU
    run_path = Path(sys.argv[1])
    signal.signal(signal.SIGTERM, _on_sigterm(run_path))
    sys.exit(worker_main(run_path, "--resume" in sys.argv[2:]))
