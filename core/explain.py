"""What does the network look at? Layer activations and class activation maps (CAMs).

Every explainer has the call shape ``(model, images, layer=None, class_index=None)``:

* ``model``: any model of this project (``core.models``): float RGB in [0, 255] of shape (N, S, S, 3)
  -> (N, 1) sigmoid or (N, C) softmax; built here, loaded from a ``.keras`` file, float32 or mixed
  precision.
* ``images``: (N, H, W, 3) or one (H, W, 3) image, uint8 or float in [0, 255]; resized to the
  model's input size when they differ.
* ``layer``: a layer *path* (below); None = the last convolutional feature map
  (``core.models.last_conv_layer``: "last_conv" in scratch nets, e.g. "base/block5_conv3" in a
  VGG16 transfer model).
* ``class_index``: None (the predicted class of each image), one int for all images, or one int per
  image.

They return heatmaps of shape (N, h, w), float32 in [0, 1], at the *resolution of the chosen layer*
(e.g. (N, 14, 14) for block5_conv3 at 224 px). All three methods return that same size, so maps are
comparable and cheap to store; ``upsample`` / ``overlay`` bring a map to the image size. Each map is
divided by its maximum; a map with no positive evidence stays all zero.

Layer paths: a layer of the model is named by its name ("last_conv"); a layer inside a nested model
(the pretrained base of a transfer model is ONE layer named "base") by the names joined with "/"
("base/block5_conv3"), the same names as ``core.models.summary_rows(model, nested=True)``.

How the graph is built. A layer inside the nested base belongs to the base's own graph, so
``keras.Model(model.input, base.get_layer(name).output)`` fails ("graph disconnected"). Here the
model's graph is *replayed* on a new input, layer by layer (``_replay``), descending into nested
models; the replay records the tensors of the requested layers and can change them (Grad-CAM adds a
zero "perturbation" input to the target layer's output and differentiates with respect to it, which
is the gradient with respect to the layer's output on every backend, including JAX, where gradients
of intermediate values cannot be asked for directly). The built models are cached per model.

Class score: Grad-CAM and Grad-CAM++ differentiate the pre-activation score (logit) of the class,
not its probability: for a sigmoid output with logit z, class 1's score is z and class 0's is -z
(p(0) = sigmoid(-z)); for softmax, the logit z_k. Logits are the output Dense layer's kernel and bias
applied to its input, computed in float32.

Only portable Keras 3 (``keras``, ``keras.ops``) except ``_gradients``, the one function with
TensorFlow and JAX branches.
"""

from __future__ import annotations

import math
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import cv2
import keras
import numpy as np
from keras import layers, ops

from core.images import tile
from core.models import last_conv_layer

__all__ = [
    "METHODS",
    "activation_model",
    "activations",
    "channel_grid",
    "channel_pages",
    "class_scores",
    "conv_layers",
    "default_layer",
    "find_layer",
    "gradcam",
    "gradcam_plus_plus",
    "heat_image",
    "layer_info",
    "normalize_channel",
    "overlay",
    "predict",
    "scorecam",
    "upsample",
]

SEP = "/"  # path separator: "base/block5_conv3"

_CONV_TYPES = (layers.Conv2D, layers.DepthwiseConv2D, layers.SeparableConv2D, layers.Conv2DTranspose)
_POOL_TYPES = (layers.MaxPooling2D, layers.AveragePooling2D)


# --------------------------------------------------------------------------------------------------
# Layer paths


def _nested(layer: keras.Layer) -> bool:
    """True for a nested model whose layers can be addressed with a path (functional or Sequential)."""
    return isinstance(layer, keras.Model) and bool(getattr(layer, "layers", None))


def find_layer(model: keras.Model, path: str) -> keras.Layer:
    """The layer at `path` ("last_conv", "base/block5_conv3"); ValueError naming the valid choices."""
    current: keras.Layer = model
    parts = path.split(SEP)
    for i, name in enumerate(parts):
        if not _nested(current):
            raise ValueError(
                f"{SEP.join(parts[:i])!r} is not a nested model, so {path!r} is not a layer path."
            )
        try:
            current = current.get_layer(name)
        except ValueError:
            where = SEP.join(parts[:i]) or model.name
            choices = ", ".join(layer.name for layer in current.layers[-8:])
            raise ValueError(
                f"No layer {name!r} in {where!r} (layer path {path!r}). Its last layers: {choices}."
            ) from None
    return current


