"""Layer paths: naming any layer of a model, inside nested models too ("base/block5_conv3").

A layer of the model is named by its name ("last_conv"); a layer inside a nested model (the
pretrained base of a transfer model is ONE layer named "base") by the names joined with "/", the
same names as ``core.models.summary_rows(model, nested=True)``.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers

from core.models import last_conv_layer, output_shape, param_counts

SEP = "/"  # path separator: "base/block5_conv3"

_CONV_TYPES = (layers.Conv2D, layers.DepthwiseConv2D, layers.SeparableConv2D, layers.Conv2DTranspose)
_POOL_TYPES = (layers.MaxPooling2D, layers.AveragePooling2D)


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


def resolve_layer(model: keras.Model, layer: str | keras.Layer | None) -> str:
    """Normalise an explainer's `layer` argument (None, a path or a layer object) to a checked path."""
    if layer is None:
        return default_layer(model)
    if isinstance(layer, str):
        find_layer(model, layer)
        return layer
    return _path_of(model, layer)


def conv_layers(model: keras.Model) -> list[str]:
    """Paths of the layers worth showing: convolutions and 2-D poolings, nested base included.

    Graph order, e.g. ["conv1", "pool1", "conv2", "pool2", "last_conv"] for the "small" net, or
    ["base/block1_conv1", ..., "base/block5_pool"] for VGG16. The default Grad-CAM target is always
    listed (in a base it may be an activation layer such as "base/out_relu").
    """
    target = default_layer(model)
    paths = []
    for path, layer in _walk(model):
        spatial = len(output_shape(layer)) == 4
        if path == target or (spatial and isinstance(layer, _CONV_TYPES + _POOL_TYPES)):
            paths.append(path)
    return paths


def layer_info(model: keras.Model, path: str) -> dict[str, Any]:
    """{"path", "name", "type", "output_shape" (h, w, c) without the batch, "params", "trainable_params"}."""
    layer = find_layer(model, path)
    shape = output_shape(layer)
    trainable, frozen = param_counts(layer)
    return {
        "path": path,
        "name": layer.name,
        "type": type(layer).__name__,
        "output_shape": tuple(shape[1:]),
        "params": trainable + frozen,
        "trainable_params": trainable,
    }
