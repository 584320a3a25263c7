"""The run process: `python -m core.worker RUN_DIR [--resume]`, started by core.runs.launch.

It waits its turn for the device (core.devicequeue), trains (core.train.run_training) and always
ends in a final state it writes (done, stopped or failed; retried, then written in place), except
when it is killed with SIGKILL. The first SIGTERM is a stop request, a second one stops at once.
A worker whose run was deleted ends quietly, without writing (or re-creating) anything.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from core.devicequeue import wait_for_run_turn
from core.fileio import repair_jsonl
from core.processes import process_start
from core.rundir import (
    RunControl,
    RunDeleted,
    merge_status,
    request_stop,
    run_exists,
    stop_requested,
    write_status_in_place,
)

FINAL_RETRY_DELAYS = (0.0, 0.5, 2.0)


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
        if stop_requested(path):
            raise Terminated("terminated by a signal")
        with contextlib.suppress(FileNotFoundError):  # the run may have been deleted
            request_stop(path)  # the first asks politely

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
        lock = wait_for_run_turn(control)
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
