"""The built-in demo dataset: generated shapes on busy backgrounds, with bounding boxes.

Every image holds one shape (the class) of random colour, size, position and rotation on a
random textured background. Generation is deterministic: the same parameters always give
byte-identical files, so a workspace can be rebuilt and results compared across machines.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from core.fileio import atomic_write_json, atomic_write_text, read_json
from core.workspace import make_temp_dir, subdir

DEMO_NAME = "demo"
DEMO_CLASSES: tuple[str, ...] = ("circle", "square", "triangle", "star")
BOXES_FILE = "boxes.json"
README_FILE = "README.txt"
MARKER_FILE = ".complete"
IMAGE_EXT = ".jpg"  # q92: ~15x faster to encode than PNG and ~3x smaller, given the noise
# Full-resolution colour (4:4:4): the default 4:2:0 smears the colour edges that outline
# the shapes, which matters at 32-64 px.
_JPEG_PARAMS = [
    cv2.IMWRITE_JPEG_QUALITY,
    92,
    cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
    cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444,
]
# Bump whenever the drawing changes, so existing demo folders are regenerated.
GENERATOR_VERSION = 2

_SHIFT = 4  # OpenCV fixed-point bits: sub-pixel vertex positions keep small shapes smooth
_ONE = 1 << _SHIFT
_MARGIN = 2  # pixels kept free between the shape and the image border

Box = tuple[int, int, int, int]


def _params(per_class: int, size: int, seed: int) -> dict:
    return {
        "generator_version": GENERATOR_VERSION,
        "classes": list(DEMO_CLASSES),
        "per_class": int(per_class),
        "size": int(size),
        "seed": int(seed),
        "format": IMAGE_EXT.lstrip("."),
    }


@lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in [0, 1), shared by every image of one size (read-only)."""
    coords = (np.arange(size, dtype=np.float32) + 0.5) / size
    xs, ys = np.meshgrid(coords, coords)
    xs.flags.writeable = False
    ys.flags.writeable = False
    return xs, ys


def _colour(rng: np.random.Generator) -> np.ndarray:
    """A random RGB colour shaped (3, 1, 1) to broadcast over a planar image."""
    return rng.uniform(0, 255, (3, 1, 1)).astype(np.float32)


# Images are built planar, (3, H, W) float32: per-channel broadcasting over contiguous rows
# is several times faster in numpy than the (H, W, 3) layout with a (H, W, 1) alpha.
def _blend(base: np.ndarray, colour: np.ndarray, alpha: np.ndarray | float) -> np.ndarray:
    return base + (colour - base) * alpha


