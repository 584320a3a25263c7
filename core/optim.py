"""The optimizer a config asks for (with its learning-rate schedule and warm-up), and compiling a
model with it and the loss for its classes."""

from __future__ import annotations

from typing import Any

from core.config import TrainConfig


def make_optimizer(config: TrainConfig, steps_per_epoch: int):
    """The config's optimizer; its learning rate follows the schedule (constant, cosine, or the
    warm-up of config.warmup_epochs first). The plateau schedule is a callback (core.callback)."""
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
    """Compile with the config's optimizer, the loss for num_classes (label smoothing included)
    and accuracy; jit: XLA."""
    from core.models import loss_for

    # Keywords matter: a positional third argument would be taken as loss_weights.
    model.compile(
        optimizer=make_optimizer(config, steps_per_epoch),
        loss=loss_for(num_classes, config.label_smoothing),
        metrics=["accuracy"],
        jit_compile=jit,
    )
