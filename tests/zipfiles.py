"""Build zips of every awkward kind for tests, byte by byte (in the spirit of imagefiles.py).

`zipfile` refuses to write most of these (raw legacy names without the UTF-8 flag, an invalid
UTF-8 name with the flag, encrypted flags without encryption, made-up compression methods,
damaged streams, lying counts), so `build` writes the local headers, the central directory and
the end-of-central-directory record (EOCD) itself.
"""

from __future__ import annotations

import bz2
import struct
import zlib
from dataclasses import dataclass

import pytest

from core.archive import extract_zip
from core.data import DataError
from tests import imagefiles

UTF8_FLAG = 0x800
ENCRYPTED_FLAG = 0x1
STORED, DEFLATED, BZIP2, DEFLATE64, AES = 0, 8, 12, 9, 99

_LOCAL = struct.Struct("<4s5H3L2H")  # 30 bytes
_CENTRAL = struct.Struct("<4s6H3L5H2L")  # 46 bytes
_EOCD = struct.Struct("<4s4H2LH")  # 22 bytes
_EOCD64 = struct.Struct("<4sQ2H2L4Q")  # 56 bytes
_LOCATOR64 = struct.Struct("<4sLQL")  # 20 bytes


@dataclass
class Member:
    """One entry. `name` as str is UTF-8 encoded (with the flag when not ASCII, as zipfile does);
    as bytes it is written raw and `flags` says what the zip claims about it."""

    name: str | bytes
    data: bytes = b""
    method: int = DEFLATED  # 0 stored, 8 deflate, 12 bzip2; other methods store `data` as given
    flags: int | None = None  # None: UTF-8 flag for a non-ASCII str name, else 0
    crc: int | None = None  # None: the real CRC-32 of `data`
    payload: bytes | None = None  # the stored bytes; None: `data` compressed with `method`
    mode: int | None = None  # unix mode; None: regular file 0o644, or folder 0o755 for 'x/'
    extra: bytes = b""

    def raw_name(self) -> bytes:
        return self.name if isinstance(self.name, bytes) else self.name.encode("utf-8")

    def flag_bits(self) -> int:
        if self.flags is not None:
            return self.flags
        return UTF8_FLAG if isinstance(self.name, str) and not self.name.isascii() else 0

    def stored(self) -> bytes:
        if self.payload is not None:
            return self.payload
        if self.method == DEFLATED:
            packer = zlib.compressobj(6, zlib.DEFLATED, -15)
            return packer.compress(self.data) + packer.flush()
        if self.method == BZIP2:
            return bz2.compress(self.data)
        return self.data

    def external_attr(self) -> int:
        folder = self.raw_name().endswith(b"/")
        mode = self.mode if self.mode is not None else (0o40755 if folder else 0o100644)
        return (mode << 16) | (0x10 if folder else 0)


def build(
    members: list[Member], *, claimed_entries: int | None = None, zip64: bool = False, comment: bytes = b""
) -> bytes:
    """The zip holding `members` in order. `claimed_entries` overrides the count in the EOCD
    (and in the ZIP64 EOCD with `zip64`), whatever the central directory really holds."""
    out = bytearray()
    central = bytearray()
    for m in members:
        name, stored, flags = m.raw_name(), m.stored(), m.flag_bits()
        crc = zlib.crc32(m.data) if m.crc is None else m.crc
        offset = len(out)
        dostime, dosdate = 0, (2024 - 1980) << 9 | 1 << 5 | 1
        out += _LOCAL.pack(
            b"PK\x03\x04", 20, flags, m.method, dostime, dosdate, crc, len(stored), len(m.data), len(name), 0
        )
        out += name + stored
        central += _CENTRAL.pack(
            b"PK\x01\x02", 0x031E, 20, flags, m.method, dostime, dosdate, crc, len(stored), len(m.data),
            len(name), len(m.extra), 0, 0, 0, m.external_attr(), offset,
        )  # fmt: skip
        central += name + m.extra
    count = len(members) if claimed_entries is None else claimed_entries
    cd_offset = len(out)
    out += central
    if zip64:
        eocd64_at = len(out)
        out += _EOCD64.pack(b"PK\x06\x06", 44, 0x031E, 45, 0, 0, count, count, len(central), cd_offset)
        out += _LOCATOR64.pack(b"PK\x06\x07", 0, eocd64_at, 1)
        out += _EOCD.pack(b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, len(comment))
    else:
        short = min(count, 0xFFFF)
        out += _EOCD.pack(b"PK\x05\x06", 0, 0, short, short, len(central), cd_offset, len(comment))
    return bytes(out + comment)


