"""Tests for core.explain.layer_paths: paths of flat and nested layers, layer info."""

from __future__ import annotations

import pytest

keras = pytest.importorskip("keras")

from core import explain as E  # noqa: E402
from core import models as M  # noqa: E402
from tests.modelkit import mobilenet_transfer, small_net  # noqa: E402


def test_layer_paths_flat_and_nested():
    small = small_net()
    assert E.conv_layers(small) == ["conv1", "pool1", "conv2", "pool2", "last_conv"]
    assert E.default_layer(small) == "last_conv"
    transfer = mobilenet_transfer()
    paths = E.conv_layers(transfer)
    assert paths[0] == "base/conv1" and paths[-1] == "base/conv_pw_13_relu" == E.default_layer(transfer)
    assert all(p.startswith("base/") for p in paths)
    assert E.find_layer(transfer, "base/conv_pw_13_relu") is M.last_conv_layer(transfer)
    assert E.find_layer(transfer, "dense") is transfer.get_layer("dense")
    with pytest.raises(ValueError, match="No layer 'nope'"):
        E.find_layer(transfer, "base/nope")
    with pytest.raises(ValueError, match="not a nested model"):
        E.find_layer(transfer, "dense/x")
    info = E.layer_info(transfer, "base/conv1")
    assert info == {
        "path": "base/conv1",
        "name": "conv1",
        "type": "Conv2D",
        "output_shape": (48, 48, 8),
        "params": 3 * 3 * 3 * 8,
        "trainable_params": 0,  # the base is frozen
    }
    assert E.layer_info(small, "last_conv")["params"] == 3 * 3 * 32 * 64 + 64
