"""Tests for core.models.scratch: the seeds' nets, the small, compact and ResNet-style nets."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from core import models as M  # noqa: E402
from tests.modelkit import random_images, to_numpy  # noqa: E402


@pytest.mark.parametrize(
    ("name", "size", "expected"),
    [("seed000", 150, 3_453_121), ("seed002", 150, 1_061_313), ("seed003", 180, 1_569_089)],
)
def test_scratch_param_counts(name, size, expected):
    model = M.build_scratch(name, size, 2)
    assert model.count_params() == expected
    assert M.param_counts(model) == (expected, 0)
    assert model.name == name
    assert model.get_layer(M.LAST_CONV) is M.last_conv_layer(model)
    assert M.SCRATCH_NETS[name].default_size == size


def test_compact_net_normalises_every_block_and_explains_after_the_last_activation():
    model = M.build_scratch("compact", 32, 4)
    assert model.count_params() == 242_404
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(norms) == 4 and all(n.momentum == 0.9 for n in norms)
    assert not any(layer.use_bias for layer in model.layers if isinstance(layer, keras.layers.Conv2D))
    assert M.last_conv_layer(model).name == "relu4"  # Grad-CAM on the 4x4 map after BN and ReLU
    assert model.output_shape == (None, 4)
    assert M.SCRATCH_NETS["compact"].default_size == 32


def test_resnet_is_residual_normalised_and_explains_after_the_last_block():
    model = M.build_scratch("resnet", 128, 2)
    assert model.count_params() == 1_229_537
    adds = [layer for layer in model.layers if isinstance(layer, keras.layers.Add)]
    assert [a.name for a in adds] == ["block1_add", "block2_add", "block3_add", "block4_add"]
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(norms) == 1 + 4 * 2 + 3 and all(n.momentum == 0.9 for n in norms)  # stem, blocks, 1x1s
    assert not any(layer.use_bias for layer in model.layers if isinstance(layer, keras.layers.Conv2D))
    target = M.last_conv_layer(model)
    assert target.name == M.LAST_CONV and target.output.shape == (None, 8, 8, 256)  # after the last add
    assert M.SCRATCH_NETS["resnet"].default_size == 128
    small = M.build_scratch("resnet", 32, 3, filters=8, depth=3)
    assert small.get_layer(M.LAST_CONV).output.shape == (None, 4, 4, 32) and small.output_shape == (None, 3)
    with pytest.raises(ValueError, match="at least 16 px"):
        M.build_scratch("resnet", 8, 2)


def test_small_net_options_and_augmentation():
    aug = keras.Sequential([keras.layers.RandomFlip("horizontal")], name="augmentation")
    plain = M.build_scratch("small", 32, 4, filters=8, depth=2)
    model = M.build_scratch("small", 32, 4, augmentation=aug, filters=8, depth=2)
    # conv 3->8, conv 8->16, output 16->4; augmentation adds no parameters
    assert plain.count_params() == model.count_params() == (27 * 8 + 8) + (72 * 16 + 16) + (16 * 4 + 4)
    assert [layer.name for layer in model.layers[:3]] == ["image", "augmentation", "rescaling"]
    probs = to_numpy(model(random_images(2, 32)))
    assert probs.shape == (2, 4) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    with pytest.raises(ValueError, match="widht"):
        M.build_scratch("small", 32, 2, widht=3)
    with pytest.raises(ValueError, match="at least"):
        M.build_scratch("seed003", 64, 2)
    with pytest.raises(ValueError, match="seed999"):
        M.build_scratch("seed999", 64, 2)
