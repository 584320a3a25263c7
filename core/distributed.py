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
several on one machine with :func:`launch_local`. This module imports neither keras nor jax at the
top: the backend must be chosen (KERAS_BACKEND=jax) before keras is first imported.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from core import devicequeue
from core.config import ConfigError, TrainConfig

REPO_ROOT = Path(__file__).resolve().parents[1]
JAX_PIN = "jax==0.10.2"
# How long workers wait at start-up for the others to join (each decodes its data first).
INIT_TIMEOUT_S = 900


class BackendError(RuntimeError):
    """Multi-worker training was started on a backend other than JAX, or without jax installed."""


# ---------------------------------------------------------------------------- pure helpers


def shard_indices(n: int, num_workers: int, worker_index: int, seed: int = 0) -> np.ndarray:
    """Worker `worker_index`'s share of `n` items: disjoint from the others, all of equal size.

    The items are shuffled with `seed` first (split files are ordered by class, so contiguous
    shards would give each worker other classes), then cut into `num_workers` equal parts; the
    ``n % num_workers`` left over are dropped so every worker runs the same number of steps.
    Returned sorted, for sequential reads from the memory-mapped cache.
    """
    if num_workers < 1:
        raise ValueError(f"num_workers must be at least 1, got {num_workers}")
    if not 0 <= worker_index < num_workers:
        raise ValueError(f"worker_index must be in [0, {num_workers}), got {worker_index}")
    per = n // num_workers
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[worker_index * per : (worker_index + 1) * per])


def local_batch_size(batch_size: int, num_workers: int) -> int:
    """Images each worker feeds per step: the global batch_size split evenly over the workers."""
    if batch_size % num_workers:
        raise ConfigError(
            f"batch_size: {batch_size} is the global batch and must divide evenly over "
            f"{num_workers} workers (e.g. {max(1, batch_size // num_workers) * num_workers})"
        )
    return batch_size // num_workers


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _load_config(config: TrainConfig | dict) -> TrainConfig:
    return config if isinstance(config, TrainConfig) else TrainConfig.from_dict(dict(config))


def _require_jax_backend():
    """keras with the JAX backend, or BackendError saying how to get it."""
    try:
        import jax
    except ImportError as e:
        raise BackendError(
            f"multi-worker training needs jax: pip install '{JAX_PIN}' (see requirements-test.txt)"
        ) from e
    import keras

    backend = keras.backend.backend()
    if backend != "jax":
        raise BackendError(
            f"multi-worker training runs on the JAX backend, but keras was loaded with '{backend}'. "
            "Set KERAS_BACKEND=jax before keras is first imported: start the worker with "
            "`KERAS_BACKEND=jax python -m core.distributed ...` (or `python -m core train --workers N`, "
            "which does it for you). Keras 3 cannot drive tf.distribute.MultiWorkerMirroredStrategy "
            "(keras-team/keras#20585)."
        )
    return jax, keras


# ---------------------------------------------------------------------------- data feeding


@contextlib.contextmanager
def _no_distribution(keras):
    """Lift the distribution for a while, so only this worker may act (e.g. save a file).

    Keras saving creates throwaway variables (a reference optimizer); under DataParallel every new
    variable is a cross-process collective, so one worker saving alone would wait forever for the
    others. Reading the replicated weights needs no collective: each process holds a full copy.
    """
    previous = keras.distribution.distribution()
    keras.distribution.set_distribution(None)
    try:
        yield
    finally:
        keras.distribution.set_distribution(previous)


# ---------------------------------------------------------------------------- one worker


