"""Tests for core.models.preprocess: the Preprocess layer matches keras.applications."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from core import models as M  # noqa: E402
from core.models import BASES  # noqa: E402
from tests.modelkit import to_numpy  # noqa: E402


@pytest.mark.parametrize(
    ("mode", "module"),
    [
        ("caffe", "vgg16"),
        ("caffe", "resnet50"),
        ("tf", "mobilenet_v2"),
        ("tf", "xception"),
        ("torch", "densenet"),
    ],
)
def test_preprocess_matches_keras(mode, module):
    x = np.random.default_rng(3).uniform(0, 255, (2, 5, 7, 3)).astype("float32")
    expected = getattr(keras.applications, module).preprocess_input(x.copy())
    got = to_numpy(M.Preprocess(mode)(x))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)


def test_preprocess_modes_of_bases_and_config():
    x = np.random.default_rng(4).uniform(0, 255, (1, 4, 4, 3)).astype("float32")
    for spec in BASES.values():
        module = {"VGG16": "vgg16", "ResNet50": "resnet50", "Xception": "xception", "MobileNet": "mobilenet"}
        module |= {"MobileNetV2": "mobilenet_v2", "EfficientNetB0": "efficientnet", "DenseNet121": "densenet"}
        expected = getattr(keras.applications, module[spec.label]).preprocess_input(x.copy())
        np.testing.assert_allclose(to_numpy(M.Preprocess(spec.preprocess)(x)), expected, rtol=1e-5, atol=1e-4)
    layer = M.Preprocess("torch", name="preprocess")
    clone = M.Preprocess.from_config(layer.get_config())
    assert (clone.mode, clone.name) == ("torch", "preprocess")
    with pytest.raises(ValueError, match="caffe"):
        M.Preprocess("bgr")
