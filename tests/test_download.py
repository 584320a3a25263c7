"""core.download against a local HTTP server on 127.0.0.1 (Range requests honoured) serving a
small zip the test builds: download, resume, size check, offline message, scan report."""

from __future__ import annotations

import http.server
import io
import re
import socket
import threading
import zipfile
from collections.abc import Iterator

import pytest

from core import data, download
from core.data import DataError
from tests import imagefiles


def _pet_zip(tmp_path) -> bytes:
    """Like Microsoft's archive: PetImages/{Cat,Dog}/N.jpg with some broken files, and loose
    files beside PetImages/."""
    for cls in ("Cat", "Dog"):
        for i in range(6):
            imagefiles.noisy(tmp_path / "src" / cls / f"{i}.jpg", seed=i + (10 if cls == "Dog" else 0))
    imagefiles.zero_bytes(tmp_path / "src" / "Cat" / "666.jpg")
    imagefiles.text_as_jpg(tmp_path / "src" / "Dog" / "11702.jpg")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("readme[1].txt", "Microsoft Cats and Dogs")
        for f in sorted((tmp_path / "src").rglob("*.jpg")):
            z.write(f, f"PetImages/{f.relative_to(tmp_path / 'src')}")
    return buf.getvalue()


class _Server:
    """Serves `body` at /pets.zip; records each request's Range header; can cut a response short."""

    def __init__(self, body: bytes) -> None:
        self.body, self.ranges, self.cut_at = body, [], None
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                if self.path != "/pets.zip":
                    self.send_error(404)
                    return
                wanted = self.headers.get("Range")
                outer.ranges.append(wanted)
                start = int(re.match(r"bytes=(\d+)-", wanted).group(1)) if wanted else 0
                if start >= len(outer.body):
                    self.send_error(416)
                    return
                self.send_response(206 if wanted else 200)
                self.send_header("Content-Length", str(len(outer.body) - start))
                self.end_headers()
                payload = outer.body[start:]
                if outer.cut_at is not None:
                    payload, outer.cut_at = payload[: outer.cut_at], None
                self.wfile.write(payload)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/pets.zip"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(tmp_path) -> Iterator[_Server]:
    s = _Server(_pet_zip(tmp_path))
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
    from tests.test_cli import run_cli

    out = run_cli("data", "get", "dogs-vs-cats", "--url", server.url, workspace=workspace)
    assert out.returncode == 0, out.stderr
    assert "images: 12" in out.stdout and "left out: 2" in out.stdout and "Cat/666.jpg" in out.stdout
    offline = run_cli("data", "get", "dogs-vs-cats", "--url", "http://127.0.0.1:9/x.zip", workspace=workspace)
    assert offline.returncode == 0  # already downloaded: nothing is fetched again
    other = workspace.parent / "other"
    failed = run_cli("data", "get", "dogs-vs-cats", "--url", "http://127.0.0.1:9/x.zip", workspace=other)
    assert failed.returncode == 2 and failed.stderr.startswith("error: could not reach 127.0.0.1:9")
    assert len(failed.stderr.strip().splitlines()) == 1
