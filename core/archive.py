"""Unpack an uploaded zip of images safely: no path traversal, no links, size and count caps."""

from __future__ import annotations

import io
import os
import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from core.data import DataError, check_name
from core.workspace import make_temp_dir

MAX_TOTAL_BYTES = 4 * 1024**3  # uncompressed
MAX_FILES = 100_000
MAX_RATIO = 200  # uncompressed/compressed per member: a zip bomb, not a photo


def _safe_member_path(name: str) -> PurePosixPath | None:
    """The member's relative path, or None when it must be skipped (macOS metadata)."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise DataError(f"the zip holds an unsafe path ({name!r}); nothing was extracted")
    if not path.parts or path.parts[0] == "__MACOSX" or path.name.startswith("._"):
        return None
    return path


def extract_zip(
    source: str | os.PathLike | bytes | BinaryIO,
    dest_parent: str | os.PathLike,
    name: str,
    max_total_bytes: int = MAX_TOTAL_BYTES,
    max_files: int = MAX_FILES,
) -> Path:
    """Extract into dest_parent/name and return that folder; all checks run before any write.

    A zip holding a single top-level folder is unwrapped, so ``cats/`` and ``dogs/`` end up
    directly in the dataset folder. An existing dataset of that name is never touched.
    """
    name = check_name(name, "dataset name")
    dest = Path(dest_parent) / name
    if dest.exists():
        raise DataError(f"a dataset named '{name}' already exists; choose another name")
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    try:
        archive = zipfile.ZipFile(source)
    except zipfile.BadZipFile as e:
        raise DataError(f"not a valid zip file ({e})") from e
    with archive:
        members = []
        total = 0
        for info in archive.infolist():
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise DataError(f"the zip holds a symbolic link ({info.filename}); nothing was extracted")
            path = _safe_member_path(info.filename)
            if path is None or info.is_dir():
                continue
            total += info.file_size
            if (
                info.compress_size
                and info.file_size / info.compress_size > MAX_RATIO
                and info.file_size > 1 << 20
            ):
                raise DataError(
                    f"{info.filename} expands {info.file_size // info.compress_size}x; refusing a zip bomb"
                )
            members.append((info, path))
        if not members:
            raise DataError("the zip holds no files")
        if len(members) > max_files:
            raise DataError(f"the zip holds {len(members)} files; the limit is {max_files}")
        if total > max_total_bytes:
            raise DataError(
                f"the zip unpacks to {total / 1e9:.1f} GB; the limit is {max_total_bytes / 1e9:.1f} GB"
            )
        tops = {p.parts[0] for _, p in members}
        strip = len(tops) == 1 and all(len(p.parts) > 1 for _, p in members)
        Path(dest_parent).mkdir(parents=True, exist_ok=True)
        tmp = make_temp_dir(dest_parent, name)
        try:
            for info, path in members:
                rel = PurePosixPath(*path.parts[1:]) if strip else path
                target = tmp.joinpath(*rel.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
            os.rename(tmp, dest)
        except zipfile.BadZipFile as e:
            shutil.rmtree(tmp, ignore_errors=True)
            raise DataError(f"the zip is damaged ({e})") from e
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return dest
