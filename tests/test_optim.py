"""core.optim: learning-rate schedules with warm-up, and the optimizers' settings."""

from __future__ import annotations

import numpy as np
import pytest

from core import optim
from core.config import TrainConfig


def test_warmup_rises_linearly_then_follows_the_schedule():
    steps = 10
    cosine = optim.make_optimizer(
        TrainConfig(split="s", lr_schedule="cosine", warmup_epochs=2, epochs=10, learning_rate=1e-3), steps
    )
    values = []
    for step in (0, 10, 20, 60, 100):  # learning_rate reads the schedule at the optimizer's step
        cosine.iterations.assign(step)
        values.append(float(cosine.learning_rate))
    assert values == pytest.approx([0.0, 5e-4, 1e-3, 5e-4, 0.0], abs=1e-9)
    flat = optim.make_optimizer(TrainConfig(split="s", warmup_epochs=2, epochs=10, learning_rate=1e-3), steps)
    seen = []
    for step in (0, 10, 20, 60, 100):
        flat.iterations.assign(step)
        seen.append(float(flat.learning_rate))
    assert seen == pytest.approx([0.0, 5e-4, 1e-3, 1e-3, 1e-3], abs=1e-9)  # then constant


def test_adamw_decays_kernels_but_not_batchnorm_or_biases():
    import keras

    model = keras.Sequential(
        [keras.Input((4, 4, 1)), keras.layers.Conv2D(2, 3), keras.layers.BatchNormalization()]
    )
    for v in model.trainable_variables:
        v.assign(np.ones(v.shape, "float32"))
    optimizer = optim.make_optimizer(
        TrainConfig(split="s", optimizer="adamw", weight_decay=0.5, learning_rate=0.1), 1
    )
    # Zero gradients: Adam's step is 0, so whatever moves is the decay alone.
    optimizer.apply_gradients([(np.zeros(v.shape, "float32"), v) for v in model.trainable_variables])
    moved = {v.path.split("/")[-1]: float(np.asarray(v).mean()) for v in model.trainable_variables}
    assert moved["kernel"] == pytest.approx(1 - 0.1 * 0.5)
    assert moved["bias"] == moved["gamma"] == moved["beta"] == 1.0
