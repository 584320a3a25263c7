"""Tests for core.explain.heatmaps: upsampling, the coloured map and the overlay."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from core import explain as E  # noqa: E402


def test_upsample_overlay_and_heat_image():
    heat = np.zeros((4, 4), np.float32)
    heat[1, 2] = 1.0
    up = E.upsample(heat, (32, 48))
    assert up.shape == (32, 48) and up.dtype == np.float32 and up.min() >= 0 and up.max() <= 1
    image = np.full((32, 48, 3), 100, np.uint8)
    coloured = E.heat_image(np.zeros((4, 4)), size=(32, 48))
    assert coloured.shape == (32, 48, 3) and tuple(coloured[0, 0]) == (0, 0, 128)  # JET(0), as RGB
    out = E.overlay(image, np.zeros((4, 4)))
    assert out.dtype == np.uint8 and tuple(out[0, 0]) == (100, 100, round(100 + 0.4 * 128))
    hot = E.overlay(np.full((32, 48, 3), 250, np.uint8), np.ones((4, 4)))
    assert hot.max() == 255  # saturates instead of wrapping around
