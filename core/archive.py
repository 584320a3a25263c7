"""Unpack an uploaded zip of images safely.

Everything is checked before anything is written, and every refusal is ONE `DataError` with a
message for people; a refused zip leaves nothing behind (no dataset folder, no temporary folder):

- Entry count: checked by core.zipdir before `zipfile` builds its member list. Every entry
  counts against `max_files`: files, folders and macOS metadata alike.
- Names: see `core.zipnames.decode_names` (UTF-8 flag, Info-ZIP Unicode Path field, UTF-8
  without the flag, else one guessed legacy code page for the whole zip); all NFC-normalised.
- Refused: absolute paths, '..', drive letters, NUL bytes in names, symbolic links, encrypted
  members, compression methods this Python cannot read, a name part over 255 bytes or a path over
  4096 bytes, a file that is also a folder ('a' and 'a/b.jpg'), the same name twice with different
  content (identical copies are extracted once; names differing only in case are both kept), more
  than `max_total_bytes` in all, a large member expanding over MAX_RATIO times.
- Damaged data found while extracting (a bad deflate stream, a CRC mismatch, a local header that
  does not match the directory) ends the same way: one `DataError`, the temporary folder removed.

The dataset is built in a temporary folder (core.workspace.make_temp_dir) and renamed into place.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import shutil
import stat
import struct
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from core.errors import DataError
from core.workspace import check_name, make_temp_dir
from core.zipdir import read_directory
from core.zipnames import decode_names

try:
    import bz2
except ImportError:  # pragma: no cover - Python built without bz2
    bz2 = None
try:
    import lzma
except ImportError:  # pragma: no cover - Python built without lzma
    lzma = None

MAX_TOTAL_BYTES = 4 * 1024**3  # uncompressed
MAX_FILES = 100_000  # entries of any kind: files, folders, metadata
MAX_RATIO = 200  # uncompressed/compressed per member: a zip bomb, not a photo
MAX_NAME_BYTES = 255  # one file or folder name (NAME_MAX on Linux filesystems)
MAX_PATH_BYTES = 4096  # a whole path inside the dataset (PATH_MAX)

_ENCRYPTED_FLAGS = 0x1 | 0x40  # traditional PKWARE encryption, strong encryption
_PATCHED_FLAG = 0x20
_AES = 99
_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED}
if bz2 is not None:
    _METHODS.add(zipfile.ZIP_BZIP2)
if lzma is not None:
    _METHODS.add(zipfile.ZIP_LZMA)
_METHOD_NAMES = {
    1: "Shrink",
    2: "Reduce",
    3: "Reduce",
    4: "Reduce",
    5: "Reduce",
    6: "Implode",
    9: "Deflate64",
    10: "PKWARE Implode",
    12: "BZIP2",
    14: "LZMA",
    18: "IBM TERSE",
    19: "IBM LZ77",
    93: "Zstandard",
    94: "MP3",
    95: "XZ",
    96: "JPEG",
    97: "WavPack",
    98: "PPMd",
}
# What reading a member can raise when the zip is damaged or odd (zlib.error: bad deflate data,
# BadZipFile: CRC or header mismatch, EOFError: cut short, OSError: bad bzip2 data, ...).
_READ_ERRORS: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    OSError,
    ValueError,
    NotImplementedError,
    RuntimeError,
    struct.error,
) + ((lzma.LZMAError,) if lzma is not None else ())


def _safe_member_path(name: str) -> PurePosixPath | None:
    """The member's relative path, or None when it must be skipped (macOS metadata)."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise DataError(f"the zip holds an unsafe path ({name!r}); nothing was extracted")
    if not path.parts or path.parts[0] == "__MACOSX" or path.name.startswith("._"):
        return None
    return path


def _check_member(info: zipfile.ZipInfo, name: str) -> None:
    """Refuse what cannot be read: encryption, unknown compression, zip bombs."""
    if info.flag_bits & _ENCRYPTED_FLAGS or info.compress_type == _AES:
        raise DataError(
            f"the zip is password-protected ({name}); unzip it and zip it again without a password. "
            "Nothing was extracted"
        )
    if info.flag_bits & _PATCHED_FLAG or info.compress_type not in _METHODS:
        method = _METHOD_NAMES.get(info.compress_type, "an unknown method")
        what = "patched data" if info.flag_bits & _PATCHED_FLAG else f"{method} ({info.compress_type})"
        raise DataError(
            f"{name} is compressed with {what}, which cannot be read here; zip the folder again with "
            "ordinary (Deflate) compression. Nothing was extracted"
        )
    if info.compress_size and info.file_size / info.compress_size > MAX_RATIO and info.file_size > 1 << 20:
        raise DataError(f"{name} expands {info.file_size // info.compress_size}x; refusing a zip bomb")


