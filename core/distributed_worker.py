"""One worker of data-parallel training on the JAX backend (see core.distributed for the whole).

Every worker calls ``jax.distributed.initialize`` against one coordinator, then trains the same
model under ``keras.distribution.DataParallel`` over all the workers' devices, feeding its own
disjoint shard of the training set (``auto_shard_dataset=False``); XLA collectives (gloo on CPUs,
NCCL on GPUs) average the gradients of the global batch, so every worker steps in lockstep and ends
with identical weights. The data, model, optimizer and callbacks are those of one-process runs
(core.feeding, core.train, core.optim, core.callback). Neither keras nor jax is imported at the top:
the backend must be chosen (KERAS_BACKEND=jax) before keras is first imported.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

import numpy as np

from core.config import ConfigError, TrainConfig

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


def as_config(config: TrainConfig | dict) -> TrainConfig:
    """A TrainConfig, from one or from its dict."""
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


# ---------------------------------------------------------------------------- saving alone


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
    ``out_dir/model.keras``, ``out_dir/config.json`` (and ``initial.weights.h5`` if save_initial) and
    its epoch rows as TensorBoard event files under ``out_dir/tensorboard`` (core.tensorboard).
    """
    from core.callback import plateau_callback, scalar_logs
    from core.devices import device_plan
    from core.feeding import batches, class_weight_for, load_split_arrays
    from core.fileio import append_jsonl
    from core.optim import compile_model
    from core.tensorboard import FOLDER, EventLog
    from core.train import build_model, finalize

    config = as_config(config)
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
    data = load_split_arrays(config, workspace)
    num_classes = len(data.classes)
    y_train_all = np.asarray(data.train.labels)
    mine = shard_indices(len(data.train), num_workers, worker_index, config.seed)
    if len(mine) < per_worker_batch:
        raise ValueError(
            f"{len(data.train)} training images give each of {num_workers} workers {len(mine)}, fewer than "
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
    precision = device_plan(config)["precision"]
    keras.mixed_precision.set_dtype_policy(precision)
    keras.utils.set_random_seed(config.seed)  # the same seed everywhere: identical initial weights

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics_path = out_dir / f"worker-{worker_index}.jsonl"
    metrics_path.unlink(missing_ok=True)
    if worker_index == 0:
        (out_dir / "config.json").write_text(json.dumps(config.to_dict(), indent=2), encoding="utf-8")

    val_mine = shard_indices(len(data.val), num_workers, worker_index, config.seed)
    val_mine = val_mine[: len(val_mine) - len(val_mine) % local_devices]
    # Every worker shuffles its shard with the same per-epoch seed; the shards differ, so batches do.
    fit_train = batches(
        data.train.images, y_train_all, per_worker_batch, True, config.seed, index=mine, drop_remainder=True
    )
    fit_val = (
        batches(data.val.images, np.asarray(data.val.labels), per_worker_batch, False, 0, index=val_mine)
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

    events = EventLog(out_dir / FOLDER) if worker_index == 0 else None

    class EpochLog(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds = time.perf_counter() - self.start
            row = {
                "kind": "epoch",
                "epoch": epoch + 1,
                "step": (epoch + 1) * steps,
                "seconds": seconds,
                "images_per_s": steps * per_worker_batch * num_workers / max(seconds, 1e-9),
                **scalar_logs(logs),
            }
            append_jsonl(metrics_path, row)
            if events is not None:
                events.add(row)

        def on_train_end(self, logs=None):
            if events is not None:
                events.close()

    # Callbacks that decide from val_loss see the same global value in every worker, so they agree.
    callbacks: list = [EpochLog()]
    if fit_val is not None:
        plateau = plateau_callback(config, has_validation=True)
        callbacks += [plateau] if plateau is not None else []
        if config.patience:
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
