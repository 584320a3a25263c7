"""The four training modes, run inside a run's own process (see core.runs).

1. scratch:  augmentation layers inside the model, then a seed net (core.models.SCRATCH_NETS).
2. features: fast feature extraction. The frozen base runs once over train/val/test (no
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from core.fileio import atomic_write_json, read_json

if TYPE_CHECKING:
    from core.runs import RunControl

Mode = Literal["scratch", "features", "frozen", "finetune"]
MODES: tuple[str, ...] = ("scratch", "features", "frozen", "finetune")
OPTIMIZERS: tuple[str, ...] = ("rmsprop", "adam", "sgd")
SCHEDULES: tuple[str, ...] = ("constant", "cosine", "plateau")
PRECISIONS: tuple[str, ...] = ("auto", "float32", "mixed_bfloat16", "mixed_float16")


class ConfigError(ValueError):
    """A training config that cannot run; the message names the field."""


@dataclass
class TrainConfig:
    """Everything needed to repeat a run; round-trips through JSON (config.json of a run)."""

    split: str = ""
    mode: Mode = "scratch"
    model: str = "seed000"  # a scratch net (mode scratch) or a pretrained base name
    image_size: int = 150
    resize_policy: str = "stretch"
    augment_name: str = "none"
    augment: dict | None = None  # AugmentConfig.to_dict() snapshot; None = from augment_name
    weights: str = "imagenet"  # imagenet | none | path to a weights file (bases only)
    head_pooling: str = "flatten"
    head_units: int = 256
    head_dropout: float = 0.5
    scratch_options: dict = field(default_factory=dict)
    from_run: str | None = None  # finetune: the run whose best model to start from
    unfreeze_from: str | None = None  # finetune: first base layer to train (e.g. block5_conv1)
    unfreeze_top: int | None = None  # finetune: or the top N weight layers of the base
    optimizer: str = "rmsprop"
    learning_rate: float = 1e-4
    momentum: float = 0.9  # SGD only
    lr_schedule: str = "constant"
    batch_size: int = 32
    epochs: int = 10
    patience: int = 0  # early stopping on val_loss after this many epochs without gain; 0 = off
    class_weights: bool = False
    seed: int = 0
    precision: str = "auto"
    jit_compile: str = "auto"  # auto (GPU only) | on | off
    log_every: int = 5  # batches between batch-level metric rows
    name: str = ""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        def bad(field_name: str, why: str) -> ConfigError:
            return ConfigError(f"{field_name}: {why}")

        if self.mode not in MODES:
            raise bad("mode", f"must be one of {', '.join(MODES)}, not {self.mode!r}")
        if self.optimizer not in OPTIMIZERS:
            raise bad("optimizer", f"must be one of {', '.join(OPTIMIZERS)}")
        if self.lr_schedule not in SCHEDULES:
            raise bad("lr_schedule", f"must be one of {', '.join(SCHEDULES)}")
        if self.precision not in PRECISIONS:
            raise bad("precision", f"must be one of {', '.join(PRECISIONS)}")
        if self.jit_compile not in ("auto", "on", "off"):
            raise bad("jit_compile", "must be auto, on or off")
        if not 0 < self.learning_rate < 1:
            raise bad("learning_rate", f"must be between 0 and 1, got {self.learning_rate}")
        if not 1 <= self.batch_size <= 4096:
            raise bad("batch_size", f"must be between 1 and 4096, got {self.batch_size}")
        if not 1 <= self.epochs <= 10_000:
            raise bad("epochs", f"must be between 1 and 10000, got {self.epochs}")
        if not 16 <= self.image_size <= 1024:
            raise bad("image_size", f"must be between 16 and 1024 pixels, got {self.image_size}")
        if not 0 <= self.head_dropout < 1:
            raise bad("head_dropout", "must be in [0, 1)")
        if self.patience < 0:
            raise bad("patience", "must not be negative")
        if self.mode == "finetune" and not self.from_run:
            raise bad("from_run", "fine-tuning starts from a feature-extraction run; choose one")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown training setting(s): {', '.join(unknown)}")
        return cls(**d)


def seed_defaults(mode: str) -> dict[str, Any]:
    """The seeds' settings per mode (seed 000: RMSprop, 1e-4 scratch, 2e-5 heads, 1e-5 fine-tune)."""
    common = {"optimizer": "rmsprop", "batch_size": 20, "epochs": 30, "head_units": 256, "head_dropout": 0.5}
    return {
        "scratch": {
            **common,
            "model": "seed000",
            "image_size": 150,
            "learning_rate": 1e-4,
            "augment_name": "seed-000",
        },
        "features": {
            **common,
            "model": "vgg16",
            "image_size": 150,
            "learning_rate": 2e-5,
            "augment_name": "none",
            "weights": "imagenet",
        },
        "frozen": {
            **common,
            "model": "vgg16",
            "image_size": 150,
            "learning_rate": 2e-5,
            "augment_name": "seed-000",
            "weights": "imagenet",
        },
        "finetune": {
            **common,
            "learning_rate": 1e-5,
            "unfreeze_from": "block5_conv1",
            "epochs": 100,
            "augment_name": "seed-000",
        },
    }[mode]


