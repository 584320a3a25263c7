"""Data-parallel training over several processes or machines, on the JAX backend.

Keras 3 cannot drive tf.distribute.MultiWorkerMirroredStrategy (keras-team/keras#20585), so
multi-worker training runs on JAX: every worker calls ``jax.distributed.initialize`` against one
coordinator, then trains the same model under ``keras.distribution.DataParallel`` over all the
workers' devices. Each worker feeds its own disjoint shard of the training set
(``auto_shard_dataset=False``); XLA collectives (gloo on CPUs, NCCL on GPUs) average the gradients
of the global batch, so every worker steps in lockstep and ends with identical weights.

Batch size: ``config.batch_size`` is the GLOBAL batch, as in a one-process run of the same config;
each worker feeds ``batch_size // num_workers`` images per step (it must divide evenly).

Start one worker per machine with ``python -m core.distributed`` (see docs/distributed.md), or
several on one machine with :func:`launch_local`. This module launches and waits for the workers;
what one worker does is core.distributed_worker. Neither keras nor jax is imported here: the
backend must be chosen (KERAS_BACKEND=jax) before keras is first imported.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from core import devicequeue
from core.config import ConfigError, TrainConfig
from core.distributed_worker import BackendError, as_config, worker_main

REPO_ROOT = Path(__file__).resolve().parents[1]

# ---------------------------------------------------------------------------- launching


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _worker_command(
    config_path: Path,
    coordinator: str,
    num_workers: int,
    worker_index: int,
    out_dir: Path,
    workspace,
    save_initial: bool = False,
) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "core.distributed",
        "--config",
        str(config_path),
        "--coordinator",
        coordinator,
        "--workers",
        str(num_workers),
        "--worker-index",
        str(worker_index),
        "--out",
        str(out_dir),
    ]
    if workspace is not None:
        cmd += ["--workspace", str(workspace)]
    if save_initial:
        cmd.append("--save-initial")
    return cmd


def _worker_env() -> dict[str, str]:
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    return env


def write_config(config: TrainConfig | dict, out_dir: str | os.PathLike) -> Path:
    """The config as JSON in out_dir (launch.json), for the worker processes to read."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "launch.json"
    path.write_text(json.dumps(as_config(config).to_dict(), indent=2), encoding="utf-8")
    return path


def launch_local(
    config: TrainConfig | dict,
    num_workers: int,
    out_dir: str | os.PathLike,
    workspace: str | os.PathLike | None = None,
    port: int | None = None,
    save_initial: bool = False,
    capture: bool = True,
) -> list[subprocess.Popen]:
    """Start `num_workers` worker processes on this machine, coordinated on 127.0.0.1:<port>.

    Each runs ``python -m core.distributed`` with KERAS_BACKEND=jax; with `capture` its output goes
    to ``out_dir/worker-<i>.log``. Wait for them with :func:`wait_all`.
    """
    if num_workers < 1:
        raise ValueError(f"num_workers must be at least 1, got {num_workers}")
    out_dir = Path(out_dir).resolve()
    config_path = write_config(config, out_dir)
    coordinator = f"127.0.0.1:{port or free_port()}"
    procs = []
    for i in range(num_workers):
        cmd = _worker_command(config_path, coordinator, num_workers, i, out_dir, workspace, save_initial)
        log = open(out_dir / f"worker-{i}.log", "wb") if capture else None
        try:
            procs.append(
                subprocess.Popen(
                    cmd,
                    cwd=REPO_ROOT,
                    env=_worker_env(),
                    stdout=log,
                    stderr=subprocess.STDOUT if log else None,
                )
            )
        finally:
            if log is not None:
                log.close()  # the child holds its own handle
    return procs


