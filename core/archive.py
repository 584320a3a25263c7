"""Unpack an uploaded zip of images safely.

Everything is checked before anything is written, and every refusal is ONE `DataError` with a
message for people; a refused zip leaves nothing behind (no dataset folder, no temporary folder):

- Entry count: the total in the end-of-central-directory record (the ZIP64 one when present) is
  read from the end of the file, then the central directory is walked record by record, so a zip
  of a million empty folders is refused before `zipfile` builds its member list. Every entry
  counts against `max_files`: files, folders and macOS metadata alike.
- Names: see `_decode_names` (UTF-8 flag, Info-ZIP Unicode Path field, UTF-8 without the flag,
  else one guessed legacy code page for the whole zip); all are NFC-normalised.
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
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from core.data import DataError, check_name
from core.workspace import make_temp_dir

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

# Legacy code pages tried for names without the UTF-8 flag, in order of preference on a tie:
# DOS Western Europe (what Windows Explorer wrote there; its letters include cp437's), Windows
# Western Europe, Japanese Shift-JIS.
LEGACY_ENCODINGS = ("cp850", "cp1252", "cp932")
_GUESS_SAMPLE = 2000  # names scored when guessing (every name must still decode)

_UTF8_FLAG = 0x800
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

_EOCD_SIG, _LOCATOR64_SIG, _EOCD64_SIG, _CENTRAL_SIG = (
    b"PK\x05\x06",
    b"PK\x06\x07",
    b"PK\x06\x06",
    b"PK\x01\x02",
)
_EOCD = struct.Struct("<4s4H2LH")  # end of central directory: 22 bytes (then a comment)
_LOCATOR64 = struct.Struct("<4sLQL")  # ZIP64 end of central directory locator: 20 bytes
_EOCD64 = struct.Struct("<4sQ2H2L4Q")  # ZIP64 end of central directory: 56 bytes
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")  # central directory file header: 46 bytes


@dataclass
class _Record:
    """What the central directory says about one entry before anything is decoded."""

    name: bytes
    flags: int
    extra: bytes


def _show(raw: bytes) -> str:
    return "'" + raw.decode("utf-8", "backslashreplace") + "'"


def _too_many(count: str, limit: int) -> str:
    return f"the zip holds {count} entries (files and folders both count); the limit is {limit:,}"


def _end_record(fp: BinaryIO) -> tuple[int, int, int] | None:
    """(entries claimed, start of the central directory, its size), read from the end of the
    file the way zipfile reads it; None when there is no end record."""
    fp.seek(0, 2)
    size = fp.tell()
    tail_start = max(size - _EOCD.size - 0xFFFF, 0)  # the record, then a comment of up to 64 KiB
    fp.seek(tail_start)
    tail = fp.read()
    if len(tail) >= _EOCD.size and tail[-_EOCD.size :][:4] == _EOCD_SIG and tail[-2:] == b"\0\0":
        at = len(tail) - _EOCD.size
    else:
        at = tail.rfind(_EOCD_SIG)
        if at < 0 or len(tail) - at < _EOCD.size:
            return None
    _, _, _, _, entries, cd_size, _, _ = _EOCD.unpack_from(tail, at)
    location = tail_start + at
    skip = 0
    if location >= _LOCATOR64.size + _EOCD64.size:
        fp.seek(location - _LOCATOR64.size)
        sig, disk, _, disks = _LOCATOR64.unpack(fp.read(_LOCATOR64.size))
        if sig == _LOCATOR64_SIG:
            if disk != 0 or disks > 1:
                raise DataError("the zip spans several disks; upload it as one zip file")
            fp.seek(location - _LOCATOR64.size - _EOCD64.size)
            record = _EOCD64.unpack(fp.read(_EOCD64.size))
            if record[0] == _EOCD64_SIG:
                entries, cd_size = record[7], record[8]
                skip = _LOCATOR64.size + _EOCD64.size
    # Like zipfile: the directory ends where the end records begin (data may precede the zip).
    return entries, location - skip - cd_size, cd_size


def _read_directory(fp: BinaryIO, max_files: int) -> list[_Record]:
    """The central directory's records, refusing too many before reading (and while reading, in
    case the end record understates them) and without building zipfile's member list."""
    try:
        end = _end_record(fp)
    except (OSError, ValueError, struct.error) as e:
        raise DataError(f"not a valid zip file ({e})") from e
    if end is None:
        raise DataError("not a valid zip file (no end-of-central-directory record)")
    claimed, start, size = end
    if claimed > max_files:
        raise DataError(_too_many(f"{claimed:,}", max_files))
    if start < 0:
        raise DataError("not a valid zip file (bad offset for its table of contents)")
    damaged = DataError("the zip is damaged: its table of contents is cut short or overwritten")
    fp.seek(start)
    records: list[_Record] = []
    done = 0
    while done < size:
        if len(records) >= max_files:
            raise DataError(_too_many(f"more than {max_files:,}", max_files))
        head = fp.read(_CENTRAL.size)
        if len(head) != _CENTRAL.size or head[:4] != _CENTRAL_SIG:
            raise damaged
        fields = _CENTRAL.unpack(head)
        flags, name_len, extra_len, comment_len = fields[5], fields[12], fields[13], fields[14]
        name, extra = fp.read(name_len), fp.read(extra_len)
        if len(name) != name_len or len(extra) != extra_len or len(fp.read(comment_len)) != comment_len:
            raise damaged
        records.append(_Record(name, flags, extra))
        done += _CENTRAL.size + name_len + extra_len + comment_len
    return records


