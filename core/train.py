"""The four training modes, run inside a run's own process (see core.runs).

1. scratch:  augmentation layers inside the model, then a seed net (core.models.SCRATCH_NETS).
2. features: fast feature extraction. The frozen base runs once over train/val (no
   augmentation); the features are cached on disk and only the head is trained on them.
3. frozen:   end-to-end feature extraction: augmentation -> frozen base -> head, trained on images.
4. finetune: start from a features/frozen run's model, unfreeze the top of the base (BatchNorm
   stays frozen and in inference mode), train at a low learning rate.

Images reach the model as uint8 batches read from the decode cache (core.cache); the model
casts them to float and does its own augmentation and preprocessing, so nothing per-image happens
in Python during an epoch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.config import ConfigError, TrainConfig, _scratch_net
from core.devices import device_plan, distribution_scope, replica_devices
from core.fileio import read_json
from core.rundir import RunControl, RunError, run_dir
from core.workspace import temp_name


class StopRequested(Exception):
    """A stop request arrived before training began (while decoding or extracting features)."""


# ---------------------------------------------------------------------------- data feeding


def batches(
    images: np.ndarray,
    labels: np.ndarray,
    batch_size: int,
    shuffle: bool,
    seed: int,
    first_epoch: int = 0,
    index: np.ndarray | None = None,
    drop_remainder: bool = False,
):
    """A keras.utils.PyDataset over (memory-mapped) uint8 arrays (N, H, W, 3): sorted-index batches,
    reshuffled per epoch; only the current batch is read into memory.

    first_epoch: the epoch training starts at, so a resumed run gets that epoch's order.
    index: feed only these items (a multi-worker shard; core.distributed).
    drop_remainder: leave out the last partial batch, so every step has the same shape (one XLA
    compilation, a local batch that divides over the devices); the reshuffle means a different few
    images sit out each epoch.
    """
    import keras

    index = np.arange(len(labels)) if index is None else np.asarray(index)
    n = len(index)

    class ArrayBatches(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__()
            self.epoch = first_epoch
            self.order = np.arange(n)
            self.on_epoch_end()

        def __len__(self) -> int:
            return n // batch_size if drop_remainder else math.ceil(n / batch_size)

        def __getitem__(self, i: int):
            idx = index[
                np.sort(self.order[i * batch_size : (i + 1) * batch_size])
            ]  # sorted: sequential reads
            return np.asarray(images[idx]), np.asarray(labels[idx])

        def on_epoch_end(self) -> None:
            if shuffle:
                self.order = np.random.default_rng([seed, self.epoch]).permutation(n)
            self.epoch += 1

    return ArrayBatches()


def class_weight_for(labels: np.ndarray, num_classes: int) -> dict[int, float]:
    """Inverse-frequency weights n / (k * n_c): rarer classes count more, the mean over images is 1."""
    counts = np.bincount(labels, minlength=num_classes).astype(float)
    counts[counts == 0] = 1
    w = counts.sum() / (num_classes * counts)
    return {i: float(v) for i, v in enumerate(w)}


def make_optimizer(config: TrainConfig, steps_per_epoch: int):
    import keras

    lr: Any = config.learning_rate
    warmup = steps_per_epoch * config.warmup_epochs
    if config.lr_schedule == "cosine" or warmup:
        # CosineDecay also does the warm-up: from 0 to warmup_target over warmup_steps, then a cosine
        # over decay_steps; alpha=1 keeps the cosine flat (warm-up, then constant).
        lr = keras.optimizers.schedules.CosineDecay(
            0.0 if warmup else config.learning_rate,
            decay_steps=max(1, steps_per_epoch * config.epochs - warmup),
            alpha=0.0 if config.lr_schedule == "cosine" else 1.0,
            warmup_target=config.learning_rate if warmup else None,
            warmup_steps=warmup,
        )
    if config.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=lr)
    if config.optimizer == "adamw":
        optimizer = keras.optimizers.AdamW(learning_rate=lr, weight_decay=config.weight_decay)
        # Decay shrinks conv and dense kernels only: shrinking BatchNorm scales and biases
        # toward 0 fights the normalisation and buys no regularisation.
        optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
        return optimizer
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=lr, momentum=config.momentum)
    return keras.optimizers.RMSprop(learning_rate=lr)


def compile_model(model, config: TrainConfig, num_classes: int, steps_per_epoch: int, jit: bool) -> None:
    from core.models import loss_for

    # Keywords matter: a positional third argument would be taken as loss_weights.
    model.compile(
        optimizer=make_optimizer(config, steps_per_epoch),
        loss=loss_for(num_classes, config.label_smoothing),
        metrics=["accuracy"],
        jit_compile=jit,
    )


# ---------------------------------------------------------------------------- saving


def save_atomic(model, path: Path) -> None:
    """model.save to a temp .keras file beside `path`, then rename: readers never see half a file."""
    tmp = path.with_name(temp_name(path.name))
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_model(path: str | os.PathLike, compile: bool = True):
    """keras.models.load_model with our custom layers registered, always in safe mode: a file that
    carries Python code (Lambda layers) is refused, never run. There is no switch to turn it off."""
    import keras

    import core.models  # noqa: F401  registers Preprocess and friends

    return keras.models.load_model(path, safe_mode=True, compile=compile)


# ---------------------------------------------------------------------------- the callback


def _current_lr(model) -> float | None:
    try:
        from keras import ops

        return float(ops.convert_to_numpy(model.optimizer.learning_rate))
    except Exception:
        return None


def scalar_logs(logs: dict | None) -> dict[str, float]:
    """The logs Keras passes to callbacks, as plain floats (only the scalar ones)."""
    return {k: float(v) for k, v in (logs or {}).items() if np.isscalar(v) or getattr(v, "shape", None) == ()}


def make_run_callback(
    control: RunControl,
    config: TrainConfig,
    steps: int,
    n_train: int,
    save_model=None,
    state: dict | None = None,
):
    """A Keras callback that logs metrics, beats, checkpoints (best and last) and obeys stop requests.

    Batch rows describe the batches since the previous row: their images, mean loss and accuracy
    (recovered from Keras' running means over the epoch, which would lag and jump at epoch starts),
    speed and learning rate. Epoch rows carry Keras' epoch means, the validation metrics and
    `complete` (False for an epoch cut short by a stop request, which a resumed run trains again).
    save_model: what to checkpoint when it is not the model being fit (features mode: the full
    image model, while the head being fit goes to resume.keras).
    """
    import keras

    class RunCallback(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.state = {
                "epochs_done": 0,
                "best_val_loss": None,
                "best_epoch": None,
                "wait": 0,
                **(state or {}),
            }
            self.stopped = False
            self.early_stopped = False

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch
            self.epoch_start = time.perf_counter()
            self.train_seconds: float | None = None
            self.batches = 0
            self.last_row: tuple[int, float, dict[str, float]] = (
                0,
                self.epoch_start,
                {},
            )  # seen, clock, means
            self.last_status = self.epoch_start
            control.update(epoch=epoch + 1, epochs=config.epochs, batch=0, batches=steps)

        def _seen(self) -> int:
            return min(self.batches * config.batch_size, n_train)

        def _recent(self, means: dict[str, float], seen: int) -> dict[str, float]:
            """Means over the images since the last row, from running means (both sample-weighted)."""
            prev_seen, _, prev = self.last_row
            out = {
                k: (v * seen - prev.get(k, 0.0) * prev_seen) / (seen - prev_seen) for k, v in means.items()
            }
            if "accuracy" in out:
                out["accuracy"] = min(max(out["accuracy"], 0.0), 1.0)  # float32 rounding
            return out

        def on_train_batch_end(self, batch, logs=None):
            self.batches = batch + 1
            now = time.perf_counter()
            if self.batches >= steps:
                self.train_seconds = now - self.epoch_start
            if self.batches % config.log_every == 0 or self.batches == steps:
                means, seen = scalar_logs(logs), self._seen()
                prev_seen, prev_clock, _ = self.last_row
                control.log(
                    {
                        "kind": "batch",
                        "epoch": self.epoch + 1,
                        "batch": self.batches,
                        "step": self.epoch * steps + self.batches,
                        "images": seen - prev_seen,
                        "images_per_s": (seen - prev_seen) / max(now - prev_clock, 1e-9),
                        "lr": _current_lr(self.model),
                        **self._recent(means, seen),
                    }
                )
                self.last_row = (seen, now, means)
            if now - self.last_status >= 0.5 or self.batches >= steps:  # at most 2 status writes a second
                control.update(batch=self.batches, batches=steps)
                self.last_status = now
            if control.should_stop():
                self.stopped = True
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            logs = scalar_logs(logs)
            seconds = time.perf_counter() - self.epoch_start
            train_seconds = self.train_seconds or seconds
            complete = self.batches >= steps
            control.log(
                {
                    "kind": "epoch",
                    "epoch": epoch + 1,
                    "step": epoch * steps + self.batches,
                    "complete": complete,
                    "seconds": seconds,  # training and validation
                    "images_per_s": self._seen() / max(train_seconds, 1e-9),
                    "lr": _current_lr(self.model),
                    **logs,
                }
            )
            val = logs.get("val_loss")
            best = self.state.get("best_val_loss")
            target = save_model or self.model
            if val is not None and np.isfinite(val) and (best is None or val < best):
                self.state.update(best_val_loss=val, best_epoch=epoch + 1, wait=0)
                save_atomic(target, control.path / "best.keras")
            elif complete:
                self.state["wait"] = self.state.get("wait", 0) + 1
            if val is None:
                save_atomic(target, control.path / "best.keras")  # no validation set: best = latest
            if complete:
                self.state["epochs_done"] = epoch + 1
            save_atomic(target, control.path / "last.keras")
            if save_model is not None:
                save_atomic(self.model, control.path / "resume.keras")
            control.save_state(self.state)  # last: it vouches for the files
            if control.should_stop():  # asked during validation: do not start another epoch
                self.stopped = True
                self.model.stop_training = True
            if config.patience and self.state["wait"] >= config.patience:
                self.early_stopped = True
                self.model.stop_training = True
                control.update(message=f"early stop: no better val_loss for {config.patience} epochs")

    return RunCallback()


# ---------------------------------------------------------------------------- models


def augmentation_for(config: TrainConfig):
    """The Keras layer stack for the config's augmentation, or None for none."""
    from core import augment

    aug_config = (
        augment.AugmentConfig.from_dict(config.augment)
        if config.augment
        else augment.load_config(config.augment_name)
    )
    return None if aug_config.is_identity() else augment.build(aug_config, seed=config.seed)


def build_model(config: TrainConfig, num_classes: int, workspace: Path | None = None):
    """The model a fresh run of this config trains on images (features mode: the full image model).

    For finetune the base, its input size and the head come from the source run (config.from_run),
    so a config that is not finalized yet builds too (e.g. for a summary before launch).
    """
    from core import models

    aug = augmentation_for(config) if config.mode != "features" else None
    if config.mode == "scratch":
        return models.build_scratch(
            config.model, config.image_size, num_classes, augmentation=aug, **config.scratch_options
        )
    if config.mode in ("features", "frozen"):
        return models.build_transfer(
            config.model,
            config.image_size,
            num_classes,
            weights=resolve_weights(config),
            augmentation=aug,
            pooling=config.head_pooling,
            units=config.head_units,
            dropout=config.head_dropout,
        )
    source_config = _source_config(config, workspace)
    source = load_model(_source_model_path(config, workspace), compile=False)
    model = models.build_transfer(
        source_config.model,
        source_config.image_size,
        num_classes,
        augmentation=aug,
        base=models.base_of(source),
        head=head_of(source),
    )
    models.unfreeze(model, from_layer=config.unfreeze_from, top_n=config.unfreeze_top)
    return model


def head_of(model):
    """The layers after the base of a transfer model, as a model on base features."""
    import keras

    from core import models

    base = models.base_of(model)
    names = [layer.name for layer in model.layers]
    inputs = keras.Input(tuple(base.output.shape[1:]), name="features")
    x = inputs
    for layer in model.layers[names.index("base") + 1 :]:
        x = layer(x)
    return keras.Model(inputs, x, name="head")


def resolve_weights(config: TrainConfig) -> str | None:
    return None if config.weights in ("none", "", None) else config.weights


def _weights_file(config: TrainConfig) -> Path | None:
    """The local weights file the config names, if it names one."""
    weights = resolve_weights(config)
    return None if weights in (None, "imagenet") else Path(weights).expanduser()


def _source_config(config: TrainConfig, workspace: str | os.PathLike | None) -> TrainConfig:
    try:
        return TrainConfig.from_dict(read_json(run_dir(config.from_run or "", workspace) / "config.json"))
    except RunError as e:
        raise ConfigError(f"from_run: {e}") from None


def _source_model_path(config: TrainConfig, workspace: str | os.PathLike | None) -> Path:
    path = run_dir(config.from_run or "", workspace)
    for name in ("best.keras", "last.keras"):
        if (path / name).exists():
            return path / name
    raise ValueError(f"run '{config.from_run}' has no saved model to fine-tune")


# ---------------------------------------------------------------------------- feature cache


def _features_key(config: TrainConfig, arrays_key: str, dtype_policy: str) -> str:
    weights = str(config.weights)
    file = _weights_file(config)
    if file is not None and file.exists():
        st = file.stat()
        weights = f"{file.resolve()}:{st.st_size}:{st.st_mtime_ns}"
    raw = f"{config.model}|{weights}|{config.image_size}|{dtype_policy}|{arrays_key}"
    return hashlib.sha256(raw.encode()).hexdigest()[:20]


def features_path(config: TrainConfig, arrays_key: str, workspace: str | os.PathLike | None) -> Path:
    """Where extract_features caches the features of these arrays for this config."""
    import keras

    from core.workspace import subdir

    key = _features_key(config, arrays_key, keras.config.dtype_policy().name)
    return subdir("features", workspace) / f"{key}.npy"


def extract_features(
    config: TrainConfig, arrays, workspace: str | os.PathLike | None, feature_model=None, progress=None
) -> tuple[np.ndarray, bool]:
    """Base outputs for cached arrays, cached on disk by base, weights, size, precision and files;
    returns (features, was_cached). Random weights (weights "none") are never cached: another
    run's random base would not match its features."""
    from keras import ops

    cacheable = resolve_weights(config) is not None
    path = features_path(config, arrays.key, workspace)
    if cacheable and path.exists():
        try:
            return np.load(path, mmap_mode="r"), True
        except (OSError, ValueError):
            path.unlink(missing_ok=True)  # damaged: extract again
    if feature_model is None:
        feature_model = feature_extractor(config)
    n, bs, parts = len(arrays), 64, []
    for i in range(0, n, bs):
        out = feature_model(np.asarray(arrays.images[i : i + bs], dtype=np.float32), training=False)
        parts.append(ops.convert_to_numpy(out).astype(np.float32))
        if progress:
            progress(min(i + bs, n), n)
    feats = np.concatenate(parts) if parts else np.zeros((0, *feature_model.output_shape[1:]), np.float32)
    if cacheable:
        tmp = path.with_name(temp_name(path.name))
        np.save(tmp, feats)
        os.replace(tmp, path)
    return feats, False


def feature_extractor(config: TrainConfig, base=None):
    """Image (float 0-255) -> base features: the Preprocess layer then the frozen base."""
    import keras

    from core import models

    if base is None:
        base = models.build_base(config.model, config.image_size, resolve_weights(config))
    inputs = keras.Input((config.image_size, config.image_size, 3), name="image")
    x = models.Preprocess(models.base_spec(config.model).preprocess)(inputs)
    return keras.Model(inputs, base(x, training=False), name="feature_extractor")


# ---------------------------------------------------------------------------- run_training


@dataclass
class Prepared:
    """Arrays and facts a mode needs."""

    classes: list[str]
    train: Any
    val: Any
    workspace: Path


@dataclass
class FitPlan:
    """What model.fit gets: the model being fit, its data, and what to checkpoint."""

    model: Any
    x: Any
    y: np.ndarray | None  # None: x yields (images, labels) batches
    validation: Any
    steps: int
    save_model: Any = None


def _progress(control: RunControl, what: str):
    """A progress callback for long preparations that reports and listens for stop requests."""

    def report(done: int, total: int) -> None:
        if control.should_stop():
            raise StopRequested
        control.update(message=f"{what} {done}/{total}")

    return report


IMAGENET_HOST = "https://storage.googleapis.com/"  # where Keras downloads ImageNet weights from
REACH_TIMEOUT_S = 3.0


def keras_cached_weights(file_name: str) -> Path | None:
    """Keras's downloaded copy of a weights file, if this machine has it: $KERAS_HOME/models
    (default ~/.keras/models), or /tmp/.keras/models where Keras goes when home is not writable."""
    home = Path(os.environ["KERAS_HOME"]) if "KERAS_HOME" in os.environ else Path.home() / ".keras"
    for folder in (home, Path("/tmp/.keras")):
        path = folder.expanduser() / "models" / file_name
        if path.is_file():
            return path
    return None


def can_download(url: str = IMAGENET_HOST, timeout: float = REACH_TIMEOUT_S) -> bool:
    """True when url answers within about timeout seconds (through the proxies urllib honours, as
    Keras's own download does); False offline."""
    import threading
    import urllib.error
    import urllib.request

    answered: list[bool] = []

    def probe() -> None:
        try:
            urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout).close()
            answered.append(True)
        except urllib.error.HTTPError:  # the host answered, if not with 200
            answered.append(True)
        except Exception:
            answered.append(False)

    thread = threading.Thread(target=probe, daemon=True)  # a name lookup can outlast the timeout
    thread.start()
    thread.join(timeout + 1)
    return bool(answered and answered[0])