def wait_all(procs: list[subprocess.Popen], timeout: float | None = None) -> list[int]:
    """Wait for every worker; if one fails or time runs out, stop the rest. Returns the exit codes."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while any(p.poll() is None for p in procs):
        failed = any(p.returncode not in (None, 0) for p in procs)
        late = deadline is not None and time.monotonic() > deadline
        if failed or late:
            for p in procs:
                if p.poll() is None:
                    p.terminate()
            for p in procs:
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            break
        time.sleep(0.2)
    return [p.returncode for p in procs]


def run(
    config: TrainConfig | dict,
    num_workers: int,
    out_dir: str | os.PathLike,
    worker_index: int | None = None,
    coordinator: str | None = None,
    workspace: str | os.PathLike | None = None,
) -> int:
    """Command-line entry (also for ``python -m core train --workers``): returns an exit code.

    Without `worker_index`: all workers on this machine. With it: this machine's one worker,
    joining `coordinator` (worker 0's host:port). Workers always run in fresh processes with
    KERAS_BACKEND=jax, so the caller's backend does not matter.

    All workers here: the launcher first waits its turn in the run queue (core.devicequeue) and holds the
    device lock until every worker has ended. One worker (`worker_index`) takes no lock: two workers
    of one job started on the same machine would otherwise wait for each other.
    """
    if worker_index is None:
        # All the workers use this machine's devices: wait in the run queue and hold the device
        # lock (core.devicequeue) for the whole multi-process run, like any other run.
        def waiting() -> None:
            print("waiting for the device: runs queued before this one go first", file=sys.stderr, flush=True)

        with devicequeue.device_turn(workspace, "distributed", on_wait=waiting):
            procs = launch_local(config, num_workers, out_dir, workspace, capture=False)
            codes = wait_all(procs)
        return next((c for c in codes if c), 0)
    if not coordinator:
        raise ValueError("--coordinator HOST:PORT (worker 0's address) is needed with --worker-index")
    out_dir = Path(out_dir).resolve()
    config_path = write_config(config, out_dir)
    cmd = _worker_command(config_path, coordinator, num_workers, worker_index, out_dir, workspace)
    return subprocess.run(cmd, cwd=REPO_ROOT, env=_worker_env()).returncode


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m core.distributed",
        description="One worker of a multi-process / multi-machine data-parallel training run (JAX backend).",
    )
    p.add_argument(
        "--config", required=True, help="JSON file of TrainConfig fields (e.g. a run's config.json)"
    )
    p.add_argument("--coordinator", help="worker 0's HOST:PORT; every worker passes the same")
    p.add_argument("--workers", type=int, required=True, help="number of workers (processes) in all")
    p.add_argument(
        "--worker-index", type=int, help="this worker's index, 0..N-1 (omit: start all N on this machine)"
    )
    p.add_argument("--out", required=True, help="folder for weights, metrics and (worker 0) model.keras")
    p.add_argument("--workspace", help="workspace folder (default: $CONVNET_WORKSPACE or ./workspace)")
    p.add_argument("--save-initial", action="store_true", help="worker 0 also saves initial.weights.h5")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config: dict[str, Any] = json.loads(Path(args.config).read_text(encoding="utf-8"))
    if args.worker_index is None:
        return run(config, args.workers, args.out, workspace=args.workspace)
    if not args.coordinator:
        print("error: --coordinator HOST:PORT is needed with --worker-index", file=sys.stderr)
        return 2
    if "keras" not in sys.modules:  # the backend is fixed when keras is first imported
        os.environ["KERAS_BACKEND"] = "jax"
    try:
        path = worker_main(
            config,
            args.coordinator,
            args.workers,
            args.worker_index,
            args.out,
            args.workspace,
            save_initial=args.save_initial,
        )
    except Exception as e:
        known = isinstance(e, (BackendError, ConfigError, ValueError, OSError, KeyError))
        if not known:
            import traceback

            traceback.print_exc()
        print(f"error: {e}", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        # Skip jax's exit-time shutdown barrier: the other workers would never reach it.
        os._exit(2 if known else 1)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
