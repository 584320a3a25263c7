"""Image files in, upright RGB uint8 arrays out: cheap checks, decoding, resizing.

Every module that reads an image (scan, cache, predict, explain) goes through here, so
grayscale, RGBA, CMYK, 16-bit and EXIF-rotated files are handled the same way everywhere.

Only the formats in SUPPORTED_FORMATS are ever decoded: Pillow picks a decoder by the file's
contents, not its name, so without `formats=` a PostScript file named x.jpg would be handed
to Ghostscript. Memory stays bounded on huge-but-legal files: JPEGs are decoded at reduced
size (draft mode), other formats are converted a strip of rows at a time (box-reduced when
the target is much smaller) and may have at most 40 megapixels, and at most one large decode
runs at a time in a process.

Over 400 lines on purpose: recognising a format, checking its size and decoding it are one
guarded path for untrusted files; split apart, a caller could decode without the checks.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, Literal

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from core import jpeg

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".mpo", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
)
# Pillow format names we decode; MPO (multi-picture JPEG) is opened by the JPEG plugin.
SUPPORTED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "BMP", "GIF", "WEBP", "TIFF")
JPEG_FORMATS = frozenset({"JPEG", "MPO"})
# Image files we recognise by name but do not decode: the scan lists them as problems.
UNSUPPORTED_EXTENSIONS = {
    ".heic": "HEIC",
    ".heics": "HEIC",
    ".heif": "HEIF",
    ".hif": "HEIF",
    ".avif": "AVIF",
    ".svg": "SVG",
    ".svgz": "SVG",
    ".jxl": "JPEG XL",
    ".jp2": "JPEG 2000",
    ".j2k": "JPEG 2000",
    ".jpf": "JPEG 2000",
    ".jpx": "JPEG 2000",
    ".jxr": "JPEG XR",
    ".wdp": "JPEG XR",
    ".psd": "PSD",
    ".psb": "PSD",
    ".xcf": "XCF",
    ".eps": "EPS",
    ".ico": "ICO",
    ".cur": "CUR",
    ".icns": "ICNS",
    ".pcx": "PCX",
    ".ppm": "PPM",
    ".pgm": "PGM",
    ".pbm": "PBM",
    ".pnm": "PNM",
    ".tga": "TGA",
    ".dds": "DDS",
    ".exr": "OpenEXR",
    **{ext: f"{ext[1:].upper()} camera raw" for ext in (".dng", ".cr2", ".cr3", ".nef", ".nrw", ".arw")},
    **{ext: f"{ext[1:].upper()} camera raw" for ext in (".orf", ".rw2", ".raf", ".pef", ".srw")},
}
MIN_SIDE = 16
# Decompression-bomb guard: 64 megapixels (e.g. 8000x8000) is more than any photo we need.
# JPEGs may have that many: draft mode decodes them at 1/2, 1/4 or 1/8 scale, so a 64 MP JPEG
# wanted at 224 px is decoded as a 1 MP image.
MAX_PIXELS = 64_000_000
# Other formats are always decoded at full size, and Pillow holds RGB, RGBA, CMYK and 32-bit
# pixels in 4 bytes: 40 MP is 160 MB before any conversion. That still takes a 36 MP camera
# TIFF or an 8K (33 MP) frame; bigger PNG/TIFF/WebP/BMP/GIF files are refused with a hint.
MAX_PIXELS_FULL_DECODE = 40_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
# Decodes of more pixels than this (after JPEG draft) take a process-wide slot, one at a
# time, so a decode pool cannot hold several 100+ MB images at once. Smaller decodes hold at
# most 64 MB each and run freely.
LARGE_DECODE_PIXELS = 16_000_000
# Images over this many pixels are converted a strip of rows at a time, box-reduced by an
# integer factor when the requested size allows; smaller ones are converted whole as before.
REDUCE_ABOVE_PIXELS = 4_000_000
STRIP_PIXELS = 1_000_000

ResizePolicy = Literal["stretch", "crop", "pad"]
RESIZE_POLICIES: tuple[str, ...] = ("stretch", "crop", "pad")

Source = str | os.PathLike | bytes | BinaryIO

_LARGE_DECODES = threading.BoundedSemaphore(1)


class ImageError(ValueError):
    """A file that cannot be used as an image; the message says why in plain words."""


def is_image_name(name: str) -> bool:
    """True for a visible file whose extension is one we read."""
    base = os.path.basename(name)
    return not base.startswith(".") and os.path.splitext(base)[1].lower() in IMAGE_EXTENSIONS


def unsupported_format(name: str) -> str | None:
    """The format of a visible file named like an image we do not read (HEIC, SVG...), else None."""
    base = os.path.basename(name)
    if base.startswith("."):
        return None
    return UNSUPPORTED_EXTENSIONS.get(os.path.splitext(base)[1].lower())


def unsupported_reason(fmt: str) -> str:
    return f"not a supported image format ({fmt}); convert to JPEG or PNG"


# ---------------------------------------------------------------------------- identifying


_FTYP_BRANDS = {
    b"heic": "HEIC",
    b"heix": "HEIC",
    b"heim": "HEIC",
    b"heis": "HEIC",
    b"hevc": "HEIC",
    b"hevx": "HEIC",
    b"mif1": "HEIF",
    b"msf1": "HEIF",
    b"avif": "AVIF",
    b"avis": "AVIF",
}
_FORMAT_NAMES = {"JPEG2000": "JPEG 2000", "DIB": "BMP"}


def sniff_format(prefix: bytes) -> str | None:
    """Name the format of a file from its first bytes (512 are plenty), or None if unknown.

    Only Pillow's `_accept` magic-number tests run here, never a decoder.
    """
    if prefix[4:8] == b"ftyp" and prefix[8:12] in _FTYP_BRANDS:
        return _FTYP_BRANDS[prefix[8:12]]
    if prefix.startswith((b"\xff\x0a", b"\x00\x00\x00\x0cJXL ")):
        return "JPEG XL"
    head = prefix.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"<svg") or (head.startswith((b"<?xml", b"<!doctype svg")) and b"<svg" in head):
        return "SVG"
    Image.init()
    for fmt in Image.ID:
        accept = Image.OPEN[fmt][1]
        try:
            if accept is not None and accept(prefix[:16]):
                return _FORMAT_NAMES.get(fmt, fmt)
        except Exception:  # some accept functions index past a short prefix
            continue
    return None


def _prefix(source: Source, n: int = 512) -> bytes:
    if isinstance(source, bytes):
        return source[:n]
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as f:
            return f.read(n)
    source.seek(0)
    return source.read(n)


def _open(source: Source) -> Image.Image:
    """Image.open restricted to SUPPORTED_FORMATS; ImageError names anything else."""
    fp = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        return Image.open(fp, formats=SUPPORTED_FORMATS)
    except UnidentifiedImageError:
        fmt = sniff_format(_prefix(fp))
        if fmt is None:
            raise ImageError("not an image (unrecognised file contents)") from None
        if fmt in SUPPORTED_FORMATS:
            raise ImageError(f"unreadable image (a damaged {fmt} file)") from None
        raise ImageError(unsupported_reason(fmt)) from None


def _pixel_limit(fmt: str | None) -> int:
    return MAX_PIXELS if fmt in JPEG_FORMATS else MAX_PIXELS_FULL_DECODE


def _size_problem(img: Image.Image) -> str | None:
    width, height = img.size
    limit = _pixel_limit(img.format)
    if width * height > limit:
        if limit == MAX_PIXELS:
            return f"too large ({width}x{height} pixels; the limit is {limit // 1_000_000} megapixels)"
        return (
            f"too large ({width}x{height} pixels; the limit is {limit // 1_000_000} megapixels "
            f"for {img.format}, {MAX_PIXELS // 1_000_000} for JPEG)"
        )
    if min(width, height) < MIN_SIDE:
        return f"too small ({width}x{height}; at least {MIN_SIDE} px a side)"
    return None


def check_image(path: str | os.PathLike) -> str | None:
    """Why `path` cannot be used, or None when it looks fine; decodes no pixels.

    PNG/GIF/TIFF are verified by Pillow (checksums); JPEGs are checked for the end of their
    first picture (headers and the last 4 KB; the whole first picture only when more data
    follows it). Formats we do not decode are named, with a hint to convert them.
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            return "empty file (0 bytes)"
        with _open(path) as img:
            fmt = img.format
            problem = _size_problem(img)
            if problem:
                return problem
            if fmt not in JPEG_FORMATS:
                img.verify()
        if fmt in JPEG_FORMATS and not jpeg.first_picture_complete(path):
            return "truncated JPEG (the file ends before the image does)"
    except ImageError as e:
        return str(e)
    except Image.DecompressionBombError:
        return f"too large (over {MAX_PIXELS // 1_000_000} megapixels)"
    except OSError as e:
        return f"unreadable image ({e})"
    except Exception as e:  # Pillow raises assorted errors on hostile files
        return f"unreadable image ({type(e).__name__}: {e})"
    return None