def _unicode_path(extra: bytes, raw: bytes) -> str | None:
    """The name in an Info-ZIP Unicode Path extra field (0x7075), when it is there and was
    written for this very raw name (its CRC-32 matches)."""
    at = 0
    while at + 4 <= len(extra):
        tag, size = struct.unpack_from("<HH", extra, at)
        body = extra[at + 4 : at + 4 + size]
        if tag == 0x7075 and len(body) > 5 and body[0] == 1:
            if struct.unpack_from("<L", body, 1)[0] == zlib.crc32(raw):
                with contextlib.suppress(UnicodeDecodeError):
                    return body[5:].decode("utf-8")
            return None
        at += 4 + size
    return None


_EAST_ASIAN = {"CJK", "HIRAGANA", "KATAKANA", "KATAKANA-HIRAGANA", "HALFWIDTH", "FULLWIDTH", "IDEOGRAPHIC"}
_SCRIPTS = {"LATIN", "GREEK", "CYRILLIC", "HANGUL"}
_COMMON_LATIN = set("äöüßéèêëàáâçñíìîïóòôúùûøåæœ")
_COMMON_LATIN |= {c.upper() for c in _COMMON_LATIN if c != "ß"}


def _script(c: str) -> str | None:
    """'LATIN', 'GREEK', 'CYRILLIC', 'HANGUL', 'EAST' (Japanese/Chinese) or None (anything else)."""
    if c.isascii():
        return "LATIN" if c.isalpha() else None
    word = unicodedata.name(c, "").split(" ", 1)[0]
    if word in _EAST_ASIAN:
        return "EAST"
    return word if word in _SCRIPTS else None


