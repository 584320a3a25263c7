"""Image files in, upright RGB uint8 arrays out: cheap checks, decoding, resizing.

Every module that reads an image (scan, cache, predict, explain) goes through here, so
grayscale, RGBA, CMYK, 16-bit and EXIF-rotated files are handled the same way everywhere.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import BinaryIO, Literal

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
MIN_SIDE = 16
# Decompression-bomb guard: 64 megapixels (e.g. 8000x8000) is more than any photo we need.
MAX_PIXELS = 64_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

ResizePolicy = Literal["stretch", "crop", "pad"]
RESIZE_POLICIES: tuple[str, ...] = ("stretch", "crop", "pad")

Source = str | os.PathLike | bytes | BinaryIO


class ImageError(ValueError):
    """A file that cannot be used as an image; the message says why in plain words."""


def is_image_name(name: str) -> bool:
    """True for a visible file whose extension is one we read."""
    base = os.path.basename(name)
    return not base.startswith(".") and os.path.splitext(base)[1].lower() in IMAGE_EXTENSIONS


def _open(source: Source) -> Image.Image:
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    return Image.open(source)


def _jpeg_is_complete(path: Path) -> bool:
    """A JPEG ends with the EOI marker (FF D9), possibly followed by a little padding."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - 4096))
        return b"\xff\xd9" in f.read()


def check_image(path: str | os.PathLike) -> str | None:
    """Why `path` cannot be used, or None when it looks fine; reads headers, not pixels.

    PNG/GIF/TIFF are verified by Pillow (checksums); JPEGs are checked for their end marker.
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            return "empty file (0 bytes)"
        with _open(path) as img:
            width, height = img.size
            fmt = img.format
            if width * height > MAX_PIXELS:
                return (
                    f"too large ({width}x{height} pixels; the limit is {MAX_PIXELS // 1_000_000} megapixels)"
                )
            if min(width, height) < MIN_SIDE:
                return f"too small ({width}x{height}; at least {MIN_SIDE} px a side)"
            if fmt != "JPEG":
                img.verify()
        if fmt == "JPEG" and not _jpeg_is_complete(path):
            return "truncated JPEG (the file ends before the image does)"
    except Image.DecompressionBombError:
        return f"too large (over {MAX_PIXELS // 1_000_000} megapixels)"
    except UnidentifiedImageError:
        return "not an image (unrecognised file contents)"
    except OSError as e:
        return f"unreadable image ({e})"
    except Exception as e:  # Pillow raises assorted errors on hostile files
        return f"unreadable image ({type(e).__name__}: {e})"
    return None


def _to_rgb_array(img: Image.Image) -> np.ndarray:
    """Any Pillow mode -> (H, W, 3) uint8, 16-bit scaled down, transparency over white."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if mode.startswith("I;16") or arr.max() > 255 else 255.0
        gray = np.clip(arr / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        gray = ((arr - lo) / (hi - lo or 1.0) * 255.0).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def load_rgb(source: Source, min_size: tuple[int, int] | None = None) -> np.ndarray:
    """Decode an image file to an upright RGB array of shape (H, W, 3), dtype uint8.

    `min_size` (height, width) lets JPEG decoding skip detail that the later resize drops
    (Pillow's draft mode decodes at 1/2, 1/4 or 1/8 scale), keeping at least that size.
    Raises ImageError with a plain reason on anything unusable.
    """
    try:
        with _open(source) as img:
            if img.size[0] * img.size[1] > MAX_PIXELS:
                raise ImageError(f"too large ({img.size[0]}x{img.size[1]} pixels)")
            if min_size is not None and img.format == "JPEG":
                orientation = img.getexif().get(0x0112, 1)
                h, w = min_size
                # A 90-degree EXIF rotation swaps which side must stay at least h or w.
                request = (h, w) if orientation in (5, 6, 7, 8) else (w, h)
                img.draft("RGB", request)
            img = ImageOps.exif_transpose(img)
            return _to_rgb_array(img)
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


def tile(images: np.ndarray, pad: int = 4, background: int = 255) -> np.ndarray:
    """Lay out images of shape (rows, cols, H, W, 3) as one (rows*(H+pad)-pad, cols*(W+pad)-pad, 3) mosaic."""
    rows, cols, h, w, c = images.shape
    out = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad, c), background, dtype=images.dtype)
    for r in range(rows):
        for k in range(cols):
            out[r * (h + pad) : r * (h + pad) + h, k * (w + pad) : k * (w + pad) + w] = images[r, k]
    return out