def check_imagenet_weights(config: TrainConfig) -> None:
    """ConfigError when a config needs ImageNet weights that are not in Keras's download cache
    and cannot be downloaded."""
    from core import models

    spec = models.base_spec(config.model)
    file_name = spec.keras_weights_file(config.image_size)
    if keras_cached_weights(file_name) is None and not can_download():
        raise ConfigError(
            f"weights: the ImageNet weights for {spec.title} ({file_name}) are not on this machine and "
            "cannot be downloaded (no internet); give a weights file (--weights /path/file.h5) or train "
            "without (--weights none)"
        )


def check_inputs(config: TrainConfig, workspace: str | os.PathLike | None) -> None:
    """Fail fast, before training starts, on what a run needs and cannot have: a saved split, a
    weights file, ImageNet weights (cached or downloadable), a fine-tune's source model. The CLI
    calls it before creating a run; the worker again before it trains."""
    from core.data import load_split

    load_split(config.split, workspace)
    file = _weights_file(config)
    if config.mode in ("features", "frozen") and file is not None and not file.is_file():
        raise ValueError(f"The weights file {file} does not exist.")
    if config.mode in ("features", "frozen") and resolve_weights(config) == "imagenet":
        check_imagenet_weights(config)
    if config.mode == "finetune":
        _source_model_path(config, workspace)


