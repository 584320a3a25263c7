"""Whether a JPEG file's first picture reaches its end-of-image marker, reading as little as it can.

A file cut short ends in entropy-coded data; a motion photo (with an MP4), an MPO (with a
second picture) or a vendor trailer has more data after a complete first picture.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import BinaryIO

_MARKER_IN_SCAN = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")  # not stuffing, restart or fill
_READ = 1 << 16


class _Bytes:
    """A file read on demand into one growing buffer (a JPEG's first picture, not what follows)."""

    def __init__(self, f: BinaryIO) -> None:
        self.f, self.data, self.eof = f, bytearray(), False

    def need(self, end: int) -> bool:
        while len(self.data) < end and not self.eof:
            chunk = self.f.read(max(_READ, end - len(self.data)))
            self.eof = not chunk
            self.data += chunk
        return len(self.data) >= end

    def more(self) -> bool:
        return self.need(len(self.data) + 1)


def _scan_start(buf: _Bytes) -> int | None:
    """Offset of the first entropy-coded byte (just past the first SOS header), or None."""
    data = buf.data  # grows in place as buf reads more
    if not buf.need(2) or data[:2] != b"\xff\xd8":
        return None
    pos = 2
    while True:
        if not buf.need(pos + 4):  # a marker and a length; nothing shorter leads to a scan
            return None
        if data[pos] != 0xFF:  # junk between segments: libjpeg skips it too
            found = data.find(b"\xff", pos)
            pos = len(data) if found < 0 else found
            continue
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
        elif marker == 0xD9:
            return None  # EOI before any image data
        elif marker == 0x01 or 0xD0 <= marker <= 0xD8:
            pos += 2  # markers without a length
        else:
            pos += 2 + (data[pos + 2] << 8 | data[pos + 3])
            if marker == 0xDA:
                return pos


def _picture_end(buf: _Bytes, pos: int) -> int | None:
    """Offset just past the EOI of the picture whose scan data starts at pos, or None if cut short.

    Walks entropy-coded data to the next real marker (an FF not followed by 00, a restart
    marker or more FF), then segments between the scans of a progressive JPEG, until EOI.
    """
    while True:
        m = _MARKER_IN_SCAN.search(buf.data, pos)
        while m is None:
            pos = max(pos, len(buf.data) - 1)  # an FF at the end of the buffer may start a marker
            if not buf.more():
                return None
            m = _MARKER_IN_SCAN.search(buf.data, pos)
        marker, pos = buf.data[m.start() + 1], m.start()
        if marker == 0xD9:
            return pos + 2
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:
            pos += 2
            continue
        if not buf.need(pos + 4):
            return None
        pos += 2 + int.from_bytes(buf.data[pos + 2 : pos + 4], "big")
        # After SOS the loop scans entropy data; after DHT, DQT, DRI, COM, APPn the next real
        # marker follows the segment directly, and searching for it there is just as right.


def first_picture_complete(path: str | os.PathLike) -> bool:
    """Whether the first picture in a JPEG file reaches its end-of-image marker (FF D9).

    Fast path: an FF D9 in the last 4 KB, past the start of the image data (a file cut short
    ends in entropy-coded data, which never holds FF D9; thumbnails and other FF D9 bytes in
    the headers come before the scan). Files with more after the picture (motion photos with
    an MP4, MPO with a second picture, vendor trailers) take the slow path: the scan data is
    walked to the first picture's EOI, reading only that picture.
    """
    with open(Path(path), "rb") as f:
        buf = _Bytes(f)
        start = _scan_start(buf)
        if start is None:
            return False
        size = os.fstat(f.fileno()).st_size
        tail_from = max(start, size - 4096)
        if tail_from < len(buf.data):  # small file: (nearly) all read already
            buf.need(size)
            ends = buf.data.find(b"\xff\xd9", tail_from) >= 0
        else:
            f.seek(tail_from)
            ends = b"\xff\xd9" in f.read()
            f.seek(len(buf.data))
        return ends or _picture_end(buf, start) is not None