def _walk(model: keras.Model, prefix: str = ""):
    """(path, layer) for every layer, nested models' layers right after the nested model's own path."""
    for layer in model.layers:
        if isinstance(layer, layers.InputLayer):
            continue
        yield prefix + layer.name, layer
        if _nested(layer):
            yield from _walk(layer, f"{prefix}{layer.name}{SEP}")


def _path_of(model: keras.Model, layer: keras.Layer) -> str:
    """The path of a layer object inside `model`."""
    for path, candidate in _walk(model):
        if candidate is layer:
            return path
    raise ValueError(f"Layer {layer.name!r} is not part of model {model.name!r}.")


def default_layer(model: keras.Model) -> str:
    """Path of the Grad-CAM target: the last spatial feature map, looking inside the base."""
    return _path_of(model, last_conv_layer(model))


def _layer_path(model: keras.Model, layer: str | keras.Layer | None) -> str:
    """Normalise an explainer's `layer` argument (None, a path or a layer object) to a checked path."""
    if layer is None:
        return default_layer(model)
    if isinstance(layer, str):
        find_layer(model, layer)
        return layer
    return _path_of(model, layer)


def _output_shape(layer: keras.Layer) -> tuple:
    """Output shape of a layer in its own graph, batch dimension included (None)."""
    try:
        return tuple(layer.output.shape)
    except (AttributeError, ValueError):
        return ()


def conv_layers(model: keras.Model) -> list[str]:
    """Paths of the layers worth showing: convolutions and 2-D poolings, nested base included.

    Graph order, e.g. ["conv1", "pool1", "conv2", "pool2", "last_conv"] for the "small" net, or
    ["base/block1_conv1", ..., "base/block5_pool"] for VGG16. The default Grad-CAM target is always
    listed (in a base it may be an activation layer such as "base/out_relu").
    """
    target = default_layer(model)
    paths = []
    for path, layer in _walk(model):
        spatial = len(_output_shape(layer)) == 4
        if path == target or (spatial and isinstance(layer, _CONV_TYPES + _POOL_TYPES)):
            paths.append(path)
    return paths


def layer_info(model: keras.Model, path: str) -> dict[str, Any]:
    """{"path", "name", "type", "output_shape" (h, w, c) without the batch, "params", "trainable_params"}."""
    layer = find_layer(model, path)
    shape = _output_shape(layer)

    def count(weights) -> int:
        return int(sum(math.prod(int(d) for d in w.shape) for w in weights))

    return {
        "path": path,
        "name": layer.name,
        "type": type(layer).__name__,
        "output_shape": tuple(shape[1:]),
        "params": count(layer.weights),
        "trainable_params": count(layer.trainable_weights),
    }


# --------------------------------------------------------------------------------------------------
# Rebuilding the graph


def _replay(
    model: keras.Model,
    inputs: Any,
    taps: dict[str, Callable[[Any], Any] | None],
    record: dict[str, Any],
    input_of: str | None = None,
    prefix: str = "",
) -> Any:
    """Run `model`'s graph on symbolic `inputs` layer by layer; returns the model's output.

    Nested models named in `taps` are replayed too (not called as one layer), so their inner layers
    join the new graph. For each tapped path, record[path] is the layer's output after the tap
    function (None = unchanged) was applied to it; record[":input"] is the input of the top-level
    layer `input_of`. Layers are shared with `model` (no copies of weights).
    """
    graph = getattr(model, "_functional", None) or model  # a Sequential keeps its graph there
    here: dict[str, Callable | None] = {}
    below: dict[str, dict[str, Callable | None]] = {}
    for path, tap in taps.items():
        head, sep, rest = path.partition(SEP)
        if sep:
            below.setdefault(head, {})[rest] = tap
        else:
            here[head] = tap

    def operation_fn(op):
        name = getattr(op, "name", None)
        if name not in here and name not in below and name != input_of:
            return op

        def call(*args, **kwargs):
            if name == input_of:
                record[":input"] = args[0]
            if name in below:
                sub_inputs = args[0] if len(args) == 1 else list(args)
                out = _replay(op, sub_inputs, below[name], record, prefix=f"{prefix}{name}{SEP}")
            else:
                out = op(*args, **kwargs)
            if name in here:
                if here[name] is not None:
                    out = here[name](out)
                record[prefix + name] = out
            return out

        return call

    return graph._run_through_graph(inputs, operation_fn=operation_fn)


def _model_input(model: keras.Model) -> keras.KerasTensor:
    """A fresh keras.Input like the model's (N, S, S, 3) image input."""
    ref = model.inputs[0]
    return keras.Input(shape=tuple(ref.shape[1:]), dtype=ref.dtype, name="image")


