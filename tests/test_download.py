"""core.download against a local HTTP server on 127.0.0.1 (Range requests honoured) serving a
small zip the test builds: download, resume, size check, offline message, scan report."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from core import data, download
from core.data import DataError
from tests.conftest import RangeServer, pet_zip, run_cli


@pytest.fixture
def server(tmp_path) -> Iterator[RangeServer]:
    s = RangeServer(pet_zip(tmp_path))
    yield s
    s.close()


def test_get_downloads_unpacks_and_the_scan_lists_the_broken_photos(server, workspace):
    seen = []
    folder = download.get("dogs-vs-cats", url=server.url, progress=lambda *a: seen.append(a))
    assert folder == workspace / "datasets" / "dogs-vs-cats" / "PetImages"
    index = data.scan(folder)
    assert index.classes == ["Cat", "Dog"] and len(index) == 12
    assert sorted(p.path for p in index.problems) == ["Cat/666.jpg", "Dog/11702.jpg"]
    assert seen[-1] == ("unpacking", 1, 1) and any(s[0] == "downloading" for s in seen)
    assert not list((workspace / "downloads").iterdir())  # the archive is removed once unpacked
    assert download.get("dogs-vs-cats", url="http://127.0.0.1:9/never") == folder  # already here


def test_a_cut_download_resumes_where_it_stopped(server, workspace):
    half = len(server.body) // 2
    server.cut_at = half
    with pytest.raises(DataError, match="try again: it continues where it stopped"):
        download.get("dogs-vs-cats", url=server.url)
    part = workspace / "downloads" / "dogs-vs-cats.zip.part"
    assert part.stat().st_size == half
    folder = download.get("dogs-vs-cats", url=server.url)
    assert server.ranges == [None, f"bytes={half}-"]  # the second request asked only for the rest
    assert len(data.scan(folder)) == 12


def test_a_wrong_checksum_removes_the_file(server, tmp_path):
    target = tmp_path / "pets.zip"
    with pytest.raises(DataError, match="SHA-256 differs"):
        download.download(server.url, target, sha256="0" * 64)
    assert not target.exists() and not (tmp_path / "pets.zip.part").exists()


def test_offline_is_a_message_that_says_what_to_do(workspace):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DataError, match="Upload a zip") as e:
        download.get("dogs-vs-cats", url=f"http://127.0.0.1:{port}/pets.zip")
    assert "needs internet" in str(e.value) and "\n" not in str(e.value)
    assert not (workspace / "datasets" / "dogs-vs-cats").exists()


def test_the_url_can_be_set_by_the_operator(monkeypatch):
    source = download.SOURCES["dogs-vs-cats"]
    assert source.resolved_url().startswith("https://download.microsoft.com/")
    monkeypatch.setenv(source.url_env, "http://127.0.0.1:1/mirror.zip")
    assert source.resolved_url() == "http://127.0.0.1:1/mirror.zip"
    with pytest.raises(DataError, match="unknown dataset"):
        download.get("imagenet")


def test_cli_data_get_downloads_and_prints_the_scan(server, workspace):
    out = run_cli("data", "get", "dogs-vs-cats", "--url", server.url, workspace=workspace)
    assert out.returncode == 0, out.stderr
    assert "images: 12" in out.stdout and "left out: 2" in out.stdout and "Cat/666.jpg" in out.stdout
    offline = run_cli("data", "get", "dogs-vs-cats", "--url", "http://127.0.0.1:9/x.zip", workspace=workspace)
    assert offline.returncode == 0  # already downloaded: nothing is fetched again
    other = workspace.parent / "other"
    failed = run_cli("data", "get", "dogs-vs-cats", "--url", "http://127.0.0.1:9/x.zip", workspace=other)
    assert failed.returncode == 2 and failed.stderr.startswith("error: could not reach 127.0.0.1:9")
    assert len(failed.stderr.strip().splitlines()) == 1
