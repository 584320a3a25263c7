"""core.zipnames: entry names as text (UTF-8 flag, Unicode Path field, UTF-8, one legacy code page)."""

from __future__ import annotations

import unicodedata

import pytest

from core.archive import extract_zip
from core.data import scan
from core.zipnames import legacy_encoding
from tests import zipfiles
from tests.zipfiles import Member


def test_name_marked_utf8_but_not_utf8_is_a_clear_error(tmp_path):
    # zipfile itself raises UnicodeDecodeError while reading the central directory.
    err = zipfiles.refused(
        tmp_path,
        zipfiles.invalid_utf8_flagged(zipfiles.png_bytes(tmp_path)),
        "marked as UTF-8 but is not valid",
    )
    assert "caf\\xe9\\xff.png" in str(err)


@pytest.mark.parametrize(
    ("encoding", "names"),
    [
        ("utf-8", ["Käse/bild.png", "Brötchen/b.png"]),  # UTF-8 without the flag (macOS and many tools)
        ("utf-8", ["Ka\u0308se/bild.png", "Bro\u0308tchen/b.png"]),  # macOS: decomposed accents
        ("cp850", ["Käse/bild.png", "Brötchen/b.png"]),  # Windows Explorer, Western Europe
        ("cp437", ["Käse/bild.png", "Brötchen/b.png"]),  # Windows Explorer, US
        ("cp1252", ["Käse/bild.png", "Brötchen/b.png"]),  # Windows ANSI
        ("cp1252", ["Crème brûlée/a.png", "Ñandú/b.png"]),
        ("cp932", ["猫/写真.png", "いぬ/b.png"]),  # Japanese Windows
        ("cp932", ["ネコ/IMG_0001.png", "犬/データ.png"]),
    ],
)
def test_legacy_names_are_recovered(tmp_path, encoding, names):
    pngs = [zipfiles.png_bytes(tmp_path, 1), zipfiles.png_bytes(tmp_path, 2)]
    data = zipfiles.legacy_names(dict(zip(names, pngs)), encoding)
    out = extract_zip(data, tmp_path / "datasets", "d")
    expected = [unicodedata.normalize("NFC", n) for n in names]
    assert zipfiles.files_under(out) == dict(zip(expected, pngs))
    assert set(scan(out).class_counts()) == {n.split("/")[0] for n in expected}


def test_unicode_path_extra_field_gives_the_real_name(tmp_path):
    png = zipfiles.png_bytes(tmp_path)
    data = zipfiles.build(
        [
            # WinZip/7-Zip style: '?' where the code page had no character, the real name beside it
            Member(b"?/a.png", png, flags=0, extra=zipfiles.unicode_path_field(b"?/a.png", "猫/a.png")),
            # a field written for another raw name (renamed since) is ignored
            Member(b"dog/b.png", png, flags=0, extra=zipfiles.unicode_path_field(b"old/b.png", "犬/b.png")),
        ]
    )
    out = extract_zip(data, tmp_path / "datasets", "d")
    assert sorted(zipfiles.files_under(out)) == ["dog/b.png", "猫/a.png"]


def test_nul_in_a_name_is_refused(tmp_path):
    # zipfile would silently cut the name at the NUL byte.
    png = zipfiles.png_bytes(tmp_path)
    data = zipfiles.build([Member("pets/a.png", png), Member(b"pets/b.png\x00.exe", png, flags=0)])
    zipfiles.refused(tmp_path, data, "NUL byte")


def test_legacy_encoding_names_each_code_page():
    assert legacy_encoding(["Käse".encode("cp850"), "Brötchen".encode("cp850")]) == "cp850"
    assert legacy_encoding(["Käse".encode("cp1252"), "Brötchen".encode("cp1252")]) == "cp1252"
    assert legacy_encoding(["猫".encode("cp932")]) == "cp932"
    assert legacy_encoding(["Käse".encode()]) == "utf-8"
