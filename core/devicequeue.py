"""The device queue: one run (or multi-process job) at a time holds the device lock, in submission order.

The lock is runs/.device.lock. Waiting processes hold a ticket in runs/.queue/ named by submission
(or resume) time, and only the holder of the earliest ticket of a live process tries the lock, so
runs start in the order they were submitted. A run's worker waits with wait_for_run_turn() (its
ticket written by core.runs.launch); other jobs, such as multi-process training (core.distributed),
wait in the same queue with device_turn().
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from core.fileio import read_json
from core.processes import process_alive, process_start
from core.rundir import RunControl, RunDeleted, runs_dir, write_json_in
from core.workspace import TEMP_PREFIX, pid_alive, temp_owner

LOCK_NAME = ".device.lock"
QUEUE_NAME = ".queue"
TICKET_ENV = "CONVNET_RUN_TICKET"  # the queue ticket core.runs.launch writes for the worker it starts
QUEUE_POLL_SECONDS = 0.2
TICKET_WAIT_SECONDS = 10.0  # how long a worker waits for the ticket its launcher writes


def queue_dir(runs: Path) -> Path:
    """runs/.queue, made if missing."""
    path = runs / QUEUE_NAME
    path.mkdir(exist_ok=True)
    return path


def ticket_name(label: str, stamp_ns: int | None = None) -> str:
    """Tickets sort by name in the order they were taken."""
    return f"{time.time_ns() if stamp_ns is None else stamp_ns:020d}-{label}.json"


def write_ticket(ticket: Path, label: str, pid: int) -> None:
    write_json_in(ticket, {"run": label, "pid": pid, "pid_start": process_start(pid), "created": time.time()})


def drop_tickets(queue: Path, label: str) -> None:
    """Remove the tickets taken for `label` (a run's earlier launches)."""
    for old in queue.glob(f"{'[0-9]' * 20}-{label}.json"):
        old.unlink(missing_ok=True)


def _ticket_live(ticket: Path) -> bool:
    """A ticket counts while its process lives; a damaged one counts for a few seconds only."""
    try:
        info = read_json(ticket)
        return process_alive(int(info["pid"]), info.get("pid_start"))
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
                write_ticket(ticket, label, os.getpid())
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
    ticket = queue_dir(runs) / ticket_name(label)
    write_ticket(ticket, label, os.getpid())
    lock = wait_for_device(runs, ticket, label, on_wait=on_wait)
    assert lock is not None
    try:
        yield
    finally:
        lock.close()


def wait_for_run_turn(control: RunControl) -> IO | None:
    """A run's worker waits in the queue for the device lock; None when a stop request came first
    (RunDeleted when the run was deleted). The ticket is the one launch() wrote, or a new one."""
    runs = control.path.parent
    queue = queue_dir(runs)
    name = os.environ.get(TICKET_ENV, "")
    ticket = queue / name if name.endswith(f"-{control.path.name}.json") and "/" not in name else None
    if ticket is not None:
        deadline = time.time() + TICKET_WAIT_SECONDS
        while not ticket.exists() and time.time() < deadline:  # launch writes it just after the start
            time.sleep(0.02)
    if ticket is None or not ticket.exists():
        ticket = queue / ticket_name(control.path.name)
        write_ticket(ticket, control.path.name, os.getpid())

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
