"""Seeded previews: every variant of a batch in one pass per layer, as build(config, seed) would make them."""

from __future__ import annotations

import functools
import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

from core.augment.settings import AugmentConfig
from core.augment.stack import build, layer_seed, layer_specs


class _Unbatchable(Exception):
    """A layer's transformation dict has a shape the batched preview path does not know."""


@functools.lru_cache(maxsize=32)
def _cached_stack(config_json: str) -> tuple[list[tuple[str, str, Any]], threading.Lock]:
    """Built layers (kind, draw-cache key, layer) for one config plus a lock guarding their seed state."""
    config = AugmentConfig.from_json(config_json)
    model = build(config, seed=0)
    keys = [json.dumps([s.kind, s.cls, s.kwargs]) for s in layer_specs(config)]
    kinds = [s.kind for s in layer_specs(config)]
    return list(zip(kinds, keys, model.layers, strict=True)), threading.Lock()


# Random draws (small tensors: angles, shifts, flip coins...) depend only on the layer's arguments, the
# seed and the batch shape, never on pixel values, so they are shared between configs: moving one slider
# only redraws that layer. Keyed by (layer key, seed, N, H, W).
_DRAWS: OrderedDict[tuple[str, int, int, int, int], dict[str, Any]] = OrderedDict()
_DRAWS_MAX = 2048
_DRAWS_LOCK = threading.Lock()


def _draw(kind: str, key: str, layer: Any, seed: int, x: Any) -> dict[str, Any]:
    """layer.get_random_transformation for a batch like x, as a fresh layer seeded for `seed` draws it."""
    n, h, w = (int(d) for d in x.shape[:3])
    ck = (key, seed, n, h, w)
    with _DRAWS_LOCK:
        if ck in _DRAWS:
            _DRAWS.move_to_end(ck)
            return _DRAWS[ck]
    _reseed(layer, layer_seed(seed, kind))
    t = layer.get_random_transformation(x, training=True)
    with _DRAWS_LOCK:
        _DRAWS[ck] = t
        while len(_DRAWS) > _DRAWS_MAX:
            _DRAWS.popitem(last=False)
    return t


def _reseed(layer: Any, value: int) -> None:
    """Reset a preprocessing layer's SeedGenerator to the state a fresh layer with seed `value` has."""
    state = layer.generator.state
    state.assign(np.asarray([value, 0], dtype=str(state.dtype).split(".")[-1]))


def _combine(parts: list[dict[str, Any]], n: int, full_shape: tuple[int, ...]) -> dict[str, Any]:
    """Concatenate per-seed transformation dicts (batch n each) along the batch axis."""
    from keras import ops

    out: dict[str, Any] = {}
    for key, first in parts[0].items():
        if key == "input_shape":
            out[key] = full_shape
        elif key == "batch_size":
            out[key] = full_shape[0]
        elif key in ("image_height", "image_width"):
            out[key] = first
        elif hasattr(first, "shape") and len(first.shape) >= 1 and first.shape[0] == n:
            out[key] = ops.concatenate([p[key] for p in parts], axis=0)
        else:
            raise _Unbatchable(key)
    return out


def _run_batched(layers: list[tuple[str, str, Any]], x: Any, seeds: Sequence[int]) -> Any:
    """All K variants in one pass per layer: per-seed random draws, one batched transform. (K*N, H, W, 3)."""
    from keras import ops

    n = int(x.shape[0])
    y = ops.concatenate([x] * len(seeds), axis=0)
    full_shape = tuple(int(d) for d in y.shape)
    for kind, key, layer in layers:
        parts = [_draw(kind, key, layer, s, x) for s in seeds]
        y = layer.transform_images(y, _combine(parts, n, full_shape), training=True)
    return y


def _run_per_seed(layers: list[tuple[str, str, Any]], x: Any, seeds: Sequence[int]) -> Any:
    """Reference path: the whole stack once per seed, as build(config, seed) would run. (K*N, H, W, 3)."""
    from keras import ops

    outs = []
    for s in seeds:
        y = x
        for kind, _key, layer in layers:
            _reseed(layer, layer_seed(s, kind))
            y = layer(y, training=True)
        outs.append(y)
    return ops.concatenate(outs, axis=0)


def preview(
    config: AugmentConfig, images: np.ndarray, seeds: Sequence[int], *, batched: bool = True
) -> np.ndarray:
    """uint8 (N, H, W, 3) -> uint8 (N, K, H, W, 3); variant k is build(config, seed=seeds[k]) on the batch."""
    from keras import ops

    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must have shape (N, H, W, 3), got {images.shape}")
    if images.dtype != np.uint8:
        raise ValueError(f"images must be uint8, got {images.dtype}")
    seeds = [int(s) for s in seeds]
    n, h, w, _ = images.shape
    k = len(seeds)
    if config.is_identity() or n == 0 or k == 0:
        return np.ascontiguousarray(np.broadcast_to(images[:, None], (n, k, h, w, 3)))
    layers, lock = _cached_stack(config.to_json())
    x = ops.convert_to_tensor(images.astype(np.float32))
    with lock:
        y = None
        if batched:
            try:
                y = _run_batched(layers, x, seeds)
            except _Unbatchable:
                y = None
        if y is None:
            y = _run_per_seed(layers, x, seeds)
        y = ops.convert_to_numpy(y)
    y = np.clip(np.rint(y), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(y.reshape(k, n, h, w, 3).transpose(1, 0, 2, 3, 4))