def _prepare(control: RunControl, config: TrainConfig) -> Prepared:
    from core import cache
    from core.data import load_split

    workspace = control.path.parents[1]
    split = load_split(config.split, workspace)
    changed = split.changed()
    if changed:
        raise ValueError(f"split '{config.split}': {changed}")
    size = (config.image_size, config.image_size)
    policy = config.resize_policy
    train = cache.split_arrays(
        split, "train", size, policy, workspace, _progress(control, "decoding training images")
    )
    val = cache.split_arrays(
        split, "val", size, policy, workspace, _progress(control, "decoding validation images")
    )
    if len(train) == 0:
        raise ValueError("the training split has no images")
    control.update(message=None, classes=split.classes, train_images=len(train), val_images=len(val))
    return Prepared(split.classes, train, val, workspace)


def _load_state(control: RunControl, checkpoint: Path) -> dict | None:
    """state.json of a resumed run, when its checkpoint is there too; None = start afresh."""
    path = control.path / "state.json"
    if not control.resume or not path.exists() or not checkpoint.exists():
        return None
    return read_json(path)


def _plan_features(control, config, data, plan, num_classes) -> tuple[FitPlan, dict | None]:
    from core import models

    state = _load_state(control, control.path / "resume.keras")
    base = models.build_base(config.model, config.image_size, resolve_weights(config))
    fx = feature_extractor(config, base)
    ws = data.workspace
    x_train, hit_train = extract_features(
        config, data.train, ws, fx, _progress(control, "extracting training features")
    )
    x_val, hit_val = extract_features(
        config, data.val, ws, fx, _progress(control, "extracting validation features")
    )
    control.update(message=None, feature_cache_hit=bool(hit_train and hit_val))
    steps = math.ceil(len(x_train) / config.batch_size)
    if state:  # the saved head carries its optimizer state
        head = load_model(control.path / "resume.keras")
    else:
        head = models.build_head(
            tuple(x_train.shape[1:]),
            num_classes,
            pooling=config.head_pooling,
            units=config.head_units,
            dropout=config.head_dropout,
        )
        compile_model(head, config, num_classes, steps, plan["jit_compile"])
    # The full image model shares the head's layers, so it is saved with the trained weights.
    full = models.build_transfer(config.model, config.image_size, num_classes, base=base, head=head)
    y_train, y_val = np.asarray(data.train.labels), np.asarray(data.val.labels)
    validation = (np.asarray(x_val), y_val) if len(y_val) else None
    return FitPlan(head, np.asarray(x_train), y_train, validation, steps, save_model=full), state


