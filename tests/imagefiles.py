"""Make small image files of every awkward kind for tests (good, bad and odd)."""

from __future__ import annotations

import io
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


# ---------------------------------------------------------------------------- formats we refuse
# Not in BAD_MAKERS: other tests count the messy folder's problems.


def eps_as(path: Path) -> Path:
    """A minimal valid EPS (a filled 32x32 square), whatever the file is named.

    Pillow recognises EPS by the %!PS magic and would render it with Ghostscript.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        b"%!PS-Adobe-3.0 EPSF-3.0\n"
        b"%%BoundingBox: 0 0 32 32\n"
        b"%%EndComments\n"
        b"newpath 0 0 moveto 32 0 lineto 32 32 lineto 0 32 lineto closepath fill\n"
        b"showpage\n"
        b"%%EOF\n"
    )
    return path


def saved_as(fmt: str):
    """A maker writing a 40x32 picture in Pillow format `fmt` (PCX, ICO, PPM...), whatever the name."""

    def make(path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (40, 32), (20, 120, 220)).save(path, format=fmt)
        return path

    return make


def ftyp_file(path: Path, brand: bytes = b"heic") -> Path:
    """The start of an ISO media file (HEIC, AVIF...): an ftyp box with `brand`, then filler."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00\x00\x00\x18ftyp" + brand + b"\x00\x00\x00\x00mif1" + brand + bytes(1000))
    return path


def svg(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="32"><rect width="40" height="32"/></svg>\n'
    )
    return path


# ---------------------------------------------------------------------------- JPEGs with more after them


def jpeg_with_trailer(path: Path, extra: int = 200_000) -> Path:
    """A noisy 48x40 JPEG followed by `extra` bytes of MP4-like data, as in phone "motion photos".

    The appended data holds no FF byte, so no FF D9 marker anywhere after the picture.
    """
    noisy(path.with_suffix(".tmp.jpg"))
    data = path.with_suffix(".tmp.jpg").read_bytes()
    path.with_suffix(".tmp.jpg").unlink()
    filler = np.random.default_rng(1).integers(0, 255, extra, dtype=np.uint8).tobytes()  # 0..254
    path.write_bytes(data + b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + filler)
    return path


def mpo(path: Path, first=(255, 0, 0), second=(0, 0, 255), size=(48, 40)) -> Path:
    """A multi-picture JPEG (MPO, as stereo cameras write) with two plain pictures."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, first).save(
        path, format="MPO", save_all=True, append_images=[Image.new("RGB", size, second)]
    )
    return path


def jpeg_claiming(path: Path, width: int, height: int) -> Path:
    """A complete 16x16 JPEG whose frame header claims width x height (header checks only)."""
    solid(path, size=(16, 16), fmt="JPEG")
    data = bytearray(path.read_bytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    path.write_bytes(bytes(data))
    return path


# ---------------------------------------------------------------------------- big but legal


def big_png(path: Path, width: int, height: int, mode: str = "RGBA") -> Path:
    """A large PNG made quickly (plain halves, zlib level 1): RGBA is opaque red above fully
    transparent below; I;16 is white (65535) on the left half and black on the right."""
    if mode == "RGBA":
        img = Image.new("RGBA", (width, height), (0, 0, 255, 0))
        img.paste((255, 0, 0, 255), (0, 0, width, height // 2))
    elif mode == "I;16":
        img = Image.new("I;16", (width, height), 0)
        img.paste(65535, (0, 0, width // 2, height))
    else:
        raise ValueError(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format="PNG", compress_level=1)
    return path


# ---------------------------------------------------------------------------- photo-like pictures


def photo_like(seed: int, size: tuple[int, int] = (160, 120)) -> Image.Image:
    """A picture with what photos have and noise lacks: smooth light, a few objects, fine texture.

    Different seeds give different pictures (for duplicate finding); `size` = (width, height)."""
    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w] / max(w, h)
    light = sum(
        rng.uniform(0.3, 1) * np.sin(rng.uniform(1, 6) * x + rng.uniform(1, 6) * y + rng.uniform(0, 6))
        for _ in range(3)
    )
    arr = (light[..., None] * rng.uniform(20, 50, 3) + rng.uniform(60, 190, 3)).astype(np.float64)
    for _ in range(5):
        cx, cy, r = rng.uniform(0, 1) * w, rng.uniform(0, 1) * h, rng.uniform(0.08, 0.3) * min(w, h)
        inside = (x * max(w, h) - cx) ** 2 / rng.uniform(0.5, 2) + (y * max(w, h) - cy) ** 2 < r**2
        arr[inside] = rng.uniform(0, 255, 3)
    arr += rng.normal(0, 8, arr.shape)  # texture
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def jpeg_bytes(img: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
