"""Test images and tiny models for the core.models and core.explain tests.

Every explainer test runs in float32, in mixed precision (mixed_bfloat16) and on a model that went
through a .keras save -> load round trip (``VARIANTS``, ``build_variant``).
"""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from core import modelfile  # noqa: E402
from core import models as M  # noqa: E402
from tests.conftest import MOBILENET_025  # noqa: E402

VARIANTS = ("float32", "mixed_bfloat16", "keras_file")


def random_images(n: int, size: int, seed: int = 0) -> np.ndarray:
    """n random float32 images (n, size, size, 3) with values in [0, 255]."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, size, size, 3)).astype("float32")


def to_numpy(x) -> np.ndarray:
    """Backend tensor -> numpy."""
    return keras.ops.convert_to_numpy(x)


def shape_image(size: int, seed: int = 0, shape: str = "square") -> np.ndarray:
    """A uint8 (size, size, 3) test image: a bright shape on a dark noisy background."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 60, (size, size, 3)).astype(np.uint8)
    a, b = size // 4 + seed % 3, size // 2 + size // 8 + seed % 3
    if shape == "square":
        img[a:b, a:b] = (230, 200, 40)
    else:
        yy, xx = np.mgrid[:size, :size]
        img[(yy - a) ** 2 + (xx - b) ** 2 < (size // 6) ** 2] = (40, 200, 230)
    return img


def shape_images(n: int, size: int) -> np.ndarray:
    """n shape images (n, size, size, 3) uint8, squares and discs in turn."""
    return np.stack([shape_image(size, i, "square" if i % 2 == 0 else "disc") for i in range(n)])


def build_variant(variant: str, make, tmp_path):
    """make() in float32 or mixed_bfloat16; "keras_file" saves and loads the float32 model."""
    if variant == "mixed_bfloat16":
        previous = keras.mixed_precision.dtype_policy()
        keras.mixed_precision.set_dtype_policy("mixed_bfloat16")
        try:
            keras.utils.set_random_seed(0)
            return make()
        finally:
            keras.mixed_precision.set_dtype_policy(previous)
    keras.utils.set_random_seed(0)
    model = make()
    if variant == "keras_file":
        path = tmp_path / "model.keras"
        model.save(path)
        return modelfile.load_model(path)
    return model


def check_maps(maps: np.ndarray, shape: tuple[int, ...]) -> None:
    """Heatmaps of `shape`, float32 in [0, 1], each normalised to a maximum of 1 and not constant."""
    assert maps.shape == shape and maps.dtype == np.float32
    assert np.isfinite(maps).all() and maps.min() >= 0 and maps.max() <= 1
    for m in maps:
        assert m.max() == pytest.approx(1.0) and m.std() > 1e-3  # normalised, not constant


def small_net(num_classes: int = 2):
    """The "small" scratch net at 32 px."""
    return M.build_scratch("small", 32, num_classes)


def mobilenet_transfer(num_classes: int = 2):
    """MobileNet (alpha 0.25) at 96 px with a 32-unit head; ImageNet weights where ../shared has them."""
    weights = str(MOBILENET_025) if MOBILENET_025.is_file() else None
    return M.build_transfer("mobilenet_0.25", 96, num_classes, weights=weights, units=32)
