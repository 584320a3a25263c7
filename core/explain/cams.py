"""Class activation maps: Grad-CAM, Grad-CAM++ and Score-CAM, and the gradients they need.

Each takes ``(model, images, layer=None, class_index=None)`` and returns heatmaps (N, h, w) float32
in [0, 1] at the chosen layer's resolution, each divided by its maximum (a map with no positive
evidence stays all zero). ``_gradients`` is the one function with TensorFlow and JAX branches.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cv2
import keras
import numpy as np
from keras import ops

from core import models
from core.explain.graph import activation_model, gradient_model, image_batch
from core.explain.layer_paths import resolve_layer
from core.explain.scores import as_float64, class_indices, num_classes, scores_from


def _gradients(fn: Callable, inputs: np.ndarray):
    """Gradient of sum(fn(x)[0]) with respect to x = `inputs`, and fn's outputs, by backend autodiff.

    fn: x -> (scores (N,), aux); returns (grads like x, scores, aux). The one backend-specific
    function of core.explain.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.convert_to_tensor(inputs)
        # Watch x only: watching every variable the forward pass reads (the default) makes the tape
        # record the whole network and costs 3-4x the forward pass on VGG16.
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(x)
            scores, aux = fn(x)
            total = tf.reduce_sum(scores)
        return tape.gradient(total, x), scores, aux
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        def total(x):
            scores, aux = fn(x)
            return jnp.sum(scores), (scores, aux)

        grads, (scores, aux) = jax.grad(total, has_aux=True)(jnp.asarray(inputs))
        return grads, scores, aux
    raise NotImplementedError(f"Gradients are implemented for TensorFlow and JAX, not {backend!r}.")


