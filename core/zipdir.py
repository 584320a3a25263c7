"""A zip's central directory, read record by record from the end record on, without zipfile.

zipfile builds its whole member list before anyone can count it; here the entry count in the
end-of-central-directory record (the ZIP64 one when present) is checked first, then every
record is counted again while it is read, so a zip of a million empty folders is refused early.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO

from core.errors import DataError

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
class ZipRecord:
    """What the central directory says about one entry before anything is decoded."""

    name: bytes
    flags: int
    extra: bytes


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


def read_directory(fp: BinaryIO, max_files: int) -> list[ZipRecord]:
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
    records: list[ZipRecord] = []
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
        records.append(ZipRecord(name, flags, extra))
        done += _CENTRAL.size + name_len + extra_len + comment_len
    return records