_BUILT: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> {key: built model}
_LOCK = threading.Lock()
_MAX_PER_MODEL = 8


def _cached(model: keras.Model, key: tuple, build: Callable[[], Any]) -> Any:
    """build() once per (model, key); a few entries per model, the oldest dropped first."""
    with _LOCK:
        per_model = _BUILT.setdefault(model, {})
        if key not in per_model:
            while len(per_model) >= _MAX_PER_MODEL:
                per_model.pop(next(iter(per_model)))
            per_model[key] = build()
        return per_model[key]


def activation_model(model: keras.Model, paths: Sequence[str]) -> keras.Model:
    """Cached multi-output model: (N, S, S, 3) -> [output of each path ..., the model's output].

    One forward pass gives every requested layer, nested-base layers included.
    """
    paths = tuple(dict.fromkeys(paths))
    for path in paths:
        find_layer(model, path)

    def build() -> keras.Model:
        image = _model_input(model)
        record: dict[str, Any] = {}
        out = _replay(model, image, dict.fromkeys(paths), record)
        return keras.Model(image, [record[p] for p in paths] + [out], name=f"{model.name}_activations")

    return _cached(model, ("activations", paths), build)


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


def _gradient_model(model: keras.Model, path: str) -> keras.Model:
    """Cached model ([images (N, S, S, 3), delta (N, h, w, c)]) -> [A, F, P].

    A (N, h, w, c) is the output of layer `path` plus delta (feed zeros: d/d delta is d/dA), F the
    input of the output layer (N, features), P the model's output (N, 1) or (N, C).
    """

    def build() -> keras.Model:
        shape = _output_shape(find_layer(model, path))
        if len(shape) != 4:
            raise ValueError(f"Layer {path!r} has output shape {shape}, not a (N, h, w, c) feature map.")
        image = _model_input(model)
        delta = keras.Input(shape=tuple(shape[1:]), dtype="float32", name="delta")
        record: dict[str, Any] = {}

        def add_delta(out):
            return ops.add(out, ops.cast(delta, out.dtype))

        output_layer = model.outputs[0]._keras_history.operation
        out = _replay(model, image, {path: add_delta}, record, input_of=output_layer.name)
        return keras.Model(
            [image, delta], [record[path], record[":input"], out], name=f"{model.name}_gradcam"
        )

    return _cached(model, ("gradients", path), build)


# --------------------------------------------------------------------------------------------------
# Inputs, scores and gradients


def _batch(model: keras.Model, images: Any) -> np.ndarray:
    """Images as a float32 (N, S, S, 3) batch at the model's input size."""
    x = np.asarray(images)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"Expected images of shape (N, H, W, 3) or (H, W, 3), got {x.shape}.")
    x = x.astype(np.float32, copy=False)
    size = tuple(model.inputs[0].shape[1:3])
    if None not in size and x.shape[1:3] != size:
        # Like core.images.resize (stretch): INTER_AREA when shrinking, bilinear when enlarging.
        shrink = size[0] * size[1] < x.shape[1] * x.shape[2]
        method = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
        x = np.stack([cv2.resize(img, (size[1], size[0]), interpolation=method) for img in x])
    return x


def _num_classes(model: keras.Model) -> int:
    """2 for a (N, 1) sigmoid output, else the number of outputs."""
    units = int(model.outputs[0].shape[-1])
    return 2 if units == 1 else units


def _classes(model: keras.Model, class_index: Any, n: int) -> np.ndarray | None:
    """class_index as an int array (n,), or None for "the predicted class"; checks the range."""
    if class_index is None:
        return None
    classes = np.broadcast_to(np.asarray(class_index, dtype=np.int64), (n,)).copy()
    c = _num_classes(model)
    if classes.min() < 0 or classes.max() >= c:
        raise ValueError(f"class_index must be in 0..{c - 1}, got {class_index!r}.")
    return classes


def _scores_from(model: keras.Model, features, probabilities):
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


