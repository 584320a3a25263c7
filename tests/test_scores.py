"""Tests for core.explain.scores: the class scores are logits; predict gives probabilities."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from core import explain as E  # noqa: E402
from tests.modelkit import shape_images, small_net  # noqa: E402


def test_class_scores_are_logits():
    keras.utils.set_random_seed(0)
    model = small_net(2)
    out = model.get_layer("output")
    out.set_weights([np.linspace(-1, 1, 64, dtype=np.float32)[:, None], np.array([0.3], np.float32)])
    x = shape_images(3, 32)
    features = np.asarray(keras.Model(model.input, model.get_layer("dropout").output)(x.astype("float32")))
    z = features @ np.linspace(-1, 1, 64) + 0.3
    scores = E.class_scores(model, x)
    np.testing.assert_allclose(scores[:, 1], z, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(scores[:, 0], -z, rtol=1e-5, atol=1e-5)  # -z, not 1 - p
    p = 1 / (1 + np.exp(-z))
    np.testing.assert_allclose(E.predict(model, x[0]), [1 - p[0], p[0]], rtol=1e-5)

    three = small_net(3)
    logits = E.class_scores(three, x)
    probs = np.asarray(three(x.astype("float32")))
    softmax = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    np.testing.assert_allclose(softmax, probs, rtol=1e-4, atol=1e-6)
