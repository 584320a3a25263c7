"""The output layer and the loss every model of the workbench ends with (int class-index labels)."""

from __future__ import annotations

import keras
from keras import layers

from core.layers import SparseSmoothedCrossentropy


def output_layer(num_classes: int) -> layers.Dense:
    """Dense(1, sigmoid) for 2 classes, Dense(n, softmax) for more: (N, F) -> (N, 1) or (N, n)."""
    if num_classes < 2:
        raise ValueError(f"Need at least 2 classes, got {num_classes}.")
    # float32 even under a mixed_float16 policy: sigmoid/softmax and the loss need the precision.
    if num_classes == 2:
        return layers.Dense(1, activation="sigmoid", name="output", dtype="float32")
    return layers.Dense(num_classes, activation="softmax", name="output", dtype="float32")


def loss_for(num_classes: int, label_smoothing: float = 0.0) -> str | keras.losses.Loss:
    """The loss for int class-index labels: binary cross-entropy for 2 classes, sparse categorical for
    more; with label smoothing, the loss objects that apply it."""
    if num_classes < 2:
        raise ValueError(f"Need at least 2 classes, got {num_classes}.")
    if label_smoothing:
        if num_classes == 2:
            return keras.losses.BinaryCrossentropy(label_smoothing=label_smoothing)
        return SparseSmoothedCrossentropy(label_smoothing)
    return "binary_crossentropy" if num_classes == 2 else "sparse_categorical_crossentropy"