def worker_main(
    config: TrainConfig | dict,
    coordinator: str,
    num_workers: int,
    worker_index: int,
    out_dir: str | os.PathLike,
    workspace: str | os.PathLike | None = None,
    save_initial: bool = False,
) -> Path:
    """Train `config` as worker `worker_index` of `num_workers`; returns the final weights file.

    Needs KERAS_BACKEND=jax set before keras was imported (BackendError otherwise). Writes
    ``out_dir/worker-<i>.weights.h5`` and ``out_dir/worker-<i>.jsonl`` (a "start" row, then one
    "epoch" row per epoch with the global loss and metrics); worker 0 also writes
    ``out_dir/model.keras`` and ``out_dir/config.json`` (and ``initial.weights.h5`` if save_initial).
    """
    from core import cache
    from core.data import load_split
    from core.devices import choose_precision, cpu_has_bf16
    from core.fileio import append_jsonl
    from core.train import batches, build_model, class_weight_for, compile_model, finalize, scalar_logs

    config = _load_config(config)
    if num_workers < 1 or not 0 <= worker_index < num_workers:
        raise ValueError(f"worker index {worker_index} is not in [0, {num_workers})")
    if config.mode == "features":
        raise ConfigError(
            "mode: features mode trains only a small head on cached features; run it on one machine "
            "(or use mode frozen, which trains the same head end to end on images)"
        )
    per_worker_batch = local_batch_size(config.batch_size, num_workers)
    jax, keras = _require_jax_backend()

    # Data first, before joining the others: a missing split or dataset on this machine fails here
    # at once, and decoding (minutes for a big split on a cold cache) happens outside any collective.
    config = finalize(config, workspace)
    split = load_split(config.split, workspace)
    changed = split.changed()
    if changed:
        raise ValueError(f"split '{config.split}': {changed}")
    size = (config.image_size, config.image_size)
    train = cache.split_arrays(split, "train", size, config.resize_policy, workspace)
    val = cache.split_arrays(split, "val", size, config.resize_policy, workspace)
    num_classes = len(split.classes)
    y_train_all = np.asarray(train.labels)
    mine = shard_indices(len(train), num_workers, worker_index, config.seed)
    if len(mine) < per_worker_batch:
        raise ValueError(
            f"{len(train)} training images give each of {num_workers} workers {len(mine)}, fewer than "
            f"one per-worker batch of {per_worker_batch}; lower batch_size or use fewer workers"
        )

    # Gloo gives CPU devices cross-process collectives; GPUs use NCCL whatever this says.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=coordinator,
        num_processes=num_workers,
        process_id=worker_index,
        initialization_timeout=INIT_TIMEOUT_S,
    )
    local_devices = jax.local_device_count()
    if per_worker_batch % local_devices:
        raise ConfigError(
            f"batch_size: each worker feeds {per_worker_batch} images per step, which does not divide "
            f"over its {local_devices} devices"
        )
    keras.distribution.set_distribution(
        keras.distribution.DataParallel(devices=jax.devices(), auto_shard_dataset=False)
    )
    gpu_devices = [d for d in jax.local_devices() if d.platform == "gpu"]
    capability = None
    if gpu_devices:
        cc = getattr(gpu_devices[0], "compute_capability", None)
        capability = tuple(int(p) for p in str(cc).split(".")[:2]) if cc else None
    precision = choose_precision(config.precision, bool(gpu_devices), cpu_has_bf16(), capability)
    keras.mixed_precision.set_dtype_policy(precision)
    keras.utils.set_random_seed(config.seed)  # the same seed everywhere: identical initial weights

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics_path = out_dir / f"worker-{worker_index}.jsonl"
    metrics_path.unlink(missing_ok=True)
    if worker_index == 0:
        (out_dir / "config.json").write_text(json.dumps(config.to_dict(), indent=2), encoding="utf-8")

    val_mine = shard_indices(len(val), num_workers, worker_index, config.seed)
    val_mine = val_mine[: len(val_mine) - len(val_mine) % local_devices]
    # Every worker shuffles its shard with the same per-epoch seed; the shards differ, so batches do.
    fit_train = batches(
        train.images, y_train_all, per_worker_batch, True, config.seed, index=mine, drop_remainder=True
    )
    fit_val = (
        batches(val.images, np.asarray(val.labels), per_worker_batch, False, 0, index=val_mine)
        if len(val_mine)
        else None
    )
    steps = len(fit_train)

    model = build_model(config, num_classes, workspace)
    # XLA always: computations on arrays spread over several processes only run compiled.
    compile_model(model, config, num_classes, steps, jit=True)
    if save_initial and worker_index == 0:
        with _no_distribution(keras):
            model.save_weights(out_dir / "initial.weights.h5")

    append_jsonl(
        metrics_path,
        {
            "kind": "start",
            "worker": worker_index,
            "workers": num_workers,
            "devices": len(jax.devices()),
            "local_devices": local_devices,
            "precision": precision,
            "train_images": len(mine) * num_workers,
            "shard_images": len(mine),
            "val_images": len(val_mine) * num_workers,
            "global_batch": per_worker_batch * num_workers,
            "worker_batch": per_worker_batch,
            "steps_per_epoch": steps,
        },
    )

    class EpochLog(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds = time.perf_counter() - self.start
            append_jsonl(
                metrics_path,
                {
                    "kind": "epoch",
                    "epoch": epoch + 1,
                    "step": (epoch + 1) * steps,
                    "seconds": seconds,
                    "images_per_s": steps * per_worker_batch * num_workers / max(seconds, 1e-9),
                    **scalar_logs(logs),
                },
            )

    # Callbacks that decide from val_loss see the same global value in every worker, so they agree.
    callbacks: list = [EpochLog()]
    if config.lr_schedule == "plateau" and fit_val is not None:
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.2, patience=2))
    if config.patience and fit_val is not None:
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience))
    class_weight = class_weight_for(y_train_all, num_classes) if config.class_weights else None

    model.fit(
        fit_train,
        validation_data=fit_val,
        epochs=config.epochs,
        callbacks=callbacks,
        class_weight=class_weight,
        verbose=2 if worker_index == 0 else 0,
    )

    weights_path = out_dir / f"worker-{worker_index}.weights.h5"
    with _no_distribution(keras):
        model.save_weights(weights_path)
        if worker_index == 0:
            model.save(out_dir / "model.keras")
    jax.distributed.shutdown()  # a barrier: the coordinator (worker 0) stays up until all are done
    return weights_path


# ---------------------------------------------------------------------------- launching


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
    path.write_text(json.dumps(_load_config(config).to_dict(), indent=2), encoding="utf-8")
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

    All workers here: the launcher first waits its turn in the run queue (core.runs) and holds the
    device lock until every worker has ended. One worker (`worker_index`) takes no lock: two workers
    of one job started on the same machine would otherwise wait for each other.
    """
    if worker_index is None:
        # All the workers use this machine's devices: wait in the run queue and hold the device
        # lock (core.runs) for the whole multi-process run, like any other run.
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
