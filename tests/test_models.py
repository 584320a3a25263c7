"""Tests for core.models: scratch nets, bases, preprocessing, local/offline weights, transfer, fine-tuning."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from core import models as M  # noqa: E402
from core.models import BASES, WeightsError  # noqa: E402
from tests.conftest import MOBILENET_025, WEIGHTS, needs_mobilenet  # noqa: E402

MOBILENETV2_035 = WEIGHTS / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"


def _images(n: int, size: int, seed: int = 0) -> np.ndarray:
    """n random float32 images (n, size, size, 3) with values in [0, 255]."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, size, size, 3)).astype("float32")


def _np(x) -> np.ndarray:
    """Backend tensor -> numpy."""
    return keras.ops.convert_to_numpy(x)


# --------------------------------------------------------------------------------------------------
# Scratch nets


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


def test_small_net_options_and_augmentation():
    aug = keras.Sequential([keras.layers.RandomFlip("horizontal")], name="augmentation")
    plain = M.build_scratch("small", 32, 4, filters=8, depth=2)
    model = M.build_scratch("small", 32, 4, augmentation=aug, filters=8, depth=2)
    # conv 3->8, conv 8->16, output 16->4; augmentation adds no parameters
    assert plain.count_params() == model.count_params() == (27 * 8 + 8) + (72 * 16 + 16) + (16 * 4 + 4)
    assert [layer.name for layer in model.layers[:3]] == ["image", "augmentation", "rescaling"]
    probs = _np(model(_images(2, 32)))
    assert probs.shape == (2, 4) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    with pytest.raises(ValueError, match="widht"):
        M.build_scratch("small", 32, 2, widht=3)
    with pytest.raises(ValueError, match="at least"):
        M.build_scratch("seed003", 64, 2)
    with pytest.raises(ValueError, match="seed999"):
        M.build_scratch("seed999", 64, 2)


# --------------------------------------------------------------------------------------------------
# Bases and preprocessing


@pytest.mark.parametrize("name", list(BASES))
def test_every_base_builds_without_weights(name):
    spec = BASES[name]
    size = 75 if spec.min_size > 32 else 32  # Xception needs >= 71 px
    base = M.build_base(name, size, weights=None)
    assert len(base.output.shape) == 4
    base.get_layer(spec.finetune_from)
    assert base.get_layer(spec.last_conv).output is not None
    # The Grad-CAM target is reachable through the nested base of a transfer model.
    model = M.build_transfer(name, size, 2, weights=None, base=base, units=8)
    assert M.base_of(model) is base and model.get_layer("base") is base
    assert M.last_conv_layer(model).name == spec.last_conv
    assert spec.description and spec.keras_weights_file(size).endswith(".h5")


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
    got = _np(M.Preprocess(mode)(x))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)


def test_preprocess_modes_of_bases_and_config():
    x = np.random.default_rng(4).uniform(0, 255, (1, 4, 4, 3)).astype("float32")
    for spec in BASES.values():
        module = {"VGG16": "vgg16", "ResNet50": "resnet50", "Xception": "xception", "MobileNet": "mobilenet"}
        module |= {"MobileNetV2": "mobilenet_v2", "EfficientNetB0": "efficientnet", "DenseNet121": "densenet"}
        expected = getattr(keras.applications, module[spec.label]).preprocess_input(x.copy())
        np.testing.assert_allclose(_np(M.Preprocess(spec.preprocess)(x)), expected, rtol=1e-5, atol=1e-4)
    layer = M.Preprocess("torch", name="preprocess")
    clone = M.Preprocess.from_config(layer.get_config())
    assert (clone.mode, clone.name) == ("torch", "preprocess")
    with pytest.raises(ValueError, match="caffe"):
        M.Preprocess("bgr")


