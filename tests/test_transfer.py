"""Tests for core.models.transfer: frozen transfer models, heads on cached features, fine-tuning."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from core import models as M  # noqa: E402
from core.models import BASES  # noqa: E402
from tests.conftest import MOBILENET_025, needs_mobilenet  # noqa: E402
from tests.modelkit import random_images, to_numpy  # noqa: E402


@needs_mobilenet
def test_transfer_model_frozen_runs_and_reloads_safely(tmp_path):
    aug = keras.Sequential([keras.layers.RandomFlip("horizontal")], name="augmentation")
    model = M.build_transfer("mobilenet_0.25", 64, 2, weights=MOBILENET_025, augmentation=aug, units=16)
    names = [layer.name for layer in model.layers]
    assert names == ["image", "augmentation", "preprocess", "base", "flatten", "dense", "dropout", "output"]
    base = M.base_of(model)
    assert not base.trainable and not base.trainable_weights
    head_params = (2 * 2 * 256 * 16 + 16) + (16 + 1)
    trainable, frozen = M.param_counts(model)
    assert trainable == head_params and frozen == base.count_params()
    assert sum(r["params"] for r in M.summary_rows(model)) == model.count_params()
    nested = M.summary_rows(model, nested=True)
    assert any(r["name"] == "base/conv_pw_13_relu" and r["depth"] == 1 for r in nested)

    x = random_images(3, 64)
    before = model.predict(x, verbose=0)
    assert before.shape == (3, 1) and np.all((before >= 0) & (before <= 1))
    path = tmp_path / "transfer.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), before, rtol=1e-5, atol=1e-6)
    assert isinstance(loaded.get_layer("preprocess"), M.Preprocess)
    assert not M.base_of(loaded).trainable


@needs_mobilenet
def test_head_trained_on_cached_features_is_reused():
    base = M.build_base("mobilenet_0.25", 64, weights=MOBILENET_025)
    head = M.build_head(tuple(base.output.shape[1:]), 3, pooling="avg", units=0, dropout=0.25)
    assert [layer.name for layer in head.layers] == ["features", "avg_pool", "dropout", "output"]
    model = M.build_transfer("mobilenet_0.25", 64, 3, weights=None, base=base, head=head)
    x = random_images(2, 64, seed=5)
    features = base.predict(to_numpy(M.Preprocess("tf")(x)), verbose=0)
    np.testing.assert_allclose(model.predict(x, verbose=0), head.predict(features, verbose=0), atol=1e-5)
    rows = M.summary_rows(model)
    assert [r["name"] for r in rows][-3:] == ["avg_pool", "dropout", "output"]
    assert rows[-1]["output_shape"] == "(None, 3)" and rows[-1]["trainable_params"] == 256 * 3 + 3
    with pytest.raises(ValueError, match="outputs"):
        M.build_transfer("mobilenet_0.25", 64, 2, weights=None, base=base, head=head)
    with pytest.raises(ValueError, match="96"):
        M.build_transfer("mobilenet_0.25", 96, 3, weights=None, base=base)


def test_every_head_is_a_new_model():
    first, second = (M.build_head([2, 2, 8], 2, units=4) for _ in range(2))
    assert first is not second and not set(map(id, first.layers)) & set(map(id, second.layers))


def test_unfreeze_vgg16_from_block5():
    model = M.build_transfer("vgg16", 64, 2, weights=None, units=8)
    head_params = M.param_counts(model)[0]
    now = M.unfreeze(model, from_layer=BASES["vgg16"].finetune_from)
    assert now == ["block5_conv1", "block5_conv2", "block5_conv3"]
    base = M.base_of(model)
    trainable = [layer.name for layer in base.layers if layer.trainable and layer.weights]
    assert trainable == now
    assert M.param_counts(model)[0] == head_params + 3 * (3 * 3 * 512 * 512 + 512)
    with pytest.raises(ValueError, match="block9_conv1") as info:
        M.unfreeze(model, from_layer="block9_conv1")
    assert "block5_conv3" in str(info.value)


def test_unfreeze_mobilenetv2_keeps_batchnorm_frozen_and_in_inference_mode():
    model = M.build_transfer("mobilenetv2_0.35", 32, 2, weights=None, units=8)
    base = M.base_of(model)
    bn = [layer for layer in base.layers if isinstance(layer, keras.layers.BatchNormalization)]
    x = random_images(4, 32, seed=7)

    def moving_means() -> list[np.ndarray]:
        return [to_numpy(layer.moving_mean).copy() for layer in bn]

    now = M.unfreeze(model, top_n=5)
    assert now == ["block_15_project", "block_16_expand", "block_16_depthwise", "block_16_project", "Conv_1"]
    assert not any(layer.trainable for layer in bn)
    everything = M.unfreeze(model)
    assert len(everything) > 30 and not any(layer.trainable for layer in bn)
    assert all(layer.trainable for layer in base.layers if layer.weights and layer not in bn)

    # Keras 3 passes fit()'s training=True down into the base despite base(x, training=False):
    # only the frozen BatchNormalization layers keep the moving statistics fixed.
    before = moving_means()
    model(x, training=True)
    assert all(np.array_equal(a, b) for a, b in zip(before, moving_means()))
    bn[0].trainable = True  # control: a trainable BN layer does update in training mode
    model(x, training=True)
    assert not np.array_equal(before[0], moving_means()[0])

    with pytest.raises(ValueError, match="not both"):
        M.unfreeze(model, from_layer="Conv_1", top_n=2)
    with pytest.raises(ValueError, match="no pretrained base"):
        M.unfreeze(M.build_scratch("small", 32, 2))