def _grads_and_activations(
    model: keras.Model, images: Any, layer: str | keras.Layer | None, class_index: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(A (N, h, w, c), dS/dA (N, h, w, c), S (N,)) in float64 for the chosen classes' scores S."""
    path = resolve_layer(model, layer)
    grad_model = gradient_model(model, path)
    x = image_batch(model, images)
    classes = class_indices(model, class_index, len(x))
    n_classes = num_classes(model)
    delta = np.zeros((len(x), *grad_model.inputs[1].shape[1:]), dtype=np.float32)

    x = ops.convert_to_tensor(x)  # a nested call argument cannot mix numpy arrays and tensors

    def score(d):
        acts, features, probabilities = grad_model([x, d], training=False)
        logits = scores_from(model, features, probabilities)  # (N, C)
        chosen = ops.argmax(logits, axis=-1) if classes is None else ops.convert_to_tensor(classes)
        return ops.sum(logits * ops.one_hot(chosen, n_classes, dtype="float32"), axis=-1), acts

    grads, scores, acts = _gradients(score, delta)
    return as_float64(acts), as_float64(grads), as_float64(scores)


def _normalize_max(cams: np.ndarray) -> np.ndarray:
    """ReLU, then each map divided by its maximum; an all-zero map stays zero. float32."""
    cams = np.maximum(cams, 0.0)
    peak = cams.reshape(len(cams), -1).max(axis=1)
    scale = np.where(peak > 0, peak, 1.0)
    return (cams / scale[:, None, None]).astype(np.float32)


def gradcam(
    model: keras.Model, images: Any, layer: str | keras.Layer | None = None, class_index: Any = None
) -> np.ndarray:
    """Grad-CAM (Selvaraju et al. 2017, https://arxiv.org/abs/1610.02391), as in keras-io's grad_cam.py.

    images (N, H, W, 3) -> heatmaps (N, h, w) in [0, 1] at the layer's resolution. With A (N, h, w, c)
    the layer's output and S the class score (logit), the channel weights are the spatial mean of
    dS/dA, (N, c); the map is ReLU(sum_c weight_c * A_c) divided by its maximum.
    """
    acts, grads, _ = _grads_and_activations(model, images, layer, class_index)
    weights = grads.mean(axis=(1, 2))  # (N, c)
    return _normalize_max(np.einsum("nhwc,nc->nhw", acts, weights))


def gradcam_plus_plus(
    model: keras.Model, images: Any, layer: str | keras.Layer | None = None, class_index: Any = None
) -> np.ndarray:
    """Grad-CAM++ (Chattopadhay et al. 2018, https://arxiv.org/abs/1710.11063): (N, H, W, 3) -> (N, h, w).

    The closed form for an exponential of the score, as in tf-keras-vis: with g = dS/dA and
    e = exp(S), the higher derivatives are e*g**2 and e*g**3, the pixel weights
    alpha = e*g**2 / (2*e*g**2 + e*g**3 * sum_hw(A)) (0 where the numerator is 0), normalised to sum
    to 1 over each channel's pixels; channel weights sum_hw(alpha * ReLU(e*g)); map ReLU(sum_c w_c A_c)
    divided by its maximum. The arithmetic runs in float64 with S clipped to +-50 (e is only a
    positive per-image factor, which the final normalisation removes).
    """
    acts, grads, scores = _grads_and_activations(model, images, layer, class_index)
    e = np.exp(np.clip(scores, -50.0, 50.0))[:, None, None, None]
    first = e * grads
    second = first * grads
    third = second * grads
    global_sum = acts.sum(axis=(1, 2), keepdims=True)
    denom = 2.0 * second + third * global_sum
    denom = np.where(denom != 0.0, denom, 1.0)
    alphas = np.where(second != 0.0, second / denom, 0.0)
    norm = alphas.sum(axis=(1, 2), keepdims=True)
    alphas = alphas / np.where(norm != 0.0, norm, 1.0)
    weights = (np.maximum(first, 0.0) * alphas).sum(axis=(1, 2))  # (N, c)
    return _normalize_max(np.einsum("nhwc,nc->nhw", acts, weights))


def scorecam(
    model: keras.Model,
    images: Any,
    layer: str | keras.Layer | None = None,
    class_index: Any = None,
    max_channels: int = 64,
    batch_size: int = 16,
) -> np.ndarray:
    """Score-CAM (Wang et al. 2020, https://arxiv.org/abs/1910.01279), gradient-free: (N, H, W, 3) -> (N, h, w).

    For each image: the `max_channels` channels of A (N, h, w, c) with the largest spatial variance
    ("Faster Score-CAM", as tf-keras-vis; all channels when c <= max_channels) are upsampled to the
    input size and min-max normalised to [0, 1] masks M_k; the channel weight is the class
    probability of the masked image X * M_k (softmax or sigmoid output; the raw score, as the
    authors' code, not a softmax over channels); the map is ReLU(sum_k w_k A_k) at the layer's
    resolution, divided by its maximum. The masked images go through the model in batches of
    `batch_size`: N * max_channels forward passes.
    """
    path = resolve_layer(model, layer)
    x = image_batch(model, images)
    classes = class_indices(model, class_index, len(x))
    forward = activation_model(model, [path])
    acts, probabilities = [], []
    for i in range(0, len(x), batch_size):
        a, p = forward(x[i : i + batch_size], training=False)
        acts.append(as_float64(a))
        probabilities.append(as_float64(p))
    acts = np.concatenate(acts)  # (N, h, w, c)
    if classes is None:
        p = np.concatenate(probabilities)
        classes = (p[:, 0] > 0.5).astype(np.int64) if p.shape[-1] == 1 else p.argmax(axis=-1)
    height, width = x.shape[1:3]
    cams = np.zeros(acts.shape[:3])
    for n in range(len(x)):
        a = acts[n]
        keep = np.argsort(-a.reshape(-1, a.shape[-1]).var(axis=0), kind="stable")[:max_channels]
        masks = np.stack(
            [
                cv2.resize(a[..., k].astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
                for k in keep
            ]
        )  # (K, H, W)
        low = masks.min(axis=(1, 2), keepdims=True)
        span = masks.max(axis=(1, 2), keepdims=True) - low
        masks = np.where(span > 0, (masks - low) / np.where(span > 0, span, 1.0), 0.0).astype(np.float32)
        masked = x[n][None] * masks[..., None]  # (K, H, W, 3)
        weights = models.probabilities(model, masked, batch_size)[:, classes[n]]  # (K,)
        cams[n] = np.tensordot(a[..., keep], weights, axes=([-1], [0]))
    return _normalize_max(cams)


METHODS: dict[str, Callable[..., np.ndarray]] = {
    "Grad-CAM": gradcam,
    "Grad-CAM++": gradcam_plus_plus,
    "Score-CAM": scorecam,
}
