"""Models rebuilt from a model's graph, and the image batches they take.

A layer inside the nested base belongs to the base's own graph, so
``keras.Model(model.input, base.get_layer(name).output)`` fails ("graph disconnected"). Here the
model's graph is *replayed* on a new input, layer by layer (``_replay``), descending into nested
models; the replay records the tensors of the requested layers and can change them (Grad-CAM adds a
zero "perturbation" input to the target layer's output and differentiates with respect to it, which
is the gradient with respect to the layer's output on every backend, including JAX, where gradients
of intermediate values cannot be asked for directly). The built models are cached per model.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import cv2
import keras
import numpy as np
from keras import ops

from core.explain.layer_paths import SEP, find_layer
from core.models import output_shape


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


def gradient_model(model: keras.Model, path: str) -> keras.Model:
    """Cached model ([images (N, S, S, 3), delta (N, h, w, c)]) -> [A, F, P].

    A (N, h, w, c) is the output of layer `path` plus delta (feed zeros: d/d delta is d/dA), F the
    input of the output layer (N, features), P the model's output (N, 1) or (N, C).
    """

    def build() -> keras.Model:
        shape = output_shape(find_layer(model, path))
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


def image_batch(model: keras.Model, images: Any) -> np.ndarray:
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
