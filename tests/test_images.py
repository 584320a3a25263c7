"""core.images: cheap checks, decoding every odd format to upright RGB, resize policies."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

from core.images import ImageError, check_image, is_image_name, load_resized, load_rgb, resize
from tests import imagefiles


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("truncated.jpg", "truncated"),
        ("text.jpg", "not an image"),
        ("zero.jpg", "empty file"),
        ("huge.png", "too large"),
        ("tiny.png", "too small"),
    ],
)
def test_check_image_names_the_problem(tmp_path, name, expected):
    path = imagefiles.BAD_MAKERS[name](tmp_path / name)
    reason = check_image(path)
    assert reason is not None and expected in reason


@pytest.mark.parametrize("name", sorted(imagefiles.ODD_MAKERS))
def test_odd_but_valid_images_pass_the_check(tmp_path, name):
    assert check_image(imagefiles.ODD_MAKERS[name](tmp_path / name)) is None


@pytest.mark.parametrize("name", ["text.jpg", "zero.jpg", "huge.png", "truncated.jpg"])
def test_load_rgb_raises_a_plain_error_not_a_crash(tmp_path, name):
    path = imagefiles.BAD_MAKERS[name](tmp_path / name)
    if name == "truncated.jpg":
        # Pillow may decode a truncated JPEG partially; either a clean error or an RGB array is fine.
        with contextlib.suppress(ImageError):
            assert load_rgb(path).ndim == 3
        return
    with pytest.raises(ImageError):
        load_rgb(path)


def test_rgba_becomes_rgb_over_white(tmp_path):
    arr = load_rgb(imagefiles.rgba_png(tmp_path / "x.png"))
    assert arr.shape == (32, 40, 3) and arr.dtype == np.uint8
    assert tuple(arr[5, 5]) == (255, 0, 0)
    assert tuple(arr[5, 35]) == (255, 255, 255)


def test_16bit_png_is_scaled_not_clipped(tmp_path):
    arr = load_rgb(imagefiles.png16(tmp_path / "x.png"))
    assert arr.shape == (32, 64, 3)
    row = arr[0, :, 0].astype(int)
    assert row[0] == 0 and row[-1] == 255
    assert 100 < row[32] < 155  # mid-gradient is mid-grey, not white
    assert np.all(np.diff(row) >= 0)


def test_cmyk_jpeg_ends_up_rgb(tmp_path):
    arr = load_rgb(imagefiles.cmyk_jpeg(tmp_path / "x.jpg"))
    assert arr.shape == (32, 40, 3)
    r, g, b = arr[16, 20].astype(int)
    assert r > 200 and g < 60 and b < 60


def test_exif_rotation_is_applied(tmp_path):
    arr = load_rgb(imagefiles.exif_rotated_jpeg(tmp_path / "x.jpg"))
    assert arr.shape == (40, 20, 3)  # upright: taller than wide
    top, bottom = arr[5, 10].astype(int), arr[35, 10].astype(int)
    assert top[0] > 200 and top[2] < 60  # red on top
    assert bottom[2] > 200 and bottom[0] < 60  # blue below


def test_exif_rotation_with_draft_size(tmp_path):
    arr = load_resized(imagefiles.exif_rotated_jpeg(tmp_path / "x.jpg"), (16, 8))
    assert arr.shape == (16, 8, 3)
    assert arr[2, 4, 0] > 200 and arr[13, 4, 2] > 200


def test_load_rgb_accepts_bytes(tmp_path):
    data = imagefiles.solid(tmp_path / "x.png").read_bytes()
    assert load_rgb(data).shape == (32, 40, 3)


def test_resize_policies():
    img = np.zeros((100, 200, 3), dtype=np.uint8)
    img[:, 50:150] = 255  # white centre square, black sides
    stretched = resize(img, (50, 50), "stretch")
    cropped = resize(img, (50, 50), "crop")
    padded = resize(img, (50, 50), "pad")
    assert stretched.shape == cropped.shape == padded.shape == (50, 50, 3)
    assert cropped.min() == 255  # the centre crop is all white
    assert padded[:12].max() == 0 and padded[-12:].max() == 0  # black bars above and below
    assert padded[25, 20:30].min() == 255
    assert stretched[25, 0].max() == 0 and stretched[25, 25].min() == 255
    with pytest.raises(ValueError, match="resize policy"):
        resize(img, (10, 10), "squash")


def test_is_image_name():
    assert is_image_name("a/b/cat.1.JPG")
    assert not is_image_name(".hidden.jpg")
    assert not is_image_name("notes.txt")