def unicode_path_field(raw_name: bytes, real_name: str) -> bytes:
    """The Info-ZIP Unicode Path extra field (0x7075) that WinZip/WinRAR/Info-ZIP add."""
    body = b"\x01" + struct.pack("<L", zlib.crc32(raw_name)) + real_name.encode("utf-8")
    return struct.pack("<HH", 0x7075, len(body)) + body


def legacy_names(files: dict[str, bytes], encoding: str) -> bytes:
    """Names written in a legacy code page without the UTF-8 flag, as old Windows tools do."""
    return build([Member(name.encode(encoding), data, flags=0) for name, data in files.items()])


def invalid_utf8_flagged(data: bytes) -> bytes:
    """A name that is not UTF-8 although the UTF-8 flag (bit 11) is set."""
    return build([Member("pets/ok.png", data), Member(b"pets/caf\xe9\xff.png", data, flags=UTF8_FLAG)])


def encrypted(data: bytes) -> bytes:
    """Flag bit 0 (traditional PKWARE encryption); the payload is just noise."""
    return build(
        [Member("pets/x.png", data, method=STORED, flags=ENCRYPTED_FLAG, payload=b"\x00" * 12 + data)]
    )


def aes_encrypted(data: bytes) -> bytes:
    """WinZip AES: flag bit 0 and method 99."""
    return build([Member("pets/x.png", data, method=AES, flags=ENCRYPTED_FLAG)])


def compressed_with(method: int, data: bytes) -> bytes:
    """A member claiming `method` (9 Deflate64, 98 PPMd, 93 Zstandard...) with `data` as its bytes."""
    return build([Member("pets/a.png", data, method=STORED), Member("pets/b.png", data, method=method)])


def damaged_deflate(data: bytes) -> bytes:
    """A deflate stream that zlib rejects (block type 3 does not exist)."""
    return build([Member("pets/a.png", data), Member("pets/b.png", data, payload=b"\xff" * 64)])


def bad_crc(data: bytes) -> bytes:
    """Sound deflate data whose CRC-32 does not match."""
    return build([Member("pets/a.png", data), Member("pets/b.png", data, crc=zlib.crc32(data) ^ 1)])


def truncated_stream(data: bytes) -> bytes:
    """A deflate stream cut in half (its sizes say so too): it ends early, the CRC catches it."""
    whole = Member("pets/b.png", data).stored()
    return build([Member("pets/a.png", data), Member("pets/b.png", data, payload=whole[: len(whole) // 2])])


def many_folders(n: int, with_file: bytes | None = None) -> bytes:
    """n empty folder entries (plus one file when given): cheap to make, costly to list."""
    members = [Member(f"d{i}/", method=STORED) for i in range(n)]
    if with_file is not None:
        members.append(Member("pets/x.png", with_file))
    return build(members)


def claims_entries(n: int, zip64: bool = False) -> bytes:
    """Nothing but an EOCD (and a ZIP64 EOCD with `zip64`) claiming n entries."""
    return build([], claimed_entries=n, zip64=zip64)


# ---------------------------------------------------------------- what extract_zip makes of them


def png_bytes(tmp_path, seed=0) -> bytes:
    return imagefiles.noisy(tmp_path / f"src{seed}.png", seed=seed).read_bytes()


def files_under(root) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def refused(tmp_path, data: bytes, match: str, **limits) -> DataError:
    """extract_zip refuses `data` with one DataError and writes nothing: no dataset, no temp folder."""
    parent = tmp_path / "datasets"
    with pytest.raises(DataError, match=match) as caught:
        extract_zip(data, parent, "d", **limits)
    assert not parent.exists() or list(parent.iterdir()) == []
    return caught.value