# ---------------------------------------------------------------------------- decoding


@contextlib.contextmanager
def _decode_slot(pixels: int) -> Iterator[None]:
    """One large decode at a time per process; small ones do not wait."""
    if pixels > LARGE_DECODE_PIXELS:
        with _LARGE_DECODES:
            yield
    else:
        yield


def _rgb_converter(img: Image.Image) -> Callable[[Image.Image], np.ndarray]:
    """A function turning (a strip of) `img` into (h, w, 3) uint8: 16-bit and 32-bit scaled down,
    transparency over white. Scales that depend on the whole image are fixed here."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        peak = 65535.0 if mode.startswith("I;16") or img.getextrema()[1] > 255 else 255.0

        def gray16(part: Image.Image) -> np.ndarray:
            arr = np.array(part, dtype=np.float64)  # in place below: one float buffer per strip
            arr /= peak
            arr *= 255.0
            arr += 0.5
            gray = np.clip(arr, 0, 255, out=arr).astype(np.uint8)
            return np.repeat(gray[..., None], 3, axis=2)

        return gray16
    if mode == "F":
        lo, hi = (float(v) for v in img.getextrema())

        def gray_float(part: Image.Image) -> np.ndarray:
            arr = np.array(part, dtype=np.float64)
            arr -= lo
            arr /= hi - lo or 1.0
            arr *= 255.0
            gray = arr.astype(np.uint8)
            return np.repeat(gray[..., None], 3, axis=2)

        return gray_float
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):

        def over_white(part: Image.Image) -> np.ndarray:
            rgba = part.convert("RGBA")
            background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"), dtype=np.uint8)

        return over_white

    def rgb(part: Image.Image) -> np.ndarray:
        return np.asarray(part if part.mode == "RGB" else part.convert("RGB"), dtype=np.uint8)

    return rgb


def _to_rgb_array(img: Image.Image, factor: int = 1) -> np.ndarray:
    """Any Pillow mode -> (ceil(H/factor), ceil(W/factor), 3) uint8.

    Large images are converted a strip of rows at a time, so the only full-size buffer is
    Pillow's decoded image (plus the result when factor is 1): no full-size RGBA, float64 or
    byte-string copies. factor > 1 box-averages factor x factor blocks (Image.reduce).
    """
    width, height = img.size
    convert = _rgb_converter(img)
    if factor == 1 and width * height <= STRIP_PIXELS:
        return convert(img)
    rows = max(factor, STRIP_PIXELS // width // factor * factor)
    out = np.empty((-(-height // factor), -(-width // factor), 3), dtype=np.uint8)
    for top in range(0, height, rows):
        strip = convert(img.crop((0, top, width, min(height, top + rows))))
        if factor > 1:
            strip = np.asarray(Image.fromarray(strip).reduce(factor))
        out[top // factor : top // factor + strip.shape[0]] = strip
    return out


def _orientation(img: Image.Image) -> int:
    return img.getexif().get(0x0112, 1)


def _upright(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (what ImageOps.exif_transpose does) to an (H, W, 3) array."""
    turns: dict[int, Callable[[np.ndarray], np.ndarray]] = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.transpose(1, 0, 2),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: np.rot90(a, -1)[::-1],
        8: lambda a: np.rot90(a, 1),
    }
    turn = turns.get(orientation)
    return np.ascontiguousarray(turn(arr)) if turn else arr


