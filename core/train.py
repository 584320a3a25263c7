"""The four training modes, run inside a run's own process (see core.runs).

1. scratch:  augmentation layers inside the model, then a seed net (core.models.SCRATCH_NETS).
2. features: fast feature extraction. The frozen base runs once over train/val (no
   augmentation); the features are cached on disk (core.features) and only the head is trained.
3. frozen:   end-to-end feature extraction: augmentation -> frozen base -> head, trained on images.
4. finetune: start from a features/frozen run's model, unfreeze the top of the base (BatchNorm
   stays frozen and in inference mode), train at a low learning rate.

Images reach the model as uint8 batches read from the decode cache (core.feeding); the model
casts them to float and does its own augmentation and preprocessing, so nothing per-image happens
in Python during an epoch. This module assembles the model for a config, checks and finalizes
configs, and runs the training: run_training reads top to bottom.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.callback import make_run_callback, plateau_callback
from core.config import ConfigError, TrainConfig, scratch_net
from core.devices import device_plan, distribution_scope, replica_devices
from core.features import extract_features, feature_extractor
from core.feeding import SplitArrays, batches, class_weight_for, load_split_arrays
from core.fileio import read_json
from core.modelfile import load_model
from core.optim import compile_model
from core.rundir import RunControl, RunError, read_config, run_dir
from core.weights import check_imagenet_weights, resolve_weights, weights_file


class StopRequested(Exception):
    """A stop request arrived before training began (while decoding or extracting features)."""


# ---------------------------------------------------------------------------- the model for a config


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


def _source_config(config: TrainConfig, workspace: str | os.PathLike | None) -> TrainConfig:
    try:
        return TrainConfig.from_dict(read_config(run_dir(config.from_run or "", workspace)))
    except RunError as e:
        raise ConfigError(f"from_run: {e}") from None


def _source_model_path(config: TrainConfig, workspace: str | os.PathLike | None) -> Path:
    path = run_dir(config.from_run or "", workspace)
    for name in ("best.keras", "last.keras"):
        if (path / name).exists():
            return path / name
    raise ValueError(f"run '{config.from_run}' has no saved model to fine-tune")


# ---------------------------------------------------------------------------- checking a config


def check_inputs(config: TrainConfig, workspace: str | os.PathLike | None) -> None:
    """Fail fast, before training starts, on what a run needs and cannot have: a saved split, a
    weights file, ImageNet weights (cached or downloadable), a fine-tune's source model. The CLI
    calls it before creating a run; the worker again before it trains."""
    from core.data import load_split

    load_split(config.split, workspace)
    file = weights_file(config)
    if config.mode in ("features", "frozen") and file is not None and not file.is_file():
        raise ValueError(f"The weights file {file} does not exist.")
    if config.mode in ("features", "frozen") and resolve_weights(config) == "imagenet":
        check_imagenet_weights(config)
    if config.mode == "finetune":
        _source_model_path(config, workspace)


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
        unknown = sorted(set(config.scratch_options) - set(scratch_net(config.model).options))
        if unknown:
            raise ConfigError(f"scratch_options: {config.model} has no option(s) {', '.join(unknown)}")
    else:
        try:
            spec = models.base_spec(config.model)
        except ValueError as e:
            raise ConfigError(f"model: {e}") from None
        if config.image_size < spec.min_size:
            raise ConfigError(f"image_size: {spec.title} needs at least {spec.min_size} pixels")
        file = weights_file(config)
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


# ---------------------------------------------------------------------------- what model.fit gets


def _progress(control: RunControl, what: str):
    """A progress callback for long preparations that reports and listens for stop requests."""

    def report(done: int, total: int) -> None:
        if control.should_stop():
            raise StopRequested
        control.update(message=f"{what} {done}/{total}")

    return report


def load_run_data(control: RunControl, config: TrainConfig) -> SplitArrays:
    """The run's split decoded (progress reported, stop requests heard) and its sizes recorded."""
    data = load_split_arrays(
        config, control.path.parents[1], lambda what: _progress(control, f"decoding {what}")
    )
    if len(data.train) == 0:
        raise ValueError("the training split has no images")
    control.update(message=None, classes=data.classes, train_images=len(data.train), val_images=len(data.val))
    return data


