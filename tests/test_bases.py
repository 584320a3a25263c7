"""Tests for core.models.bases: every base builds, width variants, local and offline ImageNet weights."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from core import models as M  # noqa: E402
from core.models import BASES, WeightsError  # noqa: E402
from tests.conftest import MOBILENET_025, WEIGHTS, needs_mobilenet  # noqa: E402
from tests.modelkit import to_numpy  # noqa: E402

MOBILENETV2_035 = WEIGHTS / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"


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


@needs_mobilenet
def test_local_weights_load():
    trained = M.build_base("mobilenet_0.25", 64, weights=str(MOBILENET_025))
    random = M.build_base("mobilenet_0.25", 64, weights="none")
    for name in ("conv1", "conv_pw_13"):
        assert not np.allclose(
            to_numpy(trained.get_layer(name).kernel), to_numpy(random.get_layer(name).kernel)
        )
    # Fresh BatchNormalization has moving_variance 1 everywhere; ImageNet statistics do not.
    assert not np.allclose(to_numpy(trained.get_layer("conv1_bn").moving_variance), 1.0)


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
    np.testing.assert_array_equal(
        to_numpy(cached.get_layer("conv1").kernel), to_numpy(local.get_layer("conv1").kernel)
    )
