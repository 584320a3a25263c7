"""core.archive: safe zip extraction."""

from __future__ import annotations

import io
import stat
import zipfile

import pytest

from core.archive import extract_zip
from core.data import DataError, scan
from tests import imagefiles


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