def _gradients(fn: Callable, inputs: np.ndarray):
    """Gradient of sum(fn(x)[0]) with respect to x = `inputs`, and fn's outputs, by backend autodiff.

    fn: x -> (scores (N,), aux); returns (grads like x, scores, aux). The one backend-specific
    function of this module.
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


def _np(x) -> np.ndarray:
    """Backend tensor -> float64 numpy (the heatmap arithmetic runs in float64)."""
    return np.asarray(ops.convert_to_numpy(ops.cast(x, "float32")), dtype=np.float64)


def _grads_and_activations(
    model: keras.Model, images: Any, layer: str | keras.Layer | None, class_index: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(A (N, h, w, c), dS/dA (N, h, w, c), S (N,)) in float64 for the chosen classes' scores S."""
    path = _layer_path(model, layer)
    grad_model = _gradient_model(model, path)
    x = _batch(model, images)
    classes = _classes(model, class_index, len(x))
    n_classes = _num_classes(model)
    delta = np.zeros((len(x), *grad_model.inputs[1].shape[1:]), dtype=np.float32)

    x = ops.convert_to_tensor(x)  # a nested call argument cannot mix numpy arrays and tensors

    def score(d):
        acts, features, probabilities = grad_model([x, d], training=False)
        logits = _scores_from(model, features, probabilities)  # (N, C)
        chosen = ops.argmax(logits, axis=-1) if classes is None else ops.convert_to_tensor(classes)
        return ops.sum(logits * ops.one_hot(chosen, n_classes, dtype="float32"), axis=-1), acts

    grads, scores, acts = _gradients(score, delta)
    return _np(acts), _np(grads), _np(scores)


def _normalize_max(cams: np.ndarray) -> np.ndarray:
    """ReLU, then each map divided by its maximum; an all-zero map stays zero. float32."""
    cams = np.maximum(cams, 0.0)
    peak = cams.reshape(len(cams), -1).max(axis=1)
    scale = np.where(peak > 0, peak, 1.0)
    return (cams / scale[:, None, None]).astype(np.float32)


def class_scores(model: keras.Model, images: Any) -> np.ndarray:
    """The scores the gradient methods differentiate, (N, C) float32: [-z, z] for sigmoid, logits for softmax."""
    x = _batch(model, images)
    grad_model = _gradient_model(model, default_layer(model))
    delta = np.zeros((len(x), *grad_model.inputs[1].shape[1:]), dtype=np.float32)
    _, features, probabilities = grad_model([ops.convert_to_tensor(x), ops.convert_to_tensor(delta)])
    return _np(_scores_from(model, features, probabilities)).astype(np.float32)


