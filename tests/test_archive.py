"""core.archive: safe zip extraction."""

from __future__ import annotations

import io
import stat
import unicodedata
import zipfile

import pytest

from core.archive import extract_zip
from core.data import DataError, scan
from tests import imagefiles, zipfiles
from tests.zipfiles import Member


def _zip(entries: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            z.writestr(info, target)
    return buf.getvalue()


def _png(tmp_path, seed=0) -> bytes:
    return imagefiles.noisy(tmp_path / f"src{seed}.png", seed=seed).read_bytes()


def _files(root) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _refused(tmp_path, data: bytes, match: str, **limits) -> DataError:
    """extract_zip refuses `data` with one DataError and writes nothing: no dataset, no temp folder."""
    parent = tmp_path / "datasets"
    with pytest.raises(DataError, match=match) as caught:
        extract_zip(data, parent, "d", **limits)
    assert not parent.exists() or list(parent.iterdir()) == []
    return caught.value


def test_extracts_and_unwraps_single_top_folder(tmp_path):
    data = _zip(
        {
            "pets/cats/a.png": _png(tmp_path, 1),
            "pets/dogs/b.png": _png(tmp_path, 2),
            "__MACOSX/pets/._a.png": b"junk",
        }
    )
    out = extract_zip(data, tmp_path / "datasets", "pets")
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "cats/a.png",
        "dogs/b.png",
    ]
    assert scan(out).class_counts() == {"cats": 1, "dogs": 1}


@pytest.mark.parametrize("bad", ["../evil.png", "/abs/evil.png", "a/../../evil.png"])
def test_path_traversal_is_refused_before_writing(tmp_path, bad):
    data = _zip({"ok/x.png": _png(tmp_path), bad: b"x"})
    with pytest.raises(DataError, match="unsafe path"):
        extract_zip(data, tmp_path / "datasets", "d")
    assert not (tmp_path / "evil.png").exists()
    assert not (tmp_path / "datasets" / "d").exists()


def test_symlinks_are_refused(tmp_path):
    with pytest.raises(DataError, match="symbolic link"):
        extract_zip(_zip({"a/x.png": _png(tmp_path)}, links={"a/link": "/etc/passwd"}), tmp_path, "d")


def test_caps_and_bad_zips(tmp_path):
    many = _zip({f"c/{i}.png": b"x" for i in range(5)})
    with pytest.raises(DataError, match="limit is 3"):
        extract_zip(many, tmp_path, "d1", max_files=3)
    with pytest.raises(DataError, match="unpacks to"):
        extract_zip(many, tmp_path, "d2", max_total_bytes=2)
    with pytest.raises(DataError, match="not a valid zip"):
        extract_zip(b"PK\x03\x04 definitely not a zip", tmp_path, "d3")
    with pytest.raises(DataError, match="no files"):
        extract_zip(_zip({}), tmp_path, "d4")


def test_existing_dataset_is_never_overwritten(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "keep.txt").write_text("mine")
    with pytest.raises(DataError, match="already exists"):
        extract_zip(_zip({"a/x.png": _png(tmp_path)}), tmp_path, "d")
    assert (tmp_path / "d" / "keep.txt").read_text() == "mine"


# --- names ---------------------------------------------------------------------------------------


