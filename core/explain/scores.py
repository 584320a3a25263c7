"""Class scores and probabilities of images: the logits the gradient methods differentiate.

Grad-CAM and Grad-CAM++ differentiate the pre-activation score (logit) of the class, not its
probability: for a sigmoid output with logit z, class 1's score is z and class 0's is -z
(p(0) = sigmoid(-z)); for softmax, the logit z_k. Logits are the output Dense layer's kernel and bias
applied to its input, computed in float32.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import layers, ops

from core import models
from core.explain.graph import gradient_model, image_batch
from core.explain.layer_paths import default_layer


def _output_kind(model: keras.Model) -> tuple[str, keras.Layer]:
    """("sigmoid" | "softmax" | "linear" | "probabilities", output layer).

    The first three: a Dense output layer whose logits can be computed; "probabilities": anything
    else, for which the explainers fall back to the output values as scores.
    """
    layer = model.outputs[0]._keras_history.operation
    if isinstance(layer, layers.Dense):
        activation = layer.activation
        for kind in ("sigmoid", "softmax", "linear"):
            if activation is getattr(keras.activations, kind):
                return kind, layer
    return "probabilities", layer


def num_classes(model: keras.Model) -> int:
    """2 for a (N, 1) sigmoid output, else the number of outputs."""
    units = int(model.outputs[0].shape[-1])
    return 2 if units == 1 else units


def class_indices(model: keras.Model, class_index: Any, n: int) -> np.ndarray | None:
    """class_index as an int array (n,), or None for "the predicted class"; checks the range."""
    if class_index is None:
        return None
    classes = np.broadcast_to(np.asarray(class_index, dtype=np.int64), (n,)).copy()
    c = num_classes(model)
    if classes.min() < 0 or classes.max() >= c:
        raise ValueError(f"class_index must be in 0..{c - 1}, got {class_index!r}.")
    return classes


def scores_from(model: keras.Model, features, probabilities):
    """Per-class scores (N, C) float32, backend tensors: logits where they can be computed.

    Sigmoid with logit z: [-z, z]; softmax: the logits; other outputs: the output values
    ([1 - p, p] for one sigmoid unit).
    """
    kind, layer = _output_kind(model)
    if kind == "probabilities":
        p = ops.cast(probabilities, "float32")
        return ops.concatenate([1.0 - p, p], axis=-1) if p.shape[-1] == 1 else p
    z = ops.matmul(ops.cast(features, "float32"), ops.cast(layer.kernel, "float32"))
    if layer.bias is not None:
        z = z + ops.cast(layer.bias, "float32")
    return ops.concatenate([-z, z], axis=-1) if z.shape[-1] == 1 else z


def as_float64(x) -> np.ndarray:
    """Backend tensor -> float64 numpy (the heatmap arithmetic runs in float64)."""
    return np.asarray(ops.convert_to_numpy(ops.cast(x, "float32")), dtype=np.float64)


def class_scores(model: keras.Model, images: Any) -> np.ndarray:
    """The scores the gradient methods differentiate, (N, C) float32: [-z, z] for sigmoid, logits for softmax."""
    x = image_batch(model, images)
    grad_model = gradient_model(model, default_layer(model))
    delta = np.zeros((len(x), *grad_model.inputs[1].shape[1:]), dtype=np.float32)
    _, features, probabilities = grad_model([ops.convert_to_tensor(x), ops.convert_to_tensor(delta)])
    return as_float64(scores_from(model, features, probabilities)).astype(np.float32)


def predict(model: keras.Model, image: Any) -> np.ndarray:
    """Class probabilities (C,) float32 of one (H, W, 3) image ([1 - p, p] for a sigmoid output)."""
    return models.probabilities(model, image_batch(model, image)[:1])[0].astype(np.float32)
