"""core.archive: safe zip extraction."""

from __future__ import annotations

import io
import stat
import zipfile

import pytest

from core.archive import extract_zip
from core.data import DataError, scan
from tests import zipfiles
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


def test_extracts_and_unwraps_single_top_folder(tmp_path):
    data = _zip(
        {
            "pets/cats/a.png": zipfiles.png_bytes(tmp_path, 1),
            "pets/dogs/b.png": zipfiles.png_bytes(tmp_path, 2),
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
    data = _zip({"ok/x.png": zipfiles.png_bytes(tmp_path), bad: b"x"})
    with pytest.raises(DataError, match="unsafe path"):
        extract_zip(data, tmp_path / "datasets", "d")
    assert not (tmp_path / "evil.png").exists()
    assert not (tmp_path / "datasets" / "d").exists()


def test_symlinks_are_refused(tmp_path):
    with pytest.raises(DataError, match="symbolic link"):
        extract_zip(
            _zip({"a/x.png": zipfiles.png_bytes(tmp_path)}, links={"a/link": "/etc/passwd"}), tmp_path, "d"
        )


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
        extract_zip(_zip({"a/x.png": zipfiles.png_bytes(tmp_path)}), tmp_path, "d")
    assert (tmp_path / "d" / "keep.txt").read_text() == "mine"


# --- names ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "pets/" + "a" * 252 + ".png",  # one name of 256 bytes
        "pets/" + "ä" * 126 + ".png",  # 130 characters but 256 bytes
        "pets/" + "/".join(["d" * 200] * 21) + "/x.png",  # every part fits, the path (4226 bytes) not
    ],
)
def test_over_long_names_are_refused(tmp_path, name):
    data = zipfiles.build([Member("pets/ok.png", zipfiles.png_bytes(tmp_path)), Member(name, b"x")])
    zipfiles.refused(tmp_path, data, "longer than")


@pytest.mark.parametrize("file_first", [True, False])
def test_a_file_and_a_folder_with_one_name_are_refused(tmp_path, file_first):
    png = zipfiles.png_bytes(tmp_path)
    members = [Member("pets/cats", b"x"), Member("pets/cats/a.png", png)]
    data = zipfiles.build(members if file_first else members[::-1])
    zipfiles.refused(tmp_path, data, "both a file and a folder named cats")


def test_duplicate_names(tmp_path):
    a, b = zipfiles.png_bytes(tmp_path, 1), zipfiles.png_bytes(tmp_path, 2)
    # the same file twice (e.g. appended to a zip again) is extracted once
    out = extract_zip(
        zipfiles.build(
            [Member("pets/cats/a.png", a), Member("pets/dogs/b.png", b), Member("pets/cats/a.png", a)]
        ),
        tmp_path / "datasets",
        "same",
    )
    assert zipfiles.files_under(out) == {"cats/a.png": a, "dogs/b.png": b}
    # two different files under one name: refused rather than one silently overwriting the other
    (tmp_path / "datasets").rename(tmp_path / "done")
    data = zipfiles.build(
        [Member("pets/cats/a.png", a), Member("pets/dogs/b.png", b), Member("pets/cats/a.png", b)]
    )
    zipfiles.refused(tmp_path, data, "two different files named pets/cats/a.png")
    # names that differ only in case are different files on Linux
    out = extract_zip(
        zipfiles.build([Member("pets/Cat.png", a), Member("pets/cat.png", b)]), tmp_path / "datasets", "case"
    )
    assert zipfiles.files_under(out) == {"Cat.png": a, "cat.png": b}


# --- what cannot be read -------------------------------------------------------------------------


@pytest.mark.parametrize("make", [zipfiles.encrypted, zipfiles.aes_encrypted])
def test_encrypted_members_are_refused(tmp_path, make):
    zipfiles.refused(tmp_path, make(zipfiles.png_bytes(tmp_path)), "password-protected")


@pytest.mark.parametrize(
    ("method", "called"), [(9, "Deflate64"), (98, "PPMd"), (93, "Zstandard"), (77, "unknown")]
)
def test_unreadable_compression_is_refused(tmp_path, method, called):
    err = zipfiles.refused(
        tmp_path, zipfiles.compressed_with(method, zipfiles.png_bytes(tmp_path)), "cannot be read here"
    )
    assert called in str(err) and "pets/b.png" in str(err)


def test_bzip2_members_extract(tmp_path):
    png = zipfiles.png_bytes(tmp_path)
    data = zipfiles.build([Member("pets/a.png", png, method=zipfiles.BZIP2)])
    assert zipfiles.files_under(extract_zip(data, tmp_path / "datasets", "d")) == {"a.png": png}


@pytest.mark.parametrize("make", [zipfiles.damaged_deflate, zipfiles.bad_crc, zipfiles.truncated_stream])
def test_damaged_member_data_is_a_clear_error(tmp_path, make):
    # pets/a.png is written to the temporary folder first; that folder must go too.
    zipfiles.refused(tmp_path, make(zipfiles.png_bytes(tmp_path)), "damaged: pets/b.png cannot be read")