def test_name_marked_utf8_but_not_utf8_is_a_clear_error(tmp_path):
    # zipfile itself raises UnicodeDecodeError while reading the central directory.
    err = _refused(
        tmp_path, zipfiles.invalid_utf8_flagged(_png(tmp_path)), "marked as UTF-8 but is not valid"
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
    pngs = [_png(tmp_path, 1), _png(tmp_path, 2)]
    data = zipfiles.legacy_names(dict(zip(names, pngs)), encoding)
    out = extract_zip(data, tmp_path / "datasets", "d")
    expected = [unicodedata.normalize("NFC", n) for n in names]
    assert _files(out) == dict(zip(expected, pngs))
    assert set(scan(out).class_counts()) == {n.split("/")[0] for n in expected}


def test_unicode_path_extra_field_gives_the_real_name(tmp_path):
    png = _png(tmp_path)
    data = zipfiles.build(
        [
            # WinZip/7-Zip style: '?' where the code page had no character, the real name beside it
            Member(b"?/a.png", png, flags=0, extra=zipfiles.unicode_path_field(b"?/a.png", "猫/a.png")),
            # a field written for another raw name (renamed since) is ignored
            Member(b"dog/b.png", png, flags=0, extra=zipfiles.unicode_path_field(b"old/b.png", "犬/b.png")),
        ]
    )
    out = extract_zip(data, tmp_path / "datasets", "d")
    assert sorted(_files(out)) == ["dog/b.png", "猫/a.png"]


def test_nul_in_a_name_is_refused(tmp_path):
    # zipfile would silently cut the name at the NUL byte.
    png = _png(tmp_path)
    data = zipfiles.build([Member("pets/a.png", png), Member(b"pets/b.png\x00.exe", png, flags=0)])
    _refused(tmp_path, data, "NUL byte")


@pytest.mark.parametrize(
    "name",
    [
        "pets/" + "a" * 252 + ".png",  # one name of 256 bytes
        "pets/" + "ä" * 126 + ".png",  # 130 characters but 256 bytes
        "pets/" + "/".join(["d" * 200] * 21) + "/x.png",  # every part fits, the path (4226 bytes) not
    ],
)
def test_over_long_names_are_refused(tmp_path, name):
    data = zipfiles.build([Member("pets/ok.png", _png(tmp_path)), Member(name, b"x")])
    _refused(tmp_path, data, "longer than")


@pytest.mark.parametrize("file_first", [True, False])
def test_a_file_and_a_folder_with_one_name_are_refused(tmp_path, file_first):
    png = _png(tmp_path)
    members = [Member("pets/cats", b"x"), Member("pets/cats/a.png", png)]
    data = zipfiles.build(members if file_first else members[::-1])
    _refused(tmp_path, data, "both a file and a folder named cats")


def test_duplicate_names(tmp_path):
    a, b = _png(tmp_path, 1), _png(tmp_path, 2)
    # the same file twice (e.g. appended to a zip again) is extracted once
    out = extract_zip(
        zipfiles.build(
            [Member("pets/cats/a.png", a), Member("pets/dogs/b.png", b), Member("pets/cats/a.png", a)]
        ),
        tmp_path / "datasets",
        "same",
    )
    assert _files(out) == {"cats/a.png": a, "dogs/b.png": b}
    # two different files under one name: refused rather than one silently overwriting the other
    (tmp_path / "datasets").rename(tmp_path / "done")
    data = zipfiles.build(
        [Member("pets/cats/a.png", a), Member("pets/dogs/b.png", b), Member("pets/cats/a.png", b)]
    )
    _refused(tmp_path, data, "two different files named pets/cats/a.png")
    # names that differ only in case are different files on Linux
    out = extract_zip(
        zipfiles.build([Member("pets/Cat.png", a), Member("pets/cat.png", b)]), tmp_path / "datasets", "case"
    )
    assert _files(out) == {"Cat.png": a, "cat.png": b}


# --- what cannot be read -------------------------------------------------------------------------


@pytest.mark.parametrize("make", [zipfiles.encrypted, zipfiles.aes_encrypted])
def test_encrypted_members_are_refused(tmp_path, make):
    _refused(tmp_path, make(_png(tmp_path)), "password-protected")


@pytest.mark.parametrize(
    ("method", "called"), [(9, "Deflate64"), (98, "PPMd"), (93, "Zstandard"), (77, "unknown")]
)
def test_unreadable_compression_is_refused(tmp_path, method, called):
    err = _refused(tmp_path, zipfiles.compressed_with(method, _png(tmp_path)), "cannot be read here")
    assert called in str(err) and "pets/b.png" in str(err)


def test_bzip2_members_extract(tmp_path):
    png = _png(tmp_path)
    data = zipfiles.build([Member("pets/a.png", png, method=zipfiles.BZIP2)])
    assert _files(extract_zip(data, tmp_path / "datasets", "d")) == {"a.png": png}


@pytest.mark.parametrize("make", [zipfiles.damaged_deflate, zipfiles.bad_crc, zipfiles.truncated_stream])
def test_damaged_member_data_is_a_clear_error(tmp_path, make):
    # pets/a.png is written to the temporary folder first; that folder must go too.
    _refused(tmp_path, make(_png(tmp_path)), "damaged: pets/b.png cannot be read")


# --- entry count -----------------------------------------------------------------------------------


@pytest.fixture
def no_zipfile(monkeypatch):
    """Fail if zipfile.ZipFile is constructed (it would read the whole central directory)."""

    def boom(*args, **kwargs):
        raise AssertionError("zipfile.ZipFile was built")

    monkeypatch.setattr(zipfile, "ZipFile", boom)


def test_entry_count_is_checked_before_zipfile_reads_the_directory(tmp_path, no_zipfile):
    # An end record (ZIP64) claiming five million entries: refused from the last 98 bytes.
    _refused(tmp_path, zipfiles.claims_entries(5_000_000, zip64=True), "5,000,000 entries.*limit is 100,000")
    _refused(tmp_path, zipfiles.claims_entries(60_000), "60,000 entries.*limit is 1,000", max_files=1000)
    # Empty folders count like files.
    _refused(tmp_path, zipfiles.many_folders(6, with_file=b"x"), "7 entries.*limit is 5", max_files=5)


def test_an_end_record_understating_the_count_is_caught_while_walking(tmp_path, no_zipfile):
    members = [Member(f"d{i}/", method=zipfiles.STORED) for i in range(10)]
    _refused(tmp_path, zipfiles.build(members, claimed_entries=2), "more than 5 entries", max_files=5)


def test_folders_within_the_entry_limit_are_fine(tmp_path):
    png = _png(tmp_path)
    out = extract_zip(zipfiles.many_folders(4, with_file=png), tmp_path / "datasets", "d", max_files=5)
    assert _files(out) == {"x.png": png}  # the single top folder is unwrapped
