"""Class probabilities of any workbench model, in batches, with a sigmoid output made two-class."""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
from keras import ops


def probabilities(
    model: keras.Model,
    images: np.ndarray,
    batch_size: int = 32,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Images (N, S, S, 3), uint8 or float in [0, 255] -> class probabilities (N, C) float64.

    A sigmoid output p becomes [1 - p, p]. progress(done, total) is called after each batch.
    """
    out = []
    for i in range(0, len(images), batch_size):
        batch = np.asarray(images[i : i + batch_size], dtype=np.float32)
        p = np.asarray(ops.convert_to_numpy(ops.cast(model(batch, training=False), "float32")), np.float64)
        out.append(np.concatenate([1.0 - p, p], axis=-1) if p.shape[-1] == 1 else p)
        if progress:
            progress(min(i + batch_size, len(images)), len(images))
    if not out:
        units = int(model.outputs[0].shape[-1])
        return np.zeros((0, 2 if units == 1 else units))
    return np.concatenate(out)
