"""core.jpeg: a JPEG's first picture reaches its end marker, however the file goes on or is cut."""

from __future__ import annotations

import numpy as np

from core.images import check_image, load_resized, load_rgb
from core.jpeg import first_picture_complete
from tests import imagefiles


def test_jpeg_with_data_after_the_picture_is_complete_and_decodes(tmp_path):
    path = imagefiles.jpeg_with_trailer(tmp_path / "PXL_0001.MP.jpg")
    assert first_picture_complete(path) and check_image(path) is None
    assert load_rgb(path).shape == (40, 48, 3)
    assert load_resized(path, (20, 24)).shape == (20, 24, 3)


def test_mpo_is_accepted_and_decodes_to_its_first_picture(tmp_path):
    path = imagefiles.mpo(tmp_path / "stereo.jpg", first=(255, 0, 0), second=(0, 0, 255))
    assert first_picture_complete(path) and check_image(path) is None
    for arr in (load_rgb(path), load_resized(path, (16, 16))):  # full size, and draft decoding
        r, g, b = arr[arr.shape[0] // 2, arr.shape[1] // 2].astype(int)
        assert r > 200 and g < 60 and b < 60


def _jpeg_variants(tmp_path) -> dict[str, bytes]:
    from PIL import Image

    rng = np.random.default_rng(3)
    img = Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8))
    thumb = tmp_path / "thumb.jpg"
    img.resize((16, 16)).save(thumb)
    exif = img.getexif()
    exif[0x010E] = thumb.read_bytes().decode("latin1")  # an FF D9 inside the header
    out = {}
    for name, kwargs in {
        "baseline": {},
        "progressive": {"progressive": True},
        "restart": {"restart_marker_blocks": 1},
        "exif": {"exif": exif.tobytes()},
    }.items():
        img.save(tmp_path / "v.jpg", format="JPEG", quality=90, **kwargs)
        out[name] = (tmp_path / "v.jpg").read_bytes()
    return out


def test_a_jpeg_cut_anywhere_is_truncated(tmp_path):
    path = tmp_path / "cut.jpg"
    for name, data in _jpeg_variants(tmp_path).items():
        path.write_bytes(data)
        assert first_picture_complete(path) and check_image(path) is None, name
        for cut in range(len(data) // 3, len(data) - 1, 23):
            path.write_bytes(data[:cut])
            reason = check_image(path)
            assert reason is not None and ("truncated" in reason or "unreadable" in reason), (name, cut)
        path.write_bytes(data[: len(data) // 2] + bytes(5000))  # cut, then zero padding
        assert "truncated" in check_image(path), name
        assert not first_picture_complete(path), name
