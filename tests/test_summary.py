"""Tests for core.models.summary: parameter counts of models and layers, output shapes."""

from __future__ import annotations

import pytest

keras = pytest.importorskip("keras")

from core import models as M  # noqa: E402


def test_param_counts_and_output_shapes_of_layers():
    model = M.build_scratch("small", 32, 2, filters=4, depth=2)
    conv = model.get_layer("conv1")
    assert M.param_counts(conv) == (3 * 3 * 3 * 4 + 4, 0)
    conv.trainable = False
    assert M.param_counts(conv) == (0, 3 * 3 * 3 * 4 + 4)
    assert M.output_shape(conv) == (None, 32, 32, 4)
    assert M.output_shape(keras.layers.Dense(3)) == ()  # never called: no shape
    row = next(r for r in M.summary_rows(model) if r["name"] == "conv1")
    assert (row["params"], row["trainable_params"], row["output_shape"]) == (112, 0, "(None, 32, 32, 4)")
