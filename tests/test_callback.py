"""core.callback: plain-float logs and the plateau schedule (the run callback itself is exercised by
the runs in tests/test_train.py and tests/test_runs.py)."""

from __future__ import annotations

import numpy as np

from core import callback
from core.config import TrainConfig


def test_scalar_logs_keeps_only_scalars_as_plain_floats():
    logs = {"loss": np.float32(0.5), "accuracy": np.array(0.75), "per_class": np.array([1.0, 2.0]), "n": 3}
    out = callback.scalar_logs(logs)
    assert out == {"loss": 0.5, "accuracy": 0.75, "n": 3.0}
    assert all(type(v) is float for v in out.values())
    assert callback.scalar_logs(None) == {}


def test_plateau_callback_watches_val_loss_or_else_the_training_loss():
    import keras

    plateau = callback.plateau_callback(TrainConfig(split="s", lr_schedule="plateau"), has_validation=True)
    assert isinstance(plateau, keras.callbacks.ReduceLROnPlateau)
    assert (plateau.monitor, plateau.factor, plateau.patience) == ("val_loss", 0.2, 2)
    no_val = callback.plateau_callback(TrainConfig(split="s", lr_schedule="plateau"), has_validation=False)
    assert no_val.monitor == "loss"
    assert (
        callback.plateau_callback(TrainConfig(split="s", lr_schedule="cosine"), has_validation=True) is None
    )
