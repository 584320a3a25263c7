"""core.weights: which weights a config names, and whether ImageNet weights can be had."""

from __future__ import annotations

import pytest

from core import weights
from core.config import ConfigError, TrainConfig


def test_weights_name_imagenet_a_file_or_nothing(tmp_path):
    def config(value: str) -> TrainConfig:
        return TrainConfig(split="s", mode="features", model="mobilenet_0.25", weights=value)

    assert weights.resolve_weights(config("none")) is None and weights.weights_file(config("none")) is None
    assert weights.resolve_weights(config("imagenet")) == "imagenet"
    assert weights.weights_file(config("imagenet")) is None
    assert weights.weights_file(config(str(tmp_path / "w.h5"))) == tmp_path / "w.h5"


def test_keras_cached_weights_looks_in_keras_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "some_tf_no_top.h5").write_bytes(b"h5")
    assert weights.keras_cached_weights("some_tf_no_top.h5") == tmp_path / "models" / "some_tf_no_top.h5"


def test_imagenet_weights_not_cached_must_be_downloadable(monkeypatch):
    config = TrainConfig(
        split="s", mode="features", model="mobilenet_0.25", image_size=64, weights="imagenet"
    )
    monkeypatch.setattr(weights, "keras_cached_weights", lambda name: None)
    monkeypatch.setattr(weights, "can_download", lambda: False)
    with pytest.raises(ConfigError, match="^weights: .*cannot be downloaded"):
        weights.check_imagenet_weights(config)
    monkeypatch.setattr(weights, "can_download", lambda: True)
    weights.check_imagenet_weights(config)  # downloadable: no error
