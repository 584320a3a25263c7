"""Tests for core.models.outputs: the output layer and the loss (label smoothing included)."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from core import models as M  # noqa: E402


def test_loss_applies_label_smoothing_for_two_and_more_classes(tmp_path):
    assert M.loss_for(2) == "binary_crossentropy" and M.loss_for(3) == "sparse_categorical_crossentropy"
    binary = M.loss_for(2, 0.1)
    assert (
        isinstance(binary, keras.losses.BinaryCrossentropy) and binary.get_config()["label_smoothing"] == 0.1
    )
    labels = np.array([0, 2, 1])
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.3, 0.4, 0.3]], "float32")
    smoothed = keras.losses.CategoricalCrossentropy(label_smoothing=0.1)(np.eye(3)[labels], probs)
    assert float(M.loss_for(3, 0.1)(labels, probs)) == pytest.approx(float(smoothed), rel=1e-6)
    plain = keras.losses.SparseCategoricalCrossentropy()(labels, probs)
    assert float(M.loss_for(3, 0.1)(labels, probs)) > float(plain)  # confident right answers cost more
    model = M.build_scratch("small", 32, 3, filters=4, depth=2)
    model.compile(optimizer="adam", loss=M.loss_for(3, 0.1))
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)  # the loss is registered
    assert loaded.loss.label_smoothing == 0.1


def test_softmax_changes_only_the_output_layer():
    two, three = M.build_scratch("seed000", 150, 2), M.build_scratch("seed000", 150, 3)
    rows2, rows3 = M.summary_rows(two), M.summary_rows(three)
    assert [r["name"] for r in rows2] == [r["name"] for r in rows3]
    assert rows2[:-1] == rows3[:-1]
    assert (rows2[-1]["params"], rows3[-1]["params"]) == (513, 3 * 513)
    out2, out3 = two.get_layer("output"), three.get_layer("output")
    assert (out2.units, out3.units) == (1, 3)
    assert out2.activation is keras.activations.sigmoid and out3.activation is keras.activations.softmax
    assert out3.dtype_policy.compute_dtype == "float32"
    assert (M.loss_for(2), M.loss_for(3)) == ("binary_crossentropy", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError):
        M.output_layer(1)
