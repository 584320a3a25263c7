"""Every bad input the hardening issue names, made on the fly and fed through the entry points a
person uses: a folder scan (the Data page and `data scan`), decoding into the cache, and a zip
upload. Each file ends with a reason in the scan report or a picture; each zip with one clear
message and nothing written. The unit tests of each module (test_images, test_data, test_archive,
test_cli) go into the details; this module holds the whole list in one place."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from core import archive, cache, data
from core.data import DataError
from tests import imagefiles, zipfiles
from tests.conftest import make_class_folders

# file name in class "cats" -> (maker, words its scan reason must hold; None: a usable picture)
FILES = {
    "truncated.jpg": (imagefiles.truncated_jpeg, "truncated"),
    "text.jpg": (imagefiles.text_as_jpg, "not an image"),
    "zero.jpg": (imagefiles.zero_bytes, "empty"),
    "huge.png": (imagefiles.huge_header_png, "too large"),
    "tiny.png": (imagefiles.tiny, "too small"),
    "postscript.jpg": (imagefiles.eps_as, "not a supported image format (EPS)"),
    "pcx.png": (imagefiles.saved_as("PCX"), "not a supported image format (PCX)"),
    "photo.heic": (imagefiles.ftyp_file, "not a supported image format (HEIC)"),
    "drawing.svg": (imagefiles.svg, "not a supported image format (SVG)"),
    "motion.MP.jpg": (imagefiles.jpeg_with_trailer, None),  # a phone "motion photo"
    "pair.mpo": (imagefiles.mpo, None),
    "rgba.png": (imagefiles.rgba_png, None),
    "gray16.png": (imagefiles.png16, None),
    "cmyk.jpg": (imagefiles.cmyk_jpeg, None),
    "rotated.jpg": (imagefiles.exif_rotated_jpeg, None),
}


def test_every_bad_file_is_reported_and_every_odd_picture_is_used(tmp_path, workspace):
    root = make_class_folders(tmp_path / "pets", {"cats": 4, "dogs": 4})
    for name, (make, _) in FILES.items():
        make(root / "cats" / name)
    index = data.scan(root)
    reasons = {p.path: p.reason for p in index.problems}
    for name, (_, words) in FILES.items():
        rel = f"cats/{name}"
        if words is None:
            assert rel in index.paths, (rel, reasons.get(rel))
        else:
            assert words in reasons[rel], (rel, reasons.get(rel))
            assert "\n" not in reasons[rel]
    split = data.make_split(index, data.SplitSpec("fractions", 1.0, 0.0, 0.0))
    arrays = cache.split_arrays(split, "train", (32, 32), workspace=workspace)
    assert not arrays.failed and len(arrays) == 8 + sum(w is None for _, w in FILES.values())
    assert np.asarray(arrays.images).shape[1:] == (32, 32, 3)


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (24, 24), (10, 200, 30)).save(buf, "PNG")
    return buf.getvalue()


PNG = _png()
ZIPS = {
    "not a zip": lambda: b"this is not a zip at all",
    "name flagged UTF-8 but not UTF-8": lambda: zipfiles.invalid_utf8_flagged(PNG),
    "encrypted member": lambda: zipfiles.encrypted(PNG),
    "AES member": lambda: zipfiles.aes_encrypted(PNG),
    "unknown compression": lambda: zipfiles.compressed_with(98, PNG),
    "damaged deflate data": lambda: zipfiles.damaged_deflate(PNG),
    "wrong CRC": lambda: zipfiles.bad_crc(PNG),
    "cut-off stream": lambda: zipfiles.truncated_stream(PNG),
    "over-long name": lambda: zipfiles.build([zipfiles.Member("pets/" + "n" * 300 + ".png", PNG)]),
    "file and folder of one name": lambda: zipfiles.build(
        [zipfiles.Member("pets/a", PNG), zipfiles.Member("pets/a/b.png", PNG)]
    ),
    "a million folders claimed": lambda: zipfiles.claims_entries(1_000_000, zip64=True),
    "path traversal": lambda: zipfiles.build([zipfiles.Member("../evil.png", PNG)]),
}


@pytest.mark.parametrize("kind", list(ZIPS))
def test_every_bad_zip_is_one_message_and_nothing_is_written(tmp_path, kind):
    datasets = tmp_path / "datasets"
    datasets.mkdir()
    with pytest.raises(DataError) as e:
        archive.extract_zip(ZIPS[kind](), datasets, "pets")
    assert str(e.value) and "\n" not in str(e.value)
    assert list(datasets.iterdir()) == []  # no dataset, no temp folder


def test_zip_names_in_a_legacy_code_page_come_out_readable(tmp_path):
    raw = zipfiles.legacy_names({"Käse/bild1.png": PNG, "Käse/bild2.png": PNG, "Öl/b.png": PNG}, "cp1252")
    folder = archive.extract_zip(raw, tmp_path, "food")
    assert sorted(p.name for p in folder.iterdir()) == ["Käse", "Öl"]
    with zipfile.ZipFile(io.BytesIO(raw)) as z:  # what Python alone makes of those names
        assert "Käse/bild1.png" not in z.namelist()  # cp437 turns it into "KΣse/bild1.png"