def _plan_images(control, config, data, plan, num_classes) -> tuple[FitPlan, dict | None]:
    state = _load_state(control, control.path / "last.keras")
    y_train, y_val = np.asarray(data.train.labels), np.asarray(data.val.labels)
    steps = math.ceil(len(y_train) / config.batch_size)
    if state:  # last.keras carries the optimizer state (iterations, moments, learning rate)
        model = load_model(control.path / "last.keras")
    else:
        model = build_model(config, num_classes, data.workspace)
        compile_model(model, config, num_classes, steps, plan["jit_compile"])
    first = (state or {}).get("epochs_done", 0)
    x = batches(
        data.train.images, y_train, config.batch_size, shuffle=True, seed=config.seed, first_epoch=first
    )
    validation = (
        batches(data.val.images, y_val, config.batch_size, shuffle=False, seed=0) if len(y_val) else None
    )
    return FitPlan(model, x, None, validation, steps), state


def run_training(control: RunControl) -> str:
    """Train the run described by control.config; returns the final state (done or stopped)."""
    config = TrainConfig.from_dict(control.config)
    check_inputs(config, control.workspace)
    try:
        data = _prepare(control, config)
        import keras

        plan = device_plan(config)
        keras.mixed_precision.set_dtype_policy(plan["precision"])
        keras.utils.set_random_seed(config.seed)
        devices = replica_devices(plan["gpus"])
        plan["replicas"] = max(1, len(devices))
        control.update(plan=plan)
        num_classes = len(data.classes)
        with distribution_scope(devices):
            make_plan = _plan_features if config.mode == "features" else _plan_images
            fit, state = make_plan(control, config, data, plan, num_classes)
            initial_epoch = (state or {}).get("epochs_done", 0)
            if initial_epoch >= config.epochs:
                return "done"
            if control.should_stop():
                return "stopped"
            run_cb = make_run_callback(
                control, config, fit.steps, len(data.train), save_model=fit.save_model, state=state
            )
            callbacks: list = [run_cb]
            if config.lr_schedule == "plateau":
                monitor = "val_loss" if fit.validation is not None else "loss"
                callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor=monitor, factor=0.2, patience=2))
            control.update(
                trainable_params=int(sum(np.prod(w.shape) for w in fit.model.trainable_weights)),
                resumed_from_epoch=initial_epoch if state else None,
            )
            class_weight = (
                class_weight_for(np.asarray(data.train.labels), num_classes) if config.class_weights else None
            )
            fit_kwargs: dict[str, Any] = dict(
                epochs=config.epochs,
                initial_epoch=initial_epoch,
                callbacks=callbacks,
                verbose=2,
                class_weight=class_weight,
                validation_data=fit.validation,
            )
            if fit.y is not None:
                fit_kwargs.update(batch_size=config.batch_size, shuffle=True)
            fit.model.fit(fit.x, fit.y, **fit_kwargs)
    except StopRequested:
        return "stopped"
    finished = run_cb.state["epochs_done"] >= config.epochs or run_cb.early_stopped
    return "stopped" if run_cb.stopped and not finished else "done"