def _probabilities(model: keras.Model, x: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """Class probabilities (N, C) float64, [1 - p, p] for a sigmoid output, in batches."""
    out = []
    for i in range(0, len(x), batch_size):
        out.append(_np(model(x[i : i + batch_size], training=False)))
    p = np.concatenate(out) if out else np.zeros((0, _num_classes(model)))
    return np.concatenate([1.0 - p, p], axis=-1) if p.shape[-1] == 1 else p


def predict(model: keras.Model, image: Any) -> np.ndarray:
    """Class probabilities (C,) float32 of one (H, W, 3) image ([1 - p, p] for a sigmoid output)."""
    return _probabilities(model, _batch(model, image)[:1])[0].astype(np.float32)


# --------------------------------------------------------------------------------------------------
# Class activation maps


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
    path = _layer_path(model, layer)
    x = _batch(model, images)
    classes = _classes(model, class_index, len(x))
    forward = activation_model(model, [path])
    acts, probabilities = [], []
    for i in range(0, len(x), batch_size):
        a, p = forward(x[i : i + batch_size], training=False)
        acts.append(_np(a))
        probabilities.append(_np(p))
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
        weights = _probabilities(model, masked, batch_size)[:, classes[n]]  # (K,)
        cams[n] = np.tensordot(a[..., keep], weights, axes=([-1], [0]))
    return _normalize_max(cams)


METHODS: dict[str, Callable[..., np.ndarray]] = {
    "Grad-CAM": gradcam,
    "Grad-CAM++": gradcam_plus_plus,
    "Score-CAM": scorecam,
}


# --------------------------------------------------------------------------------------------------
# Activations and channel grids


def activations(model: keras.Model, image: Any, layers: Sequence[str]) -> dict[str, np.ndarray]:
    """Outputs of the layers at `layers` (paths) for one (H, W, 3) image: {path: (h, w, c) float32}.

    One forward pass of a cached multi-output model (``activation_model``).
    """
    paths = tuple(dict.fromkeys(layers))
    outputs = activation_model(model, paths)(_batch(model, image)[:1], training=False)
    return {p: np.asarray(ops.convert_to_numpy(ops.cast(o, "float32")))[0] for p, o in zip(paths, outputs)}


def normalize_channel(a: np.ndarray) -> np.ndarray:
    """One channel (h, w) -> uint8 (h, w) with the seeds' display formula (Deep Learning with Python).

    x -= mean; x /= std; x *= 64; x += 128; clip to 0..255; uint8, in float32 like the seed. The std is
    at least 1e-5: identical to the seed for any real channel, while a constant channel (std 0, NaN
    in the seed) becomes mid-grey 128.
    """
    x = np.array(a, dtype=np.float32)
    x -= x.mean()
    x /= max(float(x.std()), 1e-5)
    x *= 64
    x += 128
    return np.clip(x, 0, 255).astype(np.uint8)


def channel_pages(channels: int, per_page: int | None = None) -> int:
    """Number of pages of `per_page` channels (1 when per_page is None)."""
    if per_page is None or per_page <= 0:
        return 1
    return max(1, math.ceil(channels / per_page))


def _colormap(name: str) -> np.ndarray:
    """A matplotlib colormap as a (256, 3) uint8 lookup table."""
    import matplotlib

    try:
        cmap = matplotlib.colormaps[name]
    except KeyError:
        raise ValueError(f"Unknown colormap {name!r} (try viridis, magma, gray).") from None
    return (cmap(np.linspace(0, 1, 256))[:, :3] * 255 + 0.5).astype(np.uint8)


def channel_grid(
    act: np.ndarray,
    per_row: int = 16,
    page: int = 0,
    per_page: int | None = None,
    cmap: str = "viridis",
    gap: int = 1,
) -> np.ndarray:
    """Activations (h, w, c) -> one image (H', W', 3) uint8: each channel normalised, coloured, tiled.

    Channels are normalised with ``normalize_channel``, coloured with the matplotlib colormap `cmap`,
    and laid out `per_row` per row with a `gap`-pixel white line between them. Wide layers can be shown
    in pages of `per_page` channels (see ``channel_pages``); `page` counts from 0.
    """
    act = np.asarray(act)
    if act.ndim != 3:
        raise ValueError(f"Expected activations of shape (h, w, c), got {act.shape}.")
    h, w, c = act.shape
    pages = channel_pages(c, per_page)
    if not 0 <= page < pages:
        raise ValueError(f"page must be in 0..{pages - 1}, got {page}.")
    start = page * per_page if per_page else 0
    stop = min(c, start + per_page) if per_page else c
    chosen = range(start, stop)
    cols = min(per_row, per_page or c)  # every page as wide as a full one
    rows = math.ceil(len(chosen) / cols)
    lut = _colormap(cmap)
    cells = np.full((rows * cols, h, w, 3), 255, dtype=np.uint8)
    for i, k in enumerate(chosen):
        cells[i] = lut[normalize_channel(act[..., k])]
    return tile(cells.reshape(rows, cols, h, w, 3), pad=gap, background=255)


# --------------------------------------------------------------------------------------------------
# Heatmap display


def upsample(heatmap: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Heatmap (h, w) -> (H, W) float32 with bilinear interpolation (cv2.resize); size = (H, W)."""
    height, width = size
    return cv2.resize(np.asarray(heatmap, dtype=np.float32), (width, height), interpolation=cv2.INTER_LINEAR)


def heat_image(
    heatmap: np.ndarray, size: tuple[int, int] | None = None, colormap: int = cv2.COLORMAP_JET
) -> np.ndarray:
    """The coloured map alone: heatmap (h, w) in [0, 1] -> RGB uint8 (h, w, 3), or (H, W, 3) for `size`."""
    heat = upsample(heatmap, size) if size is not None else np.asarray(heatmap, dtype=np.float32)
    coloured = cv2.applyColorMap(np.uint8(255 * np.clip(heat, 0.0, 1.0)), colormap)  # BGR
    return cv2.cvtColor(coloured, cv2.COLOR_BGR2RGB)


def overlay(
    image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.4, colormap: int = cv2.COLORMAP_JET
) -> np.ndarray:
    """Image (H, W, 3) uint8 RGB + heatmap (h, w) in [0, 1] -> (H, W, 3) uint8, the seeds' way.

    The seed (Deep Learning with Python): heatmap resized to the image, np.uint8(255 * heatmap),
    cv2.applyColorMap(JET) (BGR; converted to RGB here), superimposed = heat * 0.4 + image, saved with
    saturation. Here: round(heat * alpha + image) clipped to 0..255 (bright parts saturate, as there).
    """
    image = np.asarray(image)
    heat = heat_image(heatmap, size=image.shape[:2], colormap=colormap).astype(np.float32)
    return np.clip(np.rint(heat * alpha + image.astype(np.float32)), 0, 255).astype(np.uint8)
