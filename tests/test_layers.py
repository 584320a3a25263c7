"""Tests for core.layers: the one-resampling RandomAffine and the loadable RandomShear."""

from __future__ import annotations

import math

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from core.layers import RandomAffine, RandomShear  # noqa: E402

H, W, N = 41, 61, 64  # odd sizes: the centre is a pixel; non-square catches height/width mix-ups
CY, CX = (H - 1) / 2, (W - 1) / 2


def _dot_images(y: int, x: int, n: int = N) -> np.ndarray:
    """n black float images with one white 3x3 dot centred at (y, x)."""
    images = np.zeros((n, H, W, 3), np.float32)
    images[:, y - 1 : y + 2, x - 1 : x + 2] = 255.0
    return images


def _centroids(images: np.ndarray) -> np.ndarray:
    """(n, 2) brightness-weighted (y, x) of each image."""
    weight = images.mean(axis=-1)
    ys, xs = np.mgrid[:H, :W]
    total = weight.sum(axis=(1, 2))
    return np.stack([(weight * ys).sum(axis=(1, 2)) / total, (weight * xs).sum(axis=(1, 2)) / total], axis=1)


def _apply(layer: RandomAffine, images: np.ndarray) -> np.ndarray:
    return keras.ops.convert_to_numpy(layer(images, training=True))


def test_shift_moves_a_dot_within_the_range_both_ways():
    y, x = int(CY), int(CX)
    out = _centroids(
        _apply(
            RandomAffine(width_shift=0.2, height_shift=0.1, fill_mode="constant", seed=1), _dot_images(y, x)
        )
    )
    dy, dx = out[:, 0] - y, out[:, 1] - x
    assert np.abs(dx).max() <= 0.2 * W + 0.5 and np.abs(dy).max() <= 0.1 * H + 0.5
    assert dx.min() < -0.1 * W and dx.max() > 0.1 * W  # spread over the range, both directions
    assert dy.min() < -0.05 * H and dy.max() > 0.05 * H


def test_rotation_turns_a_dot_about_the_centre_within_the_angle():
    y, x = int(CY), int(CX) + 15
    out = _centroids(_apply(RandomAffine(rotation=40, fill_mode="constant", seed=2), _dot_images(y, x)))
    radius = np.hypot(out[:, 0] - CY, out[:, 1] - CX)
    angle = np.degrees(np.arctan2(out[:, 0] - CY, out[:, 1] - CX))
    assert radius == pytest.approx(15, abs=0.6)  # a pure rotation about the centre keeps the distance
    assert np.abs(angle).max() <= 40.5
    assert angle.min() < -25 and angle.max() > 25


def test_zoom_scales_distances_from_the_centre_by_one_factor_for_both_axes():
    y, x = int(CY) + 8, int(CX) + 12
    out = _centroids(_apply(RandomAffine(zoom=0.3, fill_mode="constant", seed=3), _dot_images(y, x)))
    ratio_y, ratio_x = (out[:, 0] - CY) / 8, (out[:, 1] - CX) / 12
    assert ratio_y == pytest.approx(ratio_x, abs=0.08)  # aspect ratio kept
    # The matrix maps output to input: scale s in [0.7, 1.3] shows a dot at distance d at d / s.
    assert ratio_x.min() >= 1 / 1.3 - 0.05 and ratio_x.max() <= 1 / 0.7 + 0.05
    assert ratio_x.min() < 0.85 and ratio_x.max() > 1.2


def test_shear_slants_sideways_in_proportion_to_height_only():
    for dy in (-12, 12):
        y, x = int(CY) + dy, int(CX)
        out = _centroids(_apply(RandomAffine(shear=30, fill_mode="constant", seed=4), _dot_images(y, x)))
        assert out[:, 0] == pytest.approx(y, abs=0.3)  # x shear: rows stay where they are
        slope = (out[:, 1] - x) / dy
        assert np.abs(slope).max() <= math.tan(math.radians(30)) + 0.05
        assert slope.min() < -0.3 and slope.max() > 0.3