def _plausibility(text: str, encoding: str) -> float:
    """How much `text` (a name decoded with `encoding`) reads like a name, per non-ASCII byte.

    A letter scores +1 per byte it took (+0.5 for an accented letter common in Western Europe);
    a symbol, box-drawing or control character -2 per byte; a letter where letters of that
    kind do not go -1 per byte: a capital after a lowercase letter or inside a lowercase word
    ('KÕse'), a lowercase accent before a capital, Greek or Cyrillic glued to Latin, a kanji
    between two Latin letters. Two accented Latin letters in a row score 0, like an East Asian
    letter next to one Latin letter and East Asian punctuation or full-width digits."""
    total = 0.0
    for i, c in enumerate(text):
        if c.isascii():
            continue
        width = len(c.encode(encoding))
        script = _script(c)
        if script is None or (script != "EAST" and not c.isalpha()):
            total -= 2 * width
            continue
        if not c.isalpha():
            continue
        prev = text[i - 1] if i > 0 else ""
        after = text[i + 1] if i + 1 < len(text) else ""
        latin_before = prev.isascii() and prev.isalpha()
        latin_after = after.isascii() and after.isalpha()
        if script == "EAST":
            total += -width if latin_before and latin_after else 0 if latin_before or latin_after else width
            continue
        odd = (c.isupper() and (prev.islower() or (prev.isalpha() and after.islower()))) or (
            c.islower() and after.isupper()
        )
        odd = odd or any(s.isalpha() and _script(s) not in (script, "EAST") for s in (prev, after))
        if odd:
            total -= width
        elif not (prev.isalpha() and not prev.isascii()) and not (after.isalpha() and not after.isascii()):
            total += width + (0.5 if c in _COMMON_LATIN else 0)
    return total


def _legacy_encoding(raws: list[bytes]) -> str:
    """The encoding of names written without the UTF-8 flag (all non-ASCII): UTF-8 when every
    one of them is valid UTF-8, else whichever of LEGACY_ENCODINGS decodes all of them and scores
    best in `_plausibility` (summed over up to _GUESS_SAMPLE names); a tie goes to the earlier."""
    try:
        for raw in raws:
            raw.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    best, best_score = LEGACY_ENCODINGS[0], float("-inf")  # cp850 decodes any byte
    for encoding in LEGACY_ENCODINGS:
        try:
            texts = [raw.decode(encoding) for raw in raws]
        except UnicodeDecodeError:
            continue
        score = sum(_plausibility(t, encoding) for t in texts[:_GUESS_SAMPLE])
        if score > best_score:
            best, best_score = encoding, score
    return best


def _decode_names(records: list[_Record]) -> list[str]:
    """The entries' names as text, by this rule:

    1. UTF-8 flag (bit 11) set: UTF-8. A name that is not valid UTF-8 is refused: the zip's
       writer is broken, and a guess could put images in a wrong class.
    2. An Info-ZIP Unicode Path extra field (0x7075) written for this raw name: its UTF-8 name
       (WinZip, WinRAR, 7-Zip and Info-ZIP add it; the raw name may then be '?' for what the
       legacy code page could not hold).
    3. ASCII: as is.
    4. The rest (zipfile would read them as cp437) are decoded together: as UTF-8 when all of
       them are valid UTF-8 (macOS and many tools write UTF-8 without the flag), else with ONE
       legacy code page for the whole zip, guessed by `_legacy_encoding` (cp850, cp1252, cp932).
    Then every name is NFC-normalised (macOS writes 'a' + combining accent). A NUL byte in a
    name is refused (zipfile would silently cut the name there).
    """
    names: list[str] = []
    legacy: list[int] = []
    for i, rec in enumerate(records):
        raw = rec.name
        if b"\0" in raw:
            raise DataError(f"the zip holds a name with a NUL byte ({_show(raw)}); nothing was extracted")
        if rec.flags & _UTF8_FLAG:
            try:
                names.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                raise DataError(
                    f"the zip's table of contents is damaged: the name {_show(raw)} is marked as UTF-8 "
                    "but is not valid UTF-8; zip the folder again with another tool. Nothing was extracted"
                ) from None
        elif (unicode := _unicode_path(rec.extra, raw)) is not None:
            names.append(unicode)
        elif raw.isascii():
            names.append(raw.decode("ascii"))
        else:
            names.append("")  # decided below, together with the other legacy names
            legacy.append(i)
    if legacy:
        encoding = _legacy_encoding([records[i].name for i in legacy])
        for i in legacy:
            names[i] = records[i].name.decode(encoding)
    return [unicodedata.normalize("NFC", n) for n in names]


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
        records = _read_directory(fp, max_files)
        names = _decode_names(records)
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
