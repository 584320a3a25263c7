"""What a model holds: parameter counts, layer output shapes and one summary row per layer."""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import layers


def _n_params(weights: list) -> int:
    """Total number of scalars in a list of variables."""
    return int(sum(math.prod(int(d) for d in w.shape) for w in weights))


def param_counts(model: keras.Layer) -> tuple[int, int]:
    """(trainable, non-trainable) parameter counts of a model or one layer, as in model.summary()."""
    return _n_params(model.trainable_weights), _n_params(model.non_trainable_weights)


def output_shape(layer: keras.Layer) -> tuple:
    """Output shape of a layer inside a functional model (batch dim None), () if unknown."""
    try:
        out = layer.output
    except (AttributeError, ValueError):  # e.g. a layer shared by several models
        try:
            out = layer._inbound_nodes[-1].outputs[0]
        except (AttributeError, IndexError):
            return ()
    return tuple(out.shape) if hasattr(out, "shape") else ()


def summary_rows(model: keras.Model, nested: bool = False) -> list[dict[str, Any]]:
    """One row per layer: name, type, output_shape, params, trainable_params, depth (1 inside nested models)."""
    rows: list[dict[str, Any]] = []

    def add(layer: keras.Layer, depth: int, prefix: str) -> None:
        trainable, frozen = param_counts(layer)
        rows.append(
            {
                "name": prefix + layer.name,
                "type": type(layer).__name__,
                "output_shape": str(output_shape(layer)),
                "params": trainable + frozen,
                "trainable_params": trainable,
                "depth": depth,
            }
        )
        if nested and isinstance(layer, keras.Model):
            for inner in layer.layers:
                if not isinstance(inner, layers.InputLayer):
                    add(inner, depth + 1, f"{prefix}{layer.name}/")

    for layer in model.layers:
        add(layer, 0, "")
    return rows
