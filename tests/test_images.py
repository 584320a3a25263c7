"""core.images: cheap checks, decoding every odd format to upright RGB, resize policies."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from PIL.Image import DecompressionBombWarning

from core.images import (
    ImageError,
    check_image,
    is_image_name,
    load_resized,
    load_rgb,
    resize,
    sniff_format,
    unsupported_format,
)
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


# ---------------------------------------------------------------------------- formats


@pytest.mark.parametrize(
    ("name", "make", "fmt"),
    [
        ("x.jpg", imagefiles.eps_as, "EPS"),
        ("x.png", imagefiles.saved_as("PCX"), "PCX"),
        ("x.png", imagefiles.saved_as("ICO"), "ICO"),
        ("x.png", imagefiles.saved_as("PPM"), "PPM"),
        ("x.jpg", imagefiles.ftyp_file, "HEIC"),
    ],
)
def test_formats_we_do_not_support_are_refused_whatever_the_name(tmp_path, monkeypatch, name, make, fmt):
    from PIL import EpsImagePlugin

    def no_ghostscript(*args, **kwargs):
        raise AssertionError("Ghostscript must never be started")

    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", no_ghostscript)
    path = make(tmp_path / name)
    expected = f"not a supported image format ({fmt}); convert to JPEG or PNG"
    assert check_image(path) == expected
    for source in (path, path.read_bytes()):
        with pytest.raises(ImageError) as e:
            load_rgb(source, min_size=(16, 16))
        assert str(e.value) == expected


def test_unsupported_names_and_sniffing():
    assert unsupported_format("a/b/IMG_0001.HEIC") == "HEIC"
    assert unsupported_format("logo.svg") == "SVG" and unsupported_format("x.avif") == "AVIF"
    assert unsupported_format(".hidden.heic") is None and unsupported_format("notes.txt") is None
    assert unsupported_format("cat.jpg") is None and is_image_name("stereo.MPO")
    assert sniff_format(b"this is not an image\n") is None and sniff_format(b"") is None
    assert sniff_format(b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>') == "SVG"
    assert sniff_format(b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00") == "AVIF"


# ---------------------------------------------------------------------------- size and memory


def test_png_over_40_megapixels_is_refused_jpeg_up_to_64_is_not(tmp_path):
    png = imagefiles.huge_header_png(tmp_path / "big.png", 8000, 8000)
    reason = check_image(png)
    assert reason is not None and "too large" in reason and "40 megapixels for PNG" in reason
    with pytest.raises(ImageError, match="too large"):
        load_rgb(png, min_size=(224, 224))
    assert check_image(imagefiles.huge_header_png(tmp_path / "ok.png", 6000, 6000)) is None
    assert check_image(imagefiles.jpeg_claiming(tmp_path / "big.jpg", 8000, 8000)) is None
    with pytest.warns(DecompressionBombWarning):  # Pillow's own warning over its 64 MP limit
        assert "too large" in check_image(imagefiles.jpeg_claiming(tmp_path / "bigger.jpg", 8001, 8000))


PEAK_SCRIPT = """
import resource, sys
from core.images import load_resized
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
arr = load_resized(sys.argv[1], (224, 224))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(before, after, *arr[20, 20], *arr[-20, -20])
"""


@pytest.mark.parametrize("mode", ["RGBA", "I;16"])
def test_peak_memory_of_a_big_png_is_about_its_decoded_size(tmp_path, mode):
    """A 6000x6000 (36 MP) PNG resized to 224 px, measured as the peak RSS of a fresh process.

    Pillow holds the decoded picture (4 bytes a pixel for RGBA, 2 for 16-bit gray) and nothing
    else full-size is made: the bound is 4 bytes a pixel + 64 MB. Before strip conversion the
    RGBA file took ~1.0 GB (RGBA copies, compositing, byte strings) and the 16-bit one ~0.96 GB
    (float64 arrays); now ~165 MB and ~90 MB.
    """
    import subprocess
    import sys

    from tests.conftest import REPO

    side = 6000
    path = imagefiles.big_png(tmp_path / "big.png", side, side, mode)
    done = subprocess.run(
        [sys.executable, "-c", PEAK_SCRIPT, str(path)], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    before_kb, after_kb, *pixels = (int(v) for v in done.stdout.split())
    peak = (after_kb - before_kb) * 1024
    assert peak < 4 * side * side + 64 * 2**20, f"decoding took {peak / 2**20:.0f} MB"
    if mode == "RGBA":  # opaque red above, transparent (so white) below
        assert pixels == [255, 0, 0, 255, 255, 255]
    else:  # white left half, black right half
        assert pixels == [255, 255, 255, 0, 0, 0]


def test_strip_conversion_matches_whole_conversion(tmp_path, monkeypatch):
    """Converting a few rows at a time gives the same pixels, also where scales are global."""
    from PIL import Image

    from core import images

    rng = np.random.default_rng(5)
    files = [make(tmp_path / name) for name, make in imagefiles.ODD_MAKERS.items()]
    gif = Image.fromarray(rng.integers(0, 4, (32, 40), dtype=np.uint8), "P")
    gif.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9])
    gif.save(tmp_path / "p.gif", transparency=3)
    Image.fromarray(rng.integers(-50, 3000, (32, 40)).astype(np.int32), "I").save(tmp_path / "i.tif")
    Image.fromarray(rng.normal(size=(32, 40)).astype(np.float32), "F").save(tmp_path / "f.tif")
    files += [tmp_path / "p.gif", tmp_path / "i.tif", tmp_path / "f.tif"]
    whole = [load_rgb(f) for f in files]
    monkeypatch.setattr(images, "STRIP_PIXELS", 100)  # 2-3 rows at a time
    for f, expected in zip(files, whole):
        assert np.array_equal(load_rgb(f), expected), f.name


def test_big_images_are_box_reduced_before_the_resize(tmp_path):
    from PIL import Image

    from core import images

    rng = np.random.default_rng(6)
    small = rng.integers(0, 256, (30, 60, 3), dtype=np.uint8)
    big = np.repeat(np.repeat(small, 50, axis=0), 50, axis=1)  # 3000 wide, 1500 high: 4.5 MP
    Image.fromarray(big).save(tmp_path / "blocks.png", compress_level=1)
    assert images.REDUCE_ABOVE_PIXELS < 1500 * 3000
    out = load_resized(tmp_path / "blocks.png", (30, 60))  # reduced by exactly 50
    assert np.abs(out.astype(int) - small).max() <= 1

    y, x = np.mgrid[0:1500, 0:3000]
    smooth = np.stack([x * 255 // 2999, y * 255 // 1499, (x + y) * 255 // 4498], axis=2).astype(np.uint8)
    Image.fromarray(smooth).save(tmp_path / "smooth.png", compress_level=1)
    for policy in ("stretch", "crop", "pad"):
        direct = resize(load_rgb(tmp_path / "smooth.png"), (64, 48), policy)
        reduced = load_resized(tmp_path / "smooth.png", (64, 48), policy)
        assert np.abs(reduced.astype(int) - direct).mean() < 2, policy
