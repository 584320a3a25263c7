"""Make small image files of every awkward kind for tests (good, bad and odd)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def solid(path: Path, size: tuple[int, int] = (40, 32), color=(200, 30, 30), fmt: str | None = None) -> Path:
    """A plain RGB image of `size` = (width, height)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, format=fmt)
    return path


def noisy(path: Path, size: tuple[int, int] = (48, 40), seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def truncated_jpeg(path: Path) -> Path:
    noisy(path.with_suffix(".tmp.jpg"))
    data = path.with_suffix(".tmp.jpg").read_bytes()
    path.with_suffix(".tmp.jpg").unlink()
    path.write_bytes(data[: len(data) // 2])
    return path


def text_as_jpg(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("this is not an image\n")
    return path


def zero_bytes(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def rgba_png(path: Path) -> Path:
    """Left half opaque red, right half fully transparent (becomes white)."""
    arr = np.zeros((32, 40, 4), dtype=np.uint8)
    arr[:, :20] = (255, 0, 0, 255)
    arr[:, 20:] = (0, 0, 255, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, "RGBA").save(path)
    return path


def png16(path: Path) -> Path:
    """16-bit grayscale gradient 0..65535 across the width."""
    arr = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (32, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


def cmyk_jpeg(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("CMYK", (40, 32), (0, 255, 255, 0)).save(path, format="JPEG", quality=95)  # red
    return path


def exif_rotated_jpeg(path: Path) -> Path:
    """Stored 40 wide x 20 high, left half red, right half blue, EXIF orientation 6 (turn 90° CW).

    Shown upright it is 20 wide x 40 high with red on top and blue below.
    """
    arr = np.zeros((20, 40, 3), dtype=np.uint8)
    arr[:, :20] = (255, 0, 0)
    arr[:, 20:] = (0, 0, 255)
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = 6
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format="JPEG", quality=95, exif=exif.tobytes())
    return path


def huge_header_png(path: Path, width: int = 20000, height: int = 20000) -> Path:
    """A PNG whose header claims width x height but which carries almost no data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    return path


def tiny(path: Path) -> Path:
    return solid(path, size=(8, 8))


BAD_MAKERS = {
    "truncated.jpg": truncated_jpeg,
    "text.jpg": text_as_jpg,
    "zero.jpg": zero_bytes,
    "huge.png": huge_header_png,
    "tiny.png": tiny,
}
ODD_MAKERS = {
    "rgba.png": rgba_png,
    "gray16.png": png16,
    "cmyk.jpg": cmyk_jpeg,
    "rotated.jpg": exif_rotated_jpeg,
}