@dataclass
class FitInputs:
    """What model.fit gets: the model being fit, its data, steps per epoch, what to checkpoint, and
    the saved state of a resumed run (None: a fresh start)."""

    model: Any
    x: Any
    y: np.ndarray | None  # None: x yields (images, labels) batches
    validation: Any
    steps: int
    save_model: Any = None
    resume_state: dict | None = None


def _load_state(control: RunControl, checkpoint: Path) -> dict | None:
    """state.json of a resumed run, when its checkpoint is there too; None = start afresh."""
    path = control.path / "state.json"
    if not control.resume or not path.exists() or not checkpoint.exists():
        return None
    return read_json(path)


def _fit_on_features(control, config, data: SplitArrays, jit: bool, num_classes: int) -> FitInputs:
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
        compile_model(head, config, num_classes, steps, jit)
    # The full image model shares the head's layers, so it is saved with the trained weights.
    full = models.build_transfer(config.model, config.image_size, num_classes, base=base, head=head)
    y_train, y_val = np.asarray(data.train.labels), np.asarray(data.val.labels)
    validation = (np.asarray(x_val), y_val) if len(y_val) else None
    return FitInputs(
        head, np.asarray(x_train), y_train, validation, steps, save_model=full, resume_state=state
    )


def _fit_on_images(control, config, data: SplitArrays, jit: bool, num_classes: int) -> FitInputs:
    state = _load_state(control, control.path / "last.keras")
    y_train, y_val = np.asarray(data.train.labels), np.asarray(data.val.labels)
    steps = math.ceil(len(y_train) / config.batch_size)
    if state:  # last.keras carries the optimizer state (iterations, moments, learning rate)
        model = load_model(control.path / "last.keras")
    else:
        model = build_model(config, num_classes, data.workspace)
        compile_model(model, config, num_classes, steps, jit)
    first = (state or {}).get("epochs_done", 0)
    x = batches(
        data.train.images, y_train, config.batch_size, shuffle=True, seed=config.seed, first_epoch=first
    )
    validation = (
        batches(data.val.images, y_val, config.batch_size, shuffle=False, seed=0) if len(y_val) else None
    )
    return FitInputs(model, x, None, validation, steps, resume_state=state)


def prepare_fit(control: RunControl, config: TrainConfig, data: SplitArrays, jit: bool) -> FitInputs:
    """The compiled model and its data for the config's mode (features: the head on cached base
    features; other modes: the image model on image batches), resumed from the run's files when
    control.resume and they are there. jit: XLA."""
    fit_for_mode = _fit_on_features if config.mode == "features" else _fit_on_images
    return fit_for_mode(control, config, data, jit, len(data.classes))


# ---------------------------------------------------------------------------- run_training


def run_training(control: RunControl) -> str:
    """Train the run described by control.config; returns the final state (done or stopped)."""
    config = TrainConfig.from_dict(control.config)
    check_inputs(config, control.workspace)
    try:
        data = load_run_data(control, config)
        import keras

        plan = device_plan(config)
        keras.mixed_precision.set_dtype_policy(plan["precision"])
        keras.utils.set_random_seed(config.seed)
        devices = replica_devices(plan["gpus"])
        plan["replicas"] = max(1, len(devices))
        control.update(plan=plan)
        num_classes = len(data.classes)
        with distribution_scope(devices):
            fit = prepare_fit(control, config, data, plan["jit_compile"])
            state = fit.resume_state
            initial_epoch = (state or {}).get("epochs_done", 0)
            if initial_epoch >= config.epochs:
                return "done"
            if control.should_stop():
                return "stopped"
            run_cb = make_run_callback(
                control, config, fit.steps, len(data.train), save_model=fit.save_model, state=state
            )
            plateau = plateau_callback(config, has_validation=fit.validation is not None)
            callbacks: list = [run_cb] if plateau is None else [run_cb, plateau]
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
