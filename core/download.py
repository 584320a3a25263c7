"""Public datasets in one step, for people who are online: download (resuming a partial file),
check, unpack safely (core.archive) and hand back the folder to scan.

keras.utils.get_file is not used: it cannot resume a partial download and reports progress only
as a terminal bar, and an 800 MB archive over a slow line needs both.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core import archive
from core.data import DataError
from core.workspace import subdir

CHUNK = 1 << 20


@dataclass(frozen=True)
class Source:
    """A downloadable dataset: where it is, what it weighs, and where its class folders sit."""

    name: str
    title: str
    url: str
    url_env: str  # environment variable that overrides the URL (a mirror, or a test server)
    approx_mb: int
    folder_in_zip: str  # the folder of the zip that holds one folder per class
    sha256: str | None = None  # checked when known
    note: str = ""

    def resolved_url(self, url: str | None = None) -> str:
        return url or os.environ.get(self.url_env) or self.url


SOURCES: dict[str, Source] = {
    "dogs-vs-cats": Source(
        name="dogs-vs-cats",
        title="Dogs vs. Cats (Microsoft's copy of the Kaggle photos)",
        url="https://download.microsoft.com/download/3/E/1/3E1C3F21-ECDB-4869-8368-6DEBA77B919F/"
        "kagglecatsanddogs_5340.zip",
        url_env="CONVNET_DOGS_VS_CATS_URL",
        approx_mb=787,
        folder_in_zip="PetImages",
        note="About 25,000 photos in Cat/ and Dog/; keras-io's example drops 1,590 that do not decode, "
        "and the scan lists every one it leaves out.",
    ),
}


def _source(name: str) -> Source:
    if name not in SOURCES:
        raise DataError(f"unknown dataset '{name}'; available: {', '.join(SOURCES)}")
    return SOURCES[name]


def download(
    url: str,
    target: Path,
    progress: Callable[[int, int], None] | None = None,
    sha256: str | None = None,
    timeout: float = 30,
) -> Path:
    """Fetch `url` to `target`, continuing `target`.part when an earlier try was cut off (HTTP
    Range). The received size must match what the server announced, and the SHA-256 when given;
    otherwise the partial file is removed and DataError says why. An existing `target` is reused."""
    if target.exists():
        return target
    part = target.with_name(target.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    host = urllib.parse.urlsplit(url).netloc or url
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # nothing past what we have: the part is the whole file
            response = None
        else:
            raise DataError(f"the server at {host} refused the download (HTTP {e.code} {e.reason})") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise DataError(
            f"could not reach {host} ({reason}). This needs internet; offline, download {url} "
            "on a machine that has it and add the zip with 'Upload a zip' on the Data page."
        ) from None
    if response is not None:
        with response:
            resumed = response.status == 206
            if not resumed:
                have = 0  # the server sends the whole file: start again
            length = response.headers.get("Content-Length")
            total = have + int(length) if length is not None else 0
            done = have
            try:
                with open(part, "ab" if resumed else "wb") as out:
                    while chunk := response.read(CHUNK):
                        out.write(chunk)
                        done += len(chunk)
                        if progress:
                            progress(done, max(total, done))
            except (OSError, http.client.HTTPException) as e:  # IncompleteRead, reset, timeout
                raise DataError(
                    f"the download stopped at {done / 1e6:.0f} MB ({getattr(e, 'reason', e)}); "
                    "try again: it continues where it stopped"
                ) from None
        if total and part.stat().st_size != total:
            raise DataError(
                f"the download stopped at {part.stat().st_size / 1e6:.0f} of {total / 1e6:.0f} MB; "
                "try again: it continues where it stopped"
            )
    if sha256:
        with open(part, "rb") as f:
            digest = hashlib.file_digest(f, "sha256")
        if digest.hexdigest() != sha256.lower():
            part.unlink(missing_ok=True)
            raise DataError(f"the file from {host} is not the expected one (SHA-256 differs); it was removed")
    os.replace(part, target)
    return target


def get(
    name: str,
    workspace: str | os.PathLike | None = None,
    url: str | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> Path:
    """The folder of class folders of dataset `name`, downloaded and unpacked into the workspace
    on first use (workspace/downloads/<name>.zip, workspace/datasets/<name>/)."""
    source = _source(name)
    dataset = subdir("datasets", workspace) / source.name
    if dataset.is_dir():
        return class_root(dataset)
    zipped = download(
        source.resolved_url(url),
        subdir("downloads", workspace) / f"{source.name}.zip",
        (lambda done, total: progress("downloading", done, total)) if progress else None,
        source.sha256,
    )
    if progress:
        progress("unpacking", 0, 1)
    folder = archive.extract_zip(zipped, dataset.parent, source.name)
    zipped.unlink(missing_ok=True)  # unpacked: the archive is not needed any more
    if progress:
        progress("unpacking", 1, 1)
    return class_root(folder)


def class_root(folder: Path) -> Path:
    """The folder holding the class folders of a downloaded dataset (the zip's PetImages/); any
    other folder as it is."""
    source = SOURCES.get(folder.name)
    inner = folder / source.folder_in_zip if source else folder
    return inner if inner.is_dir() else folder
