"""Tests for core.models.prediction: batched class probabilities, a sigmoid output made two-class."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from core import models as M  # noqa: E402
from tests.modelkit import random_images, to_numpy  # noqa: E402


def test_probabilities_in_batches_with_two_columns_for_a_sigmoid_output():
    keras.utils.set_random_seed(0)
    model = M.build_scratch("small", 32, 2, filters=4, depth=2)
    x = random_images(5, 32).astype(np.uint8)
    done = []
    probs = M.probabilities(model, x, batch_size=2, progress=lambda d, t: done.append((d, t)))
    p = to_numpy(model(x.astype("float32"))).astype(np.float64)
    assert probs.shape == (5, 2) and probs.dtype == np.float64
    np.testing.assert_allclose(probs, np.concatenate([1 - p, p], axis=1), rtol=1e-6)
    assert done == [(2, 5), (4, 5), (5, 5)]
    assert M.probabilities(model, x[:0]).shape == (0, 2)

    three = M.build_scratch("small", 32, 3, filters=4, depth=2)
    np.testing.assert_allclose(M.probabilities(three, x).sum(axis=1), 1.0, rtol=1e-5)
