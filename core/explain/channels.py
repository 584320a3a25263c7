"""Layer activations of one image and their display as a grid of coloured channels."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from core.explain.graph import activation_model, image_batch
from core.images import tile


def activations(model: keras.Model, image: Any, layers: Sequence[str]) -> dict[str, np.ndarray]:
    """Outputs of the layers at `layers` (paths) for one (H, W, 3) image: {path: (h, w, c) float32}.

    One forward pass of a cached multi-output model (``activation_model``).
    """
    paths = tuple(dict.fromkeys(layers))
    outputs = activation_model(model, paths)(image_batch(model, image)[:1], training=False)
    return {p: np.asarray(ops.convert_to_numpy(ops.cast(o, "float32")))[0] for p, o in zip(paths, outputs)}


def normalize_channel(a: np.ndarray) -> np.ndarray:
    """One channel (h, w) -> uint8 (h, w) with the seeds' display formula (Deep Learning with Python).

    x -= mean; x /= std; x *= 64; x += 128; clip to 0..255; uint8, in float32 like the seed. The std is
    at least 1e-5: identical to the seed for any real channel, while a constant channel (std 0, NaN
    in the seed) becomes mid-grey 128.
    """
    x = np.array(a, dtype=np.float32)
    x -= x.mean()
    x /= max(float(x.std()), 1e-5)
    x *= 64
    x += 128
    return np.clip(x, 0, 255).astype(np.uint8)


def channel_pages(channels: int, per_page: int | None = None) -> int:
    """Number of pages of `per_page` channels (1 when per_page is None)."""
    if per_page is None or per_page <= 0:
        return 1
    return max(1, math.ceil(channels / per_page))


def _colormap(name: str) -> np.ndarray:
    """A matplotlib colormap as a (256, 3) uint8 lookup table."""
    import matplotlib

    try:
        cmap = matplotlib.colormaps[name]
    except KeyError:
        raise ValueError(f"Unknown colormap {name!r} (try viridis, magma, gray).") from None
    return (cmap(np.linspace(0, 1, 256))[:, :3] * 255 + 0.5).astype(np.uint8)


def channel_grid(
    act: np.ndarray,
    per_row: int = 16,
    page: int = 0,
    per_page: int | None = None,
    cmap: str = "viridis",
    gap: int = 1,
) -> np.ndarray:
    """Activations (h, w, c) -> one image (H', W', 3) uint8: each channel normalised, coloured, tiled.

    Channels are normalised with ``normalize_channel``, coloured with the matplotlib colormap `cmap`,
    and laid out `per_row` per row with a `gap`-pixel white line between them. Wide layers can be shown
    in pages of `per_page` channels (see ``channel_pages``); `page` counts from 0.
    """
    act = np.asarray(act)
    if act.ndim != 3:
        raise ValueError(f"Expected activations of shape (h, w, c), got {act.shape}.")
    h, w, c = act.shape
    pages = channel_pages(c, per_page)
    if not 0 <= page < pages:
        raise ValueError(f"page must be in 0..{pages - 1}, got {page}.")
    start = page * per_page if per_page else 0
    stop = min(c, start + per_page) if per_page else c
    chosen = range(start, stop)
    cols = min(per_row, per_page or c)  # every page as wide as a full one
    rows = math.ceil(len(chosen) / cols)
    lut = _colormap(cmap)
    cells = np.full((rows * cols, h, w, 3), 255, dtype=np.uint8)
    for i, k in enumerate(chosen):
        cells[i] = lut[normalize_channel(act[..., k])]
    return tile(cells.reshape(rows, cols, h, w, 3), pad=gap, background=255)