def finalize(config: TrainConfig, workspace: str | os.PathLike | None = None) -> TrainConfig:
    """Check the config against the workspace and fill in what a run must record to be repeatable:
    the augmentation snapshot, and for fine-tuning the source run's base, image size, resize
    policy, split and head settings (and its base's default first layer to unfreeze)."""
    from core import augment, models

    changes: dict[str, Any] = {}
    if config.mode == "finetune":
        source = _source_config(config, workspace)
        if source.mode not in ("features", "frozen", "finetune"):
            raise ConfigError(
                f"from_run: run '{config.from_run}' trained a {source.mode} model; fine-tuning "
                "needs a model with a pretrained base (a feature-extraction run)"
            )
        changes.update(
            model=source.model,
            image_size=source.image_size,
            resize_policy=source.resize_policy,
            split=source.split,
            weights="none",  # the base's weights come from the source run's model
            head_pooling=source.head_pooling,
            head_units=source.head_units,
            head_dropout=source.head_dropout,
        )
        spec = models.base_spec(source.model)
        if config.unfreeze_from is None and config.unfreeze_top is None:
            changes["unfreeze_from"] = spec.finetune_from
        elif config.unfreeze_from is not None:
            names = {layer.name for layer in models.build_base(source.model, source.image_size, None).layers}
            if config.unfreeze_from not in names:
                raise ConfigError(
                    f"unfreeze_from: {spec.title} has no layer named '{config.unfreeze_from}' "
                    f"(its last block starts at '{spec.finetune_from}')"
                )
    elif config.mode == "scratch":
        unknown = sorted(set(config.scratch_options) - set(_scratch_net(config.model).options))
        if unknown:
            raise ConfigError(f"scratch_options: {config.model} has no option(s) {', '.join(unknown)}")
    else:
        try:
            spec = models.base_spec(config.model)
        except ValueError as e:
            raise ConfigError(f"model: {e}") from None
        if config.image_size < spec.min_size:
            raise ConfigError(f"image_size: {spec.title} needs at least {spec.min_size} pixels")
        file = _weights_file(config)
        if file is not None and not file.is_file():
            raise ConfigError(f"weights: the file {file} does not exist")
    if config.augment is None:
        try:
            changes["augment"] = augment.load_config(config.augment_name, workspace).to_dict()
        except (KeyError, ValueError) as e:
            raise ConfigError(f"augment_name: no augmentation config named '{config.augment_name}'") from e
    if not config.split and not changes.get("split"):
        raise ConfigError("split: choose a saved split")
    return dataclasses.replace(config, **changes)