@lru_cache(maxsize=4)
def _noise_bank(size: int) -> np.ndarray:
    """Fixed unit Gaussian noise (3, 2*size, 2*size); images take random crops of it.

    Drawing fresh Gaussian noise per image costs more than the rest of the drawing put together.
    """
    bank = np.random.default_rng(20240601).standard_normal((3, 2 * size, 2 * size), dtype=np.float32)
    bank.flags.writeable = False
    return bank


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A gradient plus one or two texture layers: planar (3, size, size) float32 in 0..255."""
    xs, ys = _grid(size)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = xs * math.cos(angle) + ys * math.sin(angle)
    ramp = (ramp - ramp.min()) / max(float(ramp.max() - ramp.min()), 1e-6)
    start = _colour(rng)
    image = start + (_colour(rng) - start) * ramp

    # One texture layer: busy enough that the model must find the shape, calm enough that a small
    # net learns the classes from a few hundred pictures (v1's crossing lines made that too slow).
    for kind in rng.choice(["stripes", "checker", "blotches", "lines"], size=1, p=[0.3, 0.3, 0.3, 0.1]):
        if kind == "stripes":
            phi = rng.uniform(0, np.pi)
            cycles = rng.uniform(3, 10)
            wave = np.sin(
                2 * np.pi * cycles * (xs * math.cos(phi) + ys * math.sin(phi)) + rng.uniform(0, 2 * np.pi)
            )
            # Hard-edged stripes half of the time, soft waves otherwise.
            alpha = (wave > 0).astype(np.float32) if rng.random() < 0.5 else 0.5 + 0.5 * wave
            image = _blend(image, _colour(rng), alpha * rng.uniform(0.15, 0.4))
        elif kind == "checker":
            phi = rng.uniform(0, np.pi / 2)
            cells = rng.uniform(3, 10)
            u = xs * math.cos(phi) + ys * math.sin(phi)
            v = ys * math.cos(phi) - xs * math.sin(phi)
            alpha = ((np.floor(u * cells) + np.floor(v * cells)) % 2).astype(np.float32)
            image = _blend(image, _colour(rng), alpha * rng.uniform(0.12, 0.32))
        elif kind == "blotches":
            cells = int(rng.integers(3, 8))
            small = rng.uniform(0, 255, (cells, cells, 3)).astype(np.float32)
            blotches = np.stack(cv2.split(cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)))
            image = _blend(image, blotches, rng.uniform(0.25, 0.55))
        else:
            layer = cv2.merge(list(image))
            for _ in range(int(rng.integers(2, 5))):
                p0 = (rng.uniform(-0.2, 1.2, 2) * size * _ONE).astype(int)
                p1 = (rng.uniform(-0.2, 1.2, 2) * size * _ONE).astype(int)
                thickness = max(1, round(size * rng.uniform(0.005, 0.02)))
                colour = tuple(float(c) for c in rng.uniform(0, 255, 3))
                cv2.line(layer, tuple(p0), tuple(p1), colour, thickness, cv2.LINE_AA, _SHIFT)
            image = _blend(image, np.stack(cv2.split(layer)), rng.uniform(0.35, 0.65))
    return image


def _outline(rng: np.random.Generator, cls: str, radius: float) -> np.ndarray | None:
    """Polygon vertices (N, 2) around the origin, rotated; None for a circle."""
    if cls == "circle":
        return None
    theta = rng.uniform(0, 2 * np.pi)
    if cls == "square":
        angles = theta + np.arange(4) * np.pi / 2 + np.pi / 4
        radii = np.full(4, radius * 1.2)
    elif cls == "triangle":
        # Small angle jitter: still clearly a triangle, but not always equilateral.
        angles = theta + np.arange(3) * 2 * np.pi / 3 + rng.uniform(-0.15, 0.15, 3)
        radii = radius * 1.25 * rng.uniform(0.9, 1.0, 3)
    elif cls == "star":
        inner = rng.uniform(0.4, 0.5)
        angles = theta + np.arange(10) * np.pi / 5
        radii = radius * 1.25 * np.where(np.arange(10) % 2 == 0, 1.0, inner)
    else:
        raise ValueError(f"unknown demo class {cls!r}; expected one of {DEMO_CLASSES}")
    return np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)


def _shape_mask(rng: np.random.Generator, cls: str, size: int) -> np.ndarray:
    """Anti-aliased coverage mask (size, size) uint8 of one randomly placed shape."""
    radius = rng.uniform(0.35, 0.75) * size / 2
    verts = _outline(rng, cls, radius)
    if verts is None:
        lo, hi = np.array([-radius, -radius]), np.array([radius, radius])
    else:
        lo, hi = verts.min(axis=0), verts.max(axis=0)
    # Shrink if the rotated shape would not fit with the margin (only at tiny image sizes).
    room = size - 2 * _MARGIN - 1
    scale = min(1.0, room / float(max(hi - lo)))
    radius, lo, hi = radius * scale, lo * scale, hi * scale
    if verts is not None:
        verts = verts * scale
    centre = np.array([rng.uniform(_MARGIN - lo[i], size - _MARGIN - hi[i]) for i in range(2)])
    mask = np.zeros((size, size), np.uint8)
    # OpenCV puts integer coordinates at pixel centres; our floats treat pixels as unit squares.
    centre_px = centre - 0.5
    if verts is None:
        cx, cy = np.round(centre_px * _ONE).astype(int)
        cv2.circle(mask, (int(cx), int(cy)), int(round(radius * _ONE)), 255, -1, cv2.LINE_AA, _SHIFT)
    else:
        pts = np.round((verts + centre_px) * _ONE).astype(np.int32)
        cv2.fillPoly(mask, [pts], 255, cv2.LINE_AA, _SHIFT)
    return mask


def _mask_box(mask: np.ndarray) -> Box:
    """Tight [x0, y0, x1, y1) box of every pixel the shape touches."""
    cols = np.flatnonzero(mask.any(axis=0))
    rows = np.flatnonzero(mask.any(axis=1))
    if cols.size == 0:
        raise ValueError("empty mask")
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def _contrasting_colour(rng: np.random.Generator, local: np.ndarray) -> np.ndarray:
    """A random colour far from `local` (the background under the shape); best of a few draws."""
    best, best_dist = local, -1.0
    for _ in range(12):
        colour = _colour(rng)
        dist = float(np.linalg.norm(colour - local))
        if dist >= 130:
            return colour
        if dist > best_dist:
            best, best_dist = colour, dist
    # Rare fallback (a mid-grey background): push the best draw further away from it.
    direction = (best - local) / max(best_dist, 1e-6)
    return np.clip(local + direction * 160, 0, 255).astype(np.float32)


def _draw_sample(rng: np.random.Generator, cls: str, size: int) -> tuple[np.ndarray, np.ndarray, Box]:
    """One image: (RGB uint8 (size, size, 3), shape coverage mask uint8, box [x0, y0, x1, y1))."""
    background = _background(rng, size)
    mask = _shape_mask(rng, cls, size)
    alpha = mask.astype(np.float32) * np.float32(1 / 255)
    weights = alpha / max(float(alpha.sum()), 1e-6)
    local = (background * weights).sum(axis=(1, 2)).reshape(3, 1, 1)
    colour = _contrasting_colour(rng, local)
    # A gentle light ramp across the shape so it is not perfectly flat.
    xs, ys = _grid(size)
    angle = rng.uniform(0, 2 * np.pi)
    shade = 1.0 + rng.uniform(0.0, 0.25) * ((xs - 0.5) * math.cos(angle) + (ys - 0.5) * math.sin(angle))
    image = _blend(background, colour * shade, alpha)
    oy, ox = rng.integers(0, size, 2)
    noise = _noise_bank(size)[rng.permutation(3), oy : oy + size, ox : ox + size]
    image += noise * rng.uniform(2.0, 9.0)
    image = np.clip(image + 0.5, 0, 255).astype(np.uint8)
    return cv2.merge(list(image)), mask, _mask_box(mask)


def _sample_rng(seed: int, class_index: int, index: int) -> np.random.Generator:
    # Seeding per image (not one stream) keeps every file independent of work order.
    return np.random.default_rng([seed, class_index, index])


def _render(seed: int, class_index: int, index: int, size: int) -> tuple[bytes, Box]:
    cls = DEMO_CLASSES[class_index]
    image, _, box = _draw_sample(_sample_rng(seed, class_index, index), cls, size)
    ok, encoded = cv2.imencode(IMAGE_EXT, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), _JPEG_PARAMS)
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return encoded.tobytes(), box


def _file_name(cls: str, index: int) -> str:
    return f"{cls}_{index:04d}{IMAGE_EXT}"


def _boxes_json(size: int, boxes: dict[str, list[int]]) -> str:
    """The sidecar as JSON with one box per line (json.dumps(indent=2) puts every number on its own)."""
    rows = ",\n".join(f"    {json.dumps(rel)}: {json.dumps(box)}" for rel, box in boxes.items())
    return (
        f'{{\n  "image_size": {json.dumps([size, size])},\n'
        f'  "classes": {json.dumps(list(DEMO_CLASSES))},\n'
        f'  "boxes": {{\n{rows}\n  }}\n}}\n'
    )


def _readme(params: dict) -> str:
    classes = ", ".join(params["classes"])
    return (
        "Convnet Workbench demo dataset (generated, synthetic).\n\n"
        f"Classes: {classes} - one folder per class, {params['per_class']} images each,\n"
        f"{params['size']}x{params['size']} px RGB JPEG. Each image shows one shape of random\n"
        "colour, size, position and rotation on a random textured background, with pixel noise.\n\n"
        f"{BOXES_FILE} holds each shape's tight bounding box in pixels as [x0, y0, x1, y1]\n"
        "(x1, y1 exclusive), keyed by the image path relative to this folder.\n\n"
        f"Regenerated automatically (seed {params['seed']}, so byte-identical) if deleted or incomplete.\n"
    )


def _remove_stale(out_dir: Path, per_class: int) -> None:
    """Delete demo images beyond `per_class` left by an earlier, larger generation."""
    for cls in DEMO_CLASSES:
        folder = out_dir / cls
        if not folder.is_dir():
            continue
        pattern = re.compile(rf"{re.escape(cls)}_(\d+)\.(png|jpg)")
        for path in folder.iterdir():
            match = pattern.fullmatch(path.name)
            if match and (int(match.group(1)) >= per_class or match.group(2) != IMAGE_EXT.lstrip(".")):
                path.unlink(missing_ok=True)


def generate(
    out_dir: str | os.PathLike,
    per_class: int = 1000,
    size: int = 128,
    seed: int = 0,
    progress: Callable[[float], None] | None = None,
) -> Path:
    """Write the demo dataset into `out_dir` (class sub-folders, boxes.json, README.txt).

    The `.complete` marker, holding the parameters, is written last; `progress` gets 0..1.
    """
    if per_class < 1:
        raise ValueError("per_class must be at least 1")
    if size < 16:
        raise ValueError("size must be at least 16 pixels")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MARKER_FILE).unlink(missing_ok=True)
    _remove_stale(out_dir, per_class)
    for cls in DEMO_CLASSES:
        (out_dir / cls).mkdir(exist_ok=True)

    jobs = [(ci, i) for ci in range(len(DEMO_CLASSES)) for i in range(per_class)]
    boxes: dict[str, list[int]] = {}
    step = max(1, len(jobs) // 50)

    def work(job: tuple[int, int]) -> tuple[str, Box]:
        ci, i = job
        data, box = _render(seed, ci, i, size)
        rel = f"{DEMO_CLASSES[ci]}/{_file_name(DEMO_CLASSES[ci], i)}"
        (out_dir / rel).write_bytes(data)
        return rel, box

    # numpy and OpenCV release the GIL for the heavy parts, so threads use both cores
    # without the fork/spawn costs (and TensorFlow-after-fork risks) of a process pool.
    workers = min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        try:
            for done, (rel, box) in enumerate(pool.map(work, jobs), start=1):
                boxes[rel] = list(box)
                if progress is not None and (done % step == 0 or done == len(jobs)):
                    progress(done / len(jobs))
        except BaseException:
            # E.g. a Streamlit rerun raising inside `progress`: stop now, not after every image.
            pool.shutdown(cancel_futures=True)
            raise

    params = _params(per_class, size, seed)
    atomic_write_text(out_dir / BOXES_FILE, _boxes_json(size, boxes))
    atomic_write_text(out_dir / README_FILE, _readme(params))
    atomic_write_json(out_dir / MARKER_FILE, params)
    return out_dir


def is_complete(
    dataset_dir: str | os.PathLike, per_class: int = 1000, size: int = 128, seed: int = 0
) -> bool:
    """True when `dataset_dir` holds a finished generation with exactly these parameters."""
    try:
        return read_json(Path(dataset_dir) / MARKER_FILE) == _params(per_class, size, seed)
    except (OSError, ValueError):
        return False


def ensure_demo(
    workspace: str | os.PathLike | None = None,
    per_class: int = 1000,
    size: int = 128,
    progress: Callable[[float], None] | None = None,
) -> Path:
    """The demo dataset folder in the workspace, generated first if missing or incomplete.

    Generation happens in a hidden temp folder that is renamed into place, so readers never
    see half a dataset and two processes calling this at once both end up with a full one.
    """
    target = subdir("datasets", workspace) / DEMO_NAME
    if is_complete(target, per_class, size):
        return target
    parent = target.parent
    tmp = make_temp_dir(parent, DEMO_NAME)
    try:
        generate(tmp, per_class=per_class, size=size, progress=progress)
        for _ in range(10):
            if is_complete(target, per_class, size):
                break  # another process finished first; keep theirs
            if target.exists():
                trash = make_temp_dir(parent, f"{DEMO_NAME}-old")
                with contextlib.suppress(FileNotFoundError):  # someone else moved it away meanwhile
                    os.replace(target, trash / DEMO_NAME)
                shutil.rmtree(trash, ignore_errors=True)
            try:
                os.rename(tmp, target)
                break
            except OSError:
                continue  # target reappeared (a concurrent swap); look again
        else:
            raise RuntimeError(f"could not move the generated demo dataset into {target}")
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def load_boxes(dataset_dir: str | os.PathLike) -> dict[str, Box]:
    """Bounding boxes from the sidecar: {"circle/circle_0000.jpg": (x0, y0, x1, y1), ...}."""
    data = read_json(Path(dataset_dir) / BOXES_FILE)
    boxes: dict[str, Box] = {}
    for rel, (x0, y0, x1, y1) in data["boxes"].items():
        boxes[rel] = (int(x0), int(y0), int(x1), int(y1))
    return boxes