def load_rgb(source: Source, min_size: tuple[int, int] | None = None) -> np.ndarray:
    """Decode an image file to an upright RGB array of shape (H, W, 3), dtype uint8.

    `min_size` (height, width) lets decoding skip detail that the later resize drops, keeping
    at least that size: JPEGs decode at 1/2, 1/4 or 1/8 scale (Pillow's draft mode); other
    images over 4 MP are box-reduced by an integer factor strip by strip.
    Raises ImageError with a plain reason on anything unusable.
    """
    try:
        with _open(source) as img:
            problem = _size_problem(img)
            if problem and problem.startswith("too large"):
                raise ImageError(problem)
            jpeg = img.format in JPEG_FORMATS
            orientation = _orientation(img) if jpeg else 1  # a JPEG's EXIF is in its header
            if min_size is not None and jpeg:
                h, w = min_size
                # A 90-degree EXIF rotation swaps which side must stay at least h or w.
                img.draft("RGB", (h, w) if orientation in (5, 6, 7, 8) else (w, h))
            with _decode_slot(img.size[0] * img.size[1]):
                if not jpeg:
                    orientation = _orientation(img)  # a PNG's EXIF may follow the pixels
                factor = 1
                width, height = img.size
                if min_size is not None and width * height > REDUCE_ABOVE_PIXELS:
                    h, w = min_size
                    need_w, need_h = (h, w) if orientation in (5, 6, 7, 8) else (w, h)
                    factor = max(1, min(width // max(1, need_w), height // max(1, need_h)))
                arr = _to_rgb_array(img, factor)
            return _upright(arr, orientation)
    except ImageError:
        raise
    except Image.DecompressionBombError as e:
        raise ImageError("too large (decompression-bomb guard)") from e
    except UnidentifiedImageError as e:
        raise ImageError("not an image (unrecognised file contents)") from e
    except Exception as e:
        raise ImageError(f"unreadable image ({type(e).__name__}: {e})") from e


def resize(image: np.ndarray, size: tuple[int, int], policy: ResizePolicy = "stretch") -> np.ndarray:
    """Resize an (H, W, 3) uint8 image to `size` = (height, width).

    stretch: ignore the aspect ratio (what Keras' image_dataset_from_directory does by default);
    crop: scale the shorter side to fit, then cut the centre; pad: scale the longer side to fit,
    then pad with black around it.
    """
    th, tw = size
    h, w = image.shape[:2]
    if policy not in RESIZE_POLICIES:
        raise ValueError(f"resize policy must be one of {RESIZE_POLICIES}, not {policy!r}")
    if policy == "stretch":
        return _scaled(image, th, tw)
    scale = max(th / h, tw / w) if policy == "crop" else min(th / h, tw / w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    scaled = _scaled(image, nh, nw)
    if policy == "crop":
        top, left = (nh - th) // 2, (nw - tw) // 2
        return np.ascontiguousarray(scaled[top : top + th, left : left + tw])
    out = np.zeros((th, tw, 3), dtype=np.uint8)
    top, left = (th - nh) // 2, (tw - nw) // 2
    out[top : top + nh, left : left + nw] = scaled
    return out


def _scaled(image: np.ndarray, h: int, w: int) -> np.ndarray:
    if image.shape[:2] == (h, w):
        return image
    shrinking = h * w < image.shape[0] * image.shape[1]
    # INTER_AREA avoids aliasing when shrinking; bilinear is the usual choice for enlarging.
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(image, (w, h), interpolation=interpolation)


def load_resized(source: Source, size: tuple[int, int], policy: ResizePolicy = "stretch") -> np.ndarray:
    """load_rgb then resize: the (height, width, 3) uint8 array every model input starts from."""
    return resize(load_rgb(source, min_size=size), size, policy)


def encode_png(image: np.ndarray) -> bytes:
    """(H, W, 3) uint8 RGB -> PNG bytes (for downloads and thumbnails)."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def png_data_uri(image: np.ndarray) -> str:
    """(H, W, 3) uint8 RGB -> a PNG data URI, for pages that must carry their pictures inside."""
    import base64

    return "data:image/png;base64," + base64.b64encode(encode_png(image)).decode("ascii")


def thumbnail_uri(image: np.ndarray, size: int = 64) -> str:
    """(H, W, 3) uint8 RGB -> a small PNG data URI, `size` px on its longer side (map tooltips)."""
    h, w = image.shape[:2]
    scale = size / max(h, w)
    if scale != 1:
        image = resize(image, (max(1, round(h * scale)), max(1, round(w * scale))))
    return png_data_uri(image)


def tile(images: np.ndarray, pad: int = 4, background: int = 255) -> np.ndarray:
    """Lay out images of shape (rows, cols, H, W, 3) as one (rows*(H+pad)-pad, cols*(W+pad)-pad, 3) mosaic."""
    rows, cols, h, w, c = images.shape
    out = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad, c), background, dtype=images.dtype)
    for r in range(rows):
        for k in range(cols):
            out[r * (h + pad) : r * (h + pad) + h, k * (w + pad) : k * (w + pad) + w] = images[r, k]
    return out