def test_identity_and_inference_leave_images_unchanged():
    images = np.random.default_rng(0).integers(0, 256, (4, H, W, 3)).astype(np.float32)
    assert np.array_equal(_apply(RandomAffine(), images), images)
    layer = RandomAffine(rotation=30, zoom=0.2)
    assert np.array_equal(keras.ops.convert_to_numpy(layer(images, training=False)), images)


def test_one_resampling_blurs_less_than_the_chained_keras_layers():
    """The same small transforms chained through four Keras layers lose more fine detail."""
    images = np.random.default_rng(1).integers(0, 256, (16, H, W, 3)).astype(np.float32)

    def detail(x: np.ndarray) -> float:  # mean absolute difference between neighbours, inside the frame
        x = x[:, 8:-8, 8:-8]
        return float(np.abs(np.diff(x, axis=2)).mean())

    fused = _apply(
        RandomAffine(rotation=3, width_shift=0.05, height_shift=0.05, shear=3, zoom=0.05, seed=5), images
    )
    chain = keras.Sequential(
        [
            keras.layers.RandomRotation(3 / 360, seed=5),
            keras.layers.RandomTranslation(0.05, 0.05, seed=6),
            RandomShear(x_factor=math.tan(math.radians(3)), y_factor=0.0, seed=7),
            keras.layers.RandomZoom(0.05, seed=8),
        ]
    )
    chained = keras.ops.convert_to_numpy(chain(images, training=True))
    assert detail(fused) > 1.15 * detail(chained)


def test_each_part_keeps_its_draw_when_another_setting_changes():
    """For one seed, turning rotation on changes the rotation only: shifts stay as they were."""
    images = _dot_images(int(CY), int(CX), n=8)
    shift_only = RandomAffine(width_shift=0.2, fill_mode="constant", seed=9)
    with_rotation = RandomAffine(width_shift=0.2, rotation=20, fill_mode="constant", seed=9)
    a, b = shift_only.get_random_transformation(images), with_rotation.get_random_transformation(images)
    assert np.array_equal(keras.ops.convert_to_numpy(a["unit"]), keras.ops.convert_to_numpy(b["unit"]))

    # Every part turns about the centre, so the input point the centre pixel reads from is the shift.
    def source_of_centre(t: dict) -> np.ndarray:
        m = keras.ops.convert_to_numpy(t["matrix"])
        return np.stack(
            [m[:, 0] * CX + m[:, 1] * CY + m[:, 2], m[:, 3] * CX + m[:, 4] * CY + m[:, 5]], axis=1
        )

    np.testing.assert_allclose(source_of_centre(a), source_of_centre(b), atol=1e-3)
    assert not np.allclose(keras.ops.convert_to_numpy(a["matrix"]), keras.ops.convert_to_numpy(b["matrix"]))


def test_single_image_bfloat16_and_bad_settings():
    image = np.random.default_rng(2).integers(0, 256, (H, W, 3)).astype(np.float32)
    assert _apply(RandomAffine(rotation=10, seed=0), image).shape == (H, W, 3)
    layer = RandomAffine(rotation=10, zoom=0.1, seed=0, dtype="mixed_bfloat16")
    assert keras.backend.standardize_dtype(layer(image[None], training=True).dtype) == "bfloat16"
    with pytest.raises(ValueError, match="zoom"):
        RandomAffine(zoom=1.5)
    with pytest.raises(ValueError, match="fill_mode"):
        RandomAffine(fill_mode="smear")


def test_models_with_either_layer_save_and_load_in_safe_mode(tmp_path):
    """RandomShear: Keras 3.15 saves its factor as (-f, f) and then refuses it; ours loads (older runs)."""
    from core.modelfile import load_model

    inputs = keras.Input((H, W, 3))
    x = RandomAffine(rotation=12, width_shift=0.1, shear=5, zoom=0.2, fill_mode="wrap", seed=3)(inputs)
    model = keras.Model(inputs, RandomShear(x_factor=0.2, y_factor=0.0, seed=4)(x))
    model.save(tmp_path / "m.keras")
    loaded = load_model(tmp_path / "m.keras")
    assert [type(layer).__name__ for layer in loaded.layers[1:]] == ["RandomAffine", "RandomShear"]
    assert loaded.layers[1].get_config() == model.layers[1].get_config()
    assert loaded.layers[2].x_factor == model.layers[2].x_factor
