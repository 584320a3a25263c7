"""core.zipdir: the entry count is checked from the end record on, before zipfile reads anything."""

from __future__ import annotations

import zipfile

import pytest

from core.archive import extract_zip
from tests import zipfiles
from tests.zipfiles import Member


@pytest.fixture
def no_zipfile(monkeypatch):
    """Fail if zipfile.ZipFile is constructed (it would read the whole central directory)."""

    def boom(*args, **kwargs):
        raise AssertionError("zipfile.ZipFile was built")

    monkeypatch.setattr(zipfile, "ZipFile", boom)


def test_entry_count_is_checked_before_zipfile_reads_the_directory(tmp_path, no_zipfile):
    # An end record (ZIP64) claiming five million entries: refused from the last 98 bytes.
    zipfiles.refused(
        tmp_path, zipfiles.claims_entries(5_000_000, zip64=True), "5,000,000 entries.*limit is 100,000"
    )
    zipfiles.refused(
        tmp_path, zipfiles.claims_entries(60_000), "60,000 entries.*limit is 1,000", max_files=1000
    )
    # Empty folders count like files.
    zipfiles.refused(tmp_path, zipfiles.many_folders(6, with_file=b"x"), "7 entries.*limit is 5", max_files=5)


def test_an_end_record_understating_the_count_is_caught_while_walking(tmp_path, no_zipfile):
    members = [Member(f"d{i}/", method=zipfiles.STORED) for i in range(10)]
    zipfiles.refused(tmp_path, zipfiles.build(members, claimed_entries=2), "more than 5 entries", max_files=5)


def test_folders_within_the_entry_limit_are_fine(tmp_path):
    png = zipfiles.png_bytes(tmp_path)
    out = extract_zip(zipfiles.many_folders(4, with_file=png), tmp_path / "datasets", "d", max_files=5)
    assert zipfiles.files_under(out) == {"x.png": png}  # the single top folder is unwrapped