def _check_length(rel: PurePosixPath) -> None:
    for part in rel.parts:
        if len(os.fsencode(part)) > MAX_NAME_BYTES:
            raise DataError(
                f"the zip holds a name longer than {MAX_NAME_BYTES} bytes ('{part[:40]}...'); "
                "nothing was extracted"
            )
    if len(os.fsencode(rel.as_posix())) > MAX_PATH_BYTES:
        raise DataError(
            f"the zip holds a path longer than {MAX_PATH_BYTES} bytes ('{rel.as_posix()[:40]}...'); "
            "nothing was extracted"
        )


def _plan(
    entries: list[tuple[zipfile.ZipInfo, str]], max_total_bytes: int
) -> list[tuple[zipfile.ZipInfo, PurePosixPath, str]]:
    """(member, relative target, name in the zip) for every file to write, after every check."""
    members = []
    for info, name in entries:
        if stat.S_ISLNK(info.external_attr >> 16):
            raise DataError(f"the zip holds a symbolic link ({name}); nothing was extracted")
        path = _safe_member_path(name)
        if path is None or name.replace("\\", "/").endswith("/"):
            continue
        _check_member(info, name)
        members.append((info, path, name))
    if not members:
        raise DataError("the zip holds no files")
    tops = {p.parts[0] for _, p, _ in members}
    strip = len(tops) == 1 and all(len(p.parts) > 1 for _, p, _ in members)
    plan = []
    seen: dict[str, zipfile.ZipInfo] = {}
    for info, path, name in members:
        rel = PurePosixPath(*path.parts[1:]) if strip else path
        _check_length(rel)
        key = rel.as_posix()
        if key in seen:
            if (seen[key].CRC, seen[key].file_size) == (info.CRC, info.file_size):
                continue  # the same file twice: extract it once
            raise DataError(f"the zip holds two different files named {name}; nothing was extracted")
        seen[key] = info
        plan.append((info, rel, name))
    folders = {parent.as_posix() for _, rel, _ in plan for parent in rel.parents if parent.parts}
    clashes = sorted(folders & seen.keys())
    if clashes:
        raise DataError(f"the zip holds both a file and a folder named {clashes[0]}; nothing was extracted")
    total = sum(info.file_size for info, _, _ in plan)
    if total > max_total_bytes:
        raise DataError(
            f"the zip unpacks to {total / 1e9:.1f} GB; the limit is {max_total_bytes / 1e9:.1f} GB"
        )
    return plan


def _copy_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, target: Path) -> None:
    def damaged(e: BaseException) -> DataError:
        return DataError(f"the zip is damaged: {name} cannot be read ({e}); nothing was extracted")

    try:
        src = archive.open(info)
    except (*_READ_ERRORS, UnicodeDecodeError) as e:
        raise damaged(e) from e
    with src, open(target, "xb") as out:
        while True:
            try:
                chunk = src.read(1 << 20)
            except _READ_ERRORS as e:
                raise damaged(e) from e
            if not chunk:
                break
            out.write(chunk)


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
    with contextlib.ExitStack() as stack:
        if isinstance(source, bytes):
            fp: BinaryIO = io.BytesIO(source)
        elif isinstance(source, str | os.PathLike):
            fp = stack.enter_context(open(source, "rb"))
        else:
            fp = source
        names = decode_names(read_directory(fp, max_files))
        try:
            archive = stack.enter_context(zipfile.ZipFile(fp))
        except (zipfile.BadZipFile, NotImplementedError, ValueError, EOFError, OSError, struct.error) as e:
            raise DataError(f"not a valid zip file ({e})") from e
        except UnicodeDecodeError as e:
            raise DataError(f"the zip's table of contents is damaged ({e})") from e
        infos = archive.infolist()
        if len(infos) != len(names):
            raise DataError("the zip is damaged: its table of contents does not add up")
        plan = _plan(list(zip(infos, names)), max_total_bytes)
        Path(dest_parent).mkdir(parents=True, exist_ok=True)
        tmp = make_temp_dir(dest_parent, name)
        try:
            for info, rel, member in plan:
                target = tmp.joinpath(*rel.parts)
                try:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    _copy_member(archive, info, member, target)
                except OSError as e:
                    if e.errno != errno.ENAMETOOLONG:
                        raise
                    raise DataError(f"the path {rel} is too long for this disk; nothing was extracted") from e
            os.rename(tmp, dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return dest