# ---------------------------------------------------------------------------- device choices


def cpu_has_bf16() -> bool:
    """True when this CPU has native bfloat16 math (AVX512-BF16 or AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def gpus() -> list[str]:
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return [d.name for d in tf.config.list_physical_devices("GPU")]
    if keras.backend.backend() == "jax":
        import jax

        return [str(d) for d in jax.devices() if d.platform == "gpu"]
    return []


def _gpu_compute_capability() -> tuple[int, int] | None:
    try:
        import tensorflow as tf

        details = tf.config.experimental.get_device_details(tf.config.list_physical_devices("GPU")[0])
        return tuple(details.get("compute_capability") or ()) or None
    except Exception:
        return None


def choose_precision(
    requested: str, has_gpu: bool, cpu_bf16: bool, capability: tuple[int, int] | None
) -> str:
    """auto: bfloat16 where the hardware has it (recent GPUs, AMX/AVX512-BF16 CPUs), float16 on older GPUs."""
    if requested != "auto":
        return requested
    if has_gpu:
        return "mixed_bfloat16" if capability and capability >= (8, 0) else "mixed_float16"
    return "mixed_bfloat16" if cpu_bf16 else "float32"


def choose_jit(requested: str, has_gpu: bool) -> bool:
    """XLA only on GPUs: on CPUs it made training 3-4x slower here."""
    return {"on": True, "off": False}.get(requested, has_gpu)


def device_plan(config: TrainConfig) -> dict[str, Any]:
    """What this machine will use for the config: device, precision, XLA, replicas."""
    found = gpus()
    precision = choose_precision(
        config.precision, bool(found), cpu_has_bf16(), _gpu_compute_capability() if found else None
    )
    return {
        "device": f"{len(found)} GPU(s)" if found else "CPU",
        "gpus": len(found),
        "precision": precision,
        "jit_compile": choose_jit(config.jit_compile, bool(found)),
    }


def distribution_scope(n_gpus: int):
    """Data parallelism over several GPUs: MirroredStrategy (TensorFlow) or DataParallel (JAX)."""
    import contextlib

    import keras

    if n_gpus < 2:
        return contextlib.nullcontext()
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.distribute.MirroredStrategy().scope()
    if keras.backend.backend() == "jax":
        keras.distribution.set_distribution(keras.distribution.DataParallel())
    return contextlib.nullcontext()


# ---------------------------------------------------------------------------- data feeding


def batches(images: np.ndarray, labels: np.ndarray, batch_size: int, shuffle: bool, seed: int):
    """A keras.utils.PyDataset over uint8 arrays (N, H, W, 3): sorted-index batches, reshuffled per epoch."""
    import keras

    class ArrayBatches(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__()
            self.epoch = 0
            self.order = np.arange(len(labels))
            self.on_epoch_end()

        def __len__(self) -> int:
            return math.ceil(len(labels) / batch_size)

        def __getitem__(self, i: int):
            idx = np.sort(self.order[i * batch_size : (i + 1) * batch_size])  # sorted: sequential reads
            return np.asarray(images[idx]), np.asarray(labels[idx])

        def on_epoch_end(self) -> None:
            if shuffle:
                self.order = np.random.default_rng([seed, self.epoch]).permutation(len(labels))
            self.epoch += 1

    return ArrayBatches()


def class_weight_for(labels: np.ndarray, num_classes: int) -> dict[int, float]:
    """Inverse-frequency weights, mean 1: rarer classes count more in the loss."""
    counts = np.bincount(labels, minlength=num_classes).astype(float)
    counts[counts == 0] = 1
    w = counts.sum() / (num_classes * counts)
    return {i: float(v) for i, v in enumerate(w)}


def make_optimizer(config: TrainConfig, steps_per_epoch: int):
    import keras

    lr: Any = config.learning_rate
    if config.lr_schedule == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(
            config.learning_rate, decay_steps=max(1, steps_per_epoch * config.epochs)
        )
    if config.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=lr)
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=lr, momentum=config.momentum)
    return keras.optimizers.RMSprop(learning_rate=lr)


def compile_model(model, config: TrainConfig, num_classes: int, steps_per_epoch: int, jit: bool) -> None:
    from core.models import loss_for

    # Keywords matter: a positional third argument would be taken as loss_weights.
    model.compile(
        optimizer=make_optimizer(config, steps_per_epoch),
        loss=loss_for(num_classes),
        metrics=["accuracy"],
        jit_compile=jit,
    )


# ---------------------------------------------------------------------------- saving


def save_atomic(model, path: Path) -> None:
    """model.save to a temp .keras file beside `path`, then rename: readers never see half a file."""
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    model.save(tmp)
    os.replace(tmp, path)


def load_model(path: str | os.PathLike, safe_mode: bool = True, compile: bool = True):
    """keras.models.load_model with our custom layers registered; safe_mode refuses Lambda code."""
    import keras

    import core.models  # noqa: F401  registers Preprocess and friends

    return keras.models.load_model(path, safe_mode=safe_mode, compile=compile)


# ---------------------------------------------------------------------------- the callback


def _current_lr(model) -> float | None:
    try:
        from keras import ops

        return float(ops.convert_to_numpy(model.optimizer.learning_rate))
    except Exception:
        return None


def _clean(logs: dict | None) -> dict[str, float]:
    return {k: float(v) for k, v in (logs or {}).items() if np.isscalar(v) or getattr(v, "shape", None) == ()}


def make_run_callback(
    control: RunControl,
    config: TrainConfig,
    steps: int,
    save_model=None,
    resume_model=None,
    state: dict | None = None,
    lr_plateau: bool = False,
):
    """A Keras callback that logs metrics, beats, checkpoints (best and last) and obeys stop requests."""
    import keras

    class RunCallback(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.state = dict(state or {"epochs_done": 0, "best_val_loss": None, "wait": 0})
            self.stopped = False
            self.early_stopped = False

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch
            self.epoch_start = time.perf_counter()
            self.seen = 0
            self.batches = 0
            control.update(epoch=epoch + 1, epochs=config.epochs, batch=0, batches=steps)

        def on_train_batch_end(self, batch, logs=None):
            self.batches = batch + 1
            self.seen += config.batch_size
            elapsed = time.perf_counter() - self.epoch_start
            if self.batches % config.log_every == 0 or self.batches == steps:
                control.log(
                    {
                        "kind": "batch",
                        "epoch": self.epoch + 1,
                        "batch": self.batches,
                        "step": self.epoch * steps + self.batches,
                        "images_per_s": self.seen / max(elapsed, 1e-9),
                        "lr": _current_lr(self.model),
                        **_clean(logs),
                    }
                )
                control.update(batch=self.batches, batches=steps)
            if control.should_stop():
                self.stopped = True
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            logs = _clean(logs)
            elapsed = time.perf_counter() - self.epoch_start
            complete = not self.stopped or self.batches >= steps
            control.log(
                {
                    "kind": "epoch",
                    "epoch": epoch + 1,
                    "step": epoch * steps + self.batches,
                    "complete": complete,
                    "seconds": elapsed,
                    "images_per_s": self.seen / max(elapsed, 1e-9),
                    "lr": _current_lr(self.model),
                    **logs,
                }
            )
            val = logs.get("val_loss")
            best = self.state.get("best_val_loss")
            target = save_model or self.model
            if val is not None and np.isfinite(val) and (best is None or val < best):
                self.state["best_val_loss"], self.state["best_epoch"], self.state["wait"] = val, epoch + 1, 0
                save_atomic(target, control.path / "best.keras")
            elif complete:
                self.state["wait"] = self.state.get("wait", 0) + 1
            if complete:
                self.state["epochs_done"] = epoch + 1
            if save_model is not None:
                save_atomic(target, control.path / "last.keras")
                save_atomic(self.model, control.path / "resume.keras")
            else:
                save_atomic(self.model, control.path / "last.keras")
            atomic_write_json(control.path / "state.json", self.state)
            if config.patience and self.state["wait"] >= config.patience:
                self.early_stopped = True
                self.model.stop_training = True
                control.update(message=f"early stop: no better val_loss for {config.patience} epochs")

    return RunCallback()


# ---------------------------------------------------------------------------- run_training


@dataclass
class Prepared:
    """Arrays and facts a mode needs."""

    classes: list[str]
    train: Any
    val: Any
    workspace: Path


def _prepare(control: RunControl, config: TrainConfig) -> Prepared:
    from core import cache
    from core.data import load_split

    workspace = control.path.parents[1]
    split = load_split(config.split, workspace)
    changed = split.changed()
    if changed:
        raise ValueError(f"split '{config.split}': {changed}")
    size = (config.image_size, config.image_size)

    def progress(label):
        return lambda d, t: control.update(message=f"decoding {label} images {d}/{t}")

    train = cache.split_arrays(split, "train", size, config.resize_policy, workspace, progress("training"))
    val = cache.split_arrays(split, "val", size, config.resize_policy, workspace, progress("validation"))
    if len(train) == 0:
        raise ValueError("the training split has no images")
    control.update(message=None, classes=split.classes, train_images=len(train), val_images=len(val))
    return Prepared(split.classes, train, val, workspace)


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
    """The model a fresh run of this config trains on images (features mode: the full image model)."""
    from core import models

    aug = augmentation_for(config) if config.mode != "features" else None
    if config.mode == "scratch":
        return models.build_scratch(config.model, config.image_size, num_classes, augmentation=aug,
                                    **config.scratch_options)
    if config.mode in ("features", "frozen"):
        return models.build_transfer(config.model, config.image_size, num_classes, weights=resolve_weights(config),
                                     augmentation=aug, pooling=config.head_pooling, units=config.head_units,
                                     dropout=config.head_dropout)
    source = load_model(_source_model_path(config, workspace), compile=False)
    model = models.build_transfer(config.model, config.image_size, num_classes, augmentation=aug,
                                  base=models.base_of(source), head=head_of(source))
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


def _source_model_path(config: TrainConfig, workspace: Path | None) -> Path:
    from core.runs import run_dir

    path = run_dir(config.from_run, workspace)
    for name in ("best.keras", "last.keras"):
        if (path / name).exists():
            return path / name
    raise ValueError(f"run '{config.from_run}' has no saved model to fine-tune")


def _features_key(config: TrainConfig, arrays_key: str) -> str:
    weights = config.weights
    if weights not in ("imagenet", "none", None) and Path(weights).exists():
        st = Path(weights).stat()
        weights = f"{weights}:{st.st_size}:{st.st_mtime_ns}"
    raw = f"{config.model}|{weights}|{config.image_size}|{arrays_key}"
    return hashlib.sha256(raw.encode()).hexdigest()[:20]


def extract_features(
    config: TrainConfig, arrays, workspace: Path, feature_model=None, progress=None
) -> tuple[np.ndarray, bool]:
    """Base outputs for cached arrays, cached on disk by base, weights, size and files; (features, was_cached)."""
    from core.workspace import subdir

    path = subdir("features", workspace) / f"{_features_key(config, arrays.key)}.npy"
    if path.exists():
        return np.load(path, mmap_mode="r"), True
    if feature_model is None:
        feature_model = feature_extractor(config)
    n, bs, parts = len(arrays), 64, []
    for i in range(0, n, bs):
        parts.append(
            np.asarray(feature_model(np.asarray(arrays.images[i : i + bs]), training=False), dtype=np.float32)
        )
        if progress:
            progress(min(i + bs, n), n)
    feats = np.concatenate(parts) if parts else np.zeros((0, *feature_model.output_shape[1:]), np.float32)
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
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


def run_training(control: RunControl) -> str:
    """Train the run described by control.config; returns the final state (done or stopped)."""
    import keras

    config = TrainConfig.from_dict(control.config)
    plan = device_plan(config)
    keras.mixed_precision.set_dtype_policy(plan["precision"])
    keras.utils.set_random_seed(config.seed)
    control.update(plan=plan)
    data = _prepare(control, config)
    num_classes = len(data.classes)
    y_train, y_val = np.asarray(data.train.labels), np.asarray(data.val.labels)
    state = (
        read_json(control.path / "state.json")
        if control.resume and (control.path / "state.json").exists()
        else None
    )
    initial_epoch = (state or {}).get("epochs_done", 0)
    if initial_epoch >= config.epochs:
        return "done"
    class_weight = class_weight_for(y_train, num_classes) if config.class_weights else None
    callbacks: list = []

    with distribution_scope(plan["gpus"]):
        if config.mode == "features":
            from core import models

            base = models.build_base(config.model, config.image_size, resolve_weights(config))
            fx = feature_extractor(config, base)

            def progress(label):
                return lambda d, t: control.update(message=f"extracting {label} features {d}/{t}")

            x_train, hit_train = extract_features(config, data.train, data.workspace, fx, progress("training"))
            x_val, hit_val = extract_features(config, data.val, data.workspace, fx, progress("validation"))
            control.update(message=None, feature_cache_hit=bool(hit_train and hit_val))
            if state:  # the saved head carries its optimizer state
                train_model = load_model(control.path / "resume.keras")
            else:
                train_model = models.build_head(tuple(x_train.shape[1:]), num_classes, pooling=config.head_pooling,
                                                units=config.head_units, dropout=config.head_dropout)
            full = models.build_transfer(config.model, config.image_size, num_classes, base=base, head=train_model)
            steps = math.ceil(len(y_train) / config.batch_size)
            if not state:
                compile_model(train_model, config, num_classes, steps, plan["jit_compile"])
            fit_x, fit_val = (np.asarray(x_train), y_train), (np.asarray(x_val), y_val)
            save_model = full
        else:
            model = (
                load_model(control.path / "last.keras")
                if state
                else build_model(config, num_classes, data.workspace)
            )
            steps = math.ceil(len(y_train) / config.batch_size)
            if not state:
                compile_model(model, config, num_classes, steps, plan["jit_compile"])
            train_model, save_model = model, None
            fit_x = batches(data.train.images, y_train, config.batch_size, shuffle=True, seed=config.seed)
            fit_val = (
                batches(data.val.images, y_val, config.batch_size, shuffle=False, seed=0)
                if len(y_val)
                else None
            )

        run_cb = make_run_callback(control, config, steps, save_model=save_model, state=state)
        callbacks.append(run_cb)
        if config.lr_schedule == "plateau":
            callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.2, patience=2))
        control.update(trainable_params=int(sum(np.prod(w.shape) for w in train_model.trainable_weights)))
        fit_kwargs = dict(
            epochs=config.epochs,
            initial_epoch=initial_epoch,
            callbacks=callbacks,
            verbose=2,
            class_weight=class_weight,
        )
        if isinstance(fit_x, tuple):
            train_model.fit(
                fit_x[0],
                fit_x[1],
                batch_size=config.batch_size,
                shuffle=True,
                validation_data=fit_val if len(y_val) else None,
                **fit_kwargs,
            )
        else:
            train_model.fit(fit_x, validation_data=fit_val, **fit_kwargs)
    return "stopped" if run_cb.stopped else "done"



def finalize(config: TrainConfig, workspace: str | os.PathLike | None = None) -> TrainConfig:
    """Fill in what a run must record to be repeatable: the augmentation snapshot, and for
    fine-tuning the source run's base, image size, resize policy and split."""
    from core import augment, models
    from core.runs import run_dir

    changes: dict[str, Any] = {}
    if config.mode == "finetune":
        source = TrainConfig.from_dict(read_json(run_dir(config.from_run, workspace) / "config.json"))
        if source.mode not in ("features", "frozen", "finetune"):
            raise ConfigError(f"from_run: run '{config.from_run}' trained a {source.mode} model; fine-tuning "
                              "needs a model with a pretrained base (a feature-extraction run)")
        changes.update(model=source.model, image_size=source.image_size, resize_policy=source.resize_policy,
                       split=config.split or source.split, weights="none")
        if config.unfreeze_from is None and config.unfreeze_top is None:
            changes["unfreeze_from"] = models.base_spec(source.model).finetune_from
    if config.augment is None:
        try:
            changes["augment"] = augment.load_config(config.augment_name, workspace).to_dict()
        except KeyError as e:
            raise ConfigError(f"augment_name: no augmentation config named '{config.augment_name}'") from e
    if not config.split and not changes.get("split"):
        raise ConfigError("split: choose a saved split")
    return dataclasses.replace(config, **changes)
