"""Tests for core.explain.channels: activations in one pass (nested base too) and channel grids."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from core import explain as E  # noqa: E402
from core import models as M  # noqa: E402
from core.explain import channels  # noqa: E402
from tests.modelkit import mobilenet_transfer, shape_image, small_net  # noqa: E402


def test_activations_match_sub_models_in_one_pass(monkeypatch):
    small = small_net()
    img = shape_image(32)
    calls = []
    real = E.activation_model

    def spy(model, paths):
        built = real(model, paths)
        calls.append(built)
        return built

    monkeypatch.setattr(channels, "activation_model", spy)
    names = ["conv1", "pool2", "last_conv"]
    acts = E.activations(small, img, names)
    assert len(calls) == 1 and len(calls[0].outputs) == len(names) + 1  # one model, one pass
    assert real(small, names) is calls[0]  # built once, cached
    for name in names:
        expected = keras.Model(small.input, small.get_layer(name).output)(img[None].astype("float32"))
        assert acts[name].dtype == np.float32
        np.testing.assert_allclose(acts[name], np.asarray(expected)[0], rtol=1e-5, atol=1e-5)


def test_activations_inside_the_nested_base():
    model = mobilenet_transfer()
    base = M.base_of(model)
    img = shape_image(96, 1)
    paths = ["base/conv1", "base/conv_pw_5_relu", "base/conv_pw_13_relu", "flatten"]
    acts = E.activations(model, img, paths)
    assert list(acts) == paths
    x = model.get_layer("preprocess")(img[None].astype("float32"))
    for path in paths[:3]:
        name = path.split("/")[1]
        expected = np.asarray(keras.Model(base.input, base.get_layer(name).output)(x))[0]
        assert acts[path].shape == expected.shape
        np.testing.assert_allclose(acts[path], expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(acts["flatten"], acts["base/conv_pw_13_relu"].reshape(-1), rtol=1e-6)


def test_normalize_channel_is_the_seed_formula():
    rng = np.random.default_rng(0)
    a = (rng.normal(3, 2, (13, 17)) ** 2).astype(np.float32)
    seed = a.copy()  # the seed's lines, verbatim
    seed -= seed.mean()
    seed /= seed.std()
    seed *= 64
    seed += 128
    seed = np.clip(seed, 0, 255).astype("uint8")
    np.testing.assert_array_equal(E.normalize_channel(a), seed)
    flat = E.normalize_channel(np.full((5, 5), 0.7, np.float32))
    assert flat.dtype == np.uint8 and (flat == 128).all()
    assert (E.normalize_channel(np.zeros((4, 4))) == 128).all()


def test_channel_grid_layout_and_pages():
    act = np.random.default_rng(1).random((6, 5, 32)).astype(np.float32)
    grid = E.channel_grid(act)
    assert grid.shape == (2 * 6 + 1, 16 * 5 + 15, 3) and grid.dtype == np.uint8
    assert (grid[6] == 255).all()  # the white gap between the rows
    assert not np.array_equal(E.channel_grid(act, cmap="gray"), grid)
    gray = E.channel_grid(act, cmap="gray")
    np.testing.assert_array_equal(gray[:6, :5, 0], E.normalize_channel(act[..., 0]))  # gray LUT ~ identity
    assert E.channel_pages(32, None) == 1 and E.channel_pages(512, 64) == 8 and E.channel_pages(40, 16) == 3
    wide = np.random.default_rng(2).random((6, 5, 40)).astype(np.float32)
    last = E.channel_grid(wide, per_page=16, page=2)
    assert last.shape == (6, 16 * 5 + 15, 3)  # 8 channels, as wide as a full page
    with pytest.raises(ValueError, match="page"):
        E.channel_grid(act, per_page=16, page=2)
    with pytest.raises(ValueError, match="colormap"):
        E.channel_grid(act, cmap="no-such-map")
