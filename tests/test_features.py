"""core.features: the feature cache of features mode and its extractor."""

from __future__ import annotations

import numpy as np
import pytest

from core import cache, features
from core.config import TrainConfig
from tests.conftest import MOBILENET_025, make_demo_split, needs_mobilenet


def mobilenet_config(**kw) -> TrainConfig:
    values = dict(
        split="demo", mode="features", model="mobilenet_0.25", image_size=64, weights=str(MOBILENET_025)
    )
    return TrainConfig(**{**values, **kw})


@needs_mobilenet
def test_feature_cache_reuses_features_without_calling_the_base(workspace):
    split = make_demo_split(workspace, per_class=6)
    config = mobilenet_config()
    arrays = cache.split_arrays(split, "train", (64, 64), "stretch", workspace)
    fx = features.feature_extractor(config)
    calls: list[int] = []

    def counting(x, training=False):
        calls.append(len(x))
        return fx(x, training=training)

    def must_not_run(x, training=False):
        raise AssertionError("the base ran on images although the features were cached")

    first, hit = features.extract_features(config, arrays, workspace, counting)
    assert not hit and sum(calls) == len(arrays) == len(first)
    assert first.shape == (len(arrays), *fx.output_shape[1:]) and first.dtype == np.float32
    again, hit = features.extract_features(config, arrays, workspace, must_not_run)
    assert hit and np.array_equal(np.asarray(again), first)

    # Another size is another cache entry (and another decode entry).
    small = mobilenet_config(image_size=48)
    arrays48 = cache.split_arrays(split, "train", (48, 48), "stretch", workspace)
    assert features.features_path(small, arrays48.key, workspace) != features.features_path(
        config, arrays.key, workspace
    )
    assert features.features_path(small, arrays.key, workspace) != features.features_path(
        config, arrays.key, workspace
    )
    feats48, hit = features.extract_features(small, arrays48, workspace, features.feature_extractor(small))
    assert not hit and feats48.shape[1:] != first.shape[1:]
    assert len(list((workspace / "features").glob("*.npy"))) == 2

    # Random weights are never cached: another run's random base would not match.
    random = mobilenet_config(weights="none")
    features.extract_features(random, arrays, workspace, features.feature_extractor(random))
    with pytest.raises(AssertionError, match="base ran"):
        features.extract_features(random, arrays, workspace, must_not_run)


@needs_mobilenet
def test_a_failed_feature_write_leaves_no_file(workspace, monkeypatch):
    """The cache file appears whole or not at all: a write that fails leaves neither it nor a temp file."""
    split = make_demo_split(workspace, per_class=2)
    config = mobilenet_config()
    arrays = cache.split_arrays(split, "train", (64, 64), "stretch", workspace)

    def failing_save(path, array):
        open(path, "wb").write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(np, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        features.extract_features(config, arrays, workspace)
    assert not list((workspace / "features").iterdir())