def test_alpha_variants_and_weight_file_names():
    assert M.parse_base_name("mobilenet_0.25") == ("mobilenet", 0.25)
    assert M.parse_base_name("VGG16") == ("vgg16", None)
    assert M.base_spec("mobilenet_0.5").kwargs["alpha"] == 0.5
    assert M.base_spec("mobilenet_0.25").keras_weights_file(64) == MOBILENET_025.name
    assert M.base_spec("mobilenet_0.5").keras_weights_file(224) == "mobilenet_5_0_224_tf_no_top.h5"
    assert M.base_spec("mobilenetv2_0.35").keras_weights_file(224) == MOBILENETV2_035.name
    assert M.base_spec("mobilenetv2_0.35").keras_weights_file(128).endswith("_0.35_128_no_top.h5")
    assert M.base_spec("mobilenetv2_0.35").title == "MobileNetV2 (alpha 0.35)"
    assert BASES["vgg16"].finetune_from == "block5_conv1"
    for bad in ("mobilenet_0.3", "vgg16_0.5", "alexnet"):
        with pytest.raises(ValueError):
            M.base_spec(bad)


# --------------------------------------------------------------------------------------------------
# Weights: local files and ImageNet offline


@needs_mobilenet
def test_local_weights_load():
    trained = M.build_base("mobilenet_0.25", 64, weights=str(MOBILENET_025))
    random = M.build_base("mobilenet_0.25", 64, weights="none")
    for name in ("conv1", "conv_pw_13"):
        assert not np.allclose(_np(trained.get_layer(name).kernel), _np(random.get_layer(name).kernel))
    # Fresh BatchNormalization has moving_variance 1 everywhere; ImageNet statistics do not.
    assert not np.allclose(_np(trained.get_layer("conv1_bn").moving_variance), 1.0)


@needs_mobilenet
def test_wrong_weights_files_raise_plain_errors(tmp_path):
    text = tmp_path / "notes.h5"
    text.write_text("these are not weights")
    cases = {
        str(text): "notes.h5",
        str(WEIGHTS / "README.md"): "README.md",
        str(MOBILENETV2_035): "does not hold weights for this model",
        str(tmp_path / "missing.h5"): "does not exist",
    }
    for weights, fragment in cases.items():
        with pytest.raises(WeightsError) as info:
            M.build_base("mobilenet_0.25", 64, weights=weights)
        message = str(info.value)
        assert fragment in message and MOBILENET_025.name in message
        assert "Traceback" not in message and "\n" not in message
    assert issubclass(WeightsError, ValueError)


def test_imagenet_without_network_raises_weights_error(monkeypatch):
    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: None -- no network")

    monkeypatch.setattr("keras.src.utils.file_utils.get_file", offline)
    with pytest.raises(WeightsError) as info:
        M.build_base("vgg16", 32, weights="imagenet")
    message = str(info.value)
    assert message.startswith("Could not download the ImageNet weights for VGG16 (no internet connection?).")
    assert "local weights file" in message
    assert "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5" in message


@needs_mobilenet
@pytest.mark.filterwarnings("ignore:.*Weights for input shape:UserWarning")  # 64 px loads the 224 px file
def test_imagenet_from_keras_cache_works_offline(tmp_path, monkeypatch):
    (tmp_path / "models").mkdir()
    shutil.copy(MOBILENET_025, tmp_path / "models" / MOBILENET_025.name)
    monkeypatch.setattr("keras.src.backend.config.keras_home", lambda: str(tmp_path))
    cached = M.build_base("mobilenet_0.25", 64, weights="imagenet")
    local = M.build_base("mobilenet_0.25", 64, weights=MOBILENET_025)
    np.testing.assert_array_equal(_np(cached.get_layer("conv1").kernel), _np(local.get_layer("conv1").kernel))


# --------------------------------------------------------------------------------------------------
# Transfer models


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

    x = _images(3, 64)
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
    x = _images(2, 64, seed=5)
    features = base.predict(_np(M.Preprocess("tf")(x)), verbose=0)
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
    x = _images(4, 32, seed=7)

    def moving_means() -> list[np.ndarray]:
        return [_np(layer.moving_mean).copy() for layer in bn]

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
