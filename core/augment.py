"""Data augmentation: a JSON-friendly config, the Keras 3 layer stack it builds, fast seeded previews.

Units and conversions (everything the UI shows is in human units).

Rotation, shifts, shear and zoom form one ``core.layers.RandomAffine`` (one matrix and one
resampling per image, as ImageDataGenerator does; four chained Keras layers would resample four
times, blurring more and costing about a third of a bfloat16 training step):

* ``rotation_deg``: angle drawn from [-deg, deg] degrees.
* ``width_shift`` / ``height_shift``: shift drawn from [-f, f] of the width / height.
* ``shear_deg``: x shear by an angle drawn from [-deg, deg] degrees (a pixel moves tan(angle) * y
  across; only x, like ImageDataGenerator), about the image centre.
* ``zoom``: scale drawn from [1 - z, 1 + z], the same on both axes so the aspect ratio is kept
  (ImageDataGenerator draws each axis on its own).

The colour settings are Keras layers (which want fractions):

* ``brightness``: fraction of the value range added or removed -> ``RandomBrightness(factor=b)``.
* ``contrast``: contrast factor drawn from [1 - c, 1 + c] -> ``RandomContrast(factor=(c, c))``. A
  plain float would give [1, 1 + c] only (Keras' base factor handling), hence the tuple.
* ``saturation``: saturation multiplier in [1 - s, 1 + s]. RandomSaturation draws f in its factor
  range and multiplies by f / (1 - f), so the range is (1 - s) / (2 - s) .. (1 + s) / (2 + s).
* ``hue``: max hue rotation either way as a fraction of the hue circle -> ``RandomHue(factor=2 * h)``
  (Keras rotates by up to factor / 2 of the circle).

The default ``fill_mode`` is "reflect": it is the Keras layers' own default (so the "seed-001"
preset fills as the Keras tutorial does) and avoids ImageDataGenerator's smeared "nearest" edges;
the "seed-000" preset sets "nearest" to match ImageDataGenerator.

Layer order: flips, the affine transform, then saturation, hue, brightness, contrast.
Saturation goes first among the colour layers because Keras' RandomSaturation clips S to the value
range (0-255) instead of 0-1, so oversaturated pixels can leave [0, 255]; the later colour layers
clip back into range. preview() always clips.

Both flips are separate layers: RandomFlip("horizontal_and_vertical") draws one coin for both
axes (so it flips both or neither).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import json
import os
import re
import threading
import zlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.fileio import atomic_write_json, read_json
from core.workspace import subdir

if TYPE_CHECKING:  # keras is imported lazily: configs and presets load without starting TensorFlow
    import keras

FILL_MODES: tuple[str, ...] = ("reflect", "nearest", "wrap", "constant")
VALUE_RANGE: tuple[int, int] = (0, 255)
INTERPOLATION = "bilinear"
MAX_SHEAR_DEG = 45.0  # beyond 45 degrees a shear squashes the image more than it slants it
MAX_ZOOM = 0.95  # the scale 1 - zoom must stay > 0

_GEOMETRIC_KINDS = ("affine",)


def _num(label: str, unit: str, help: str, lo: float, hi: float, step: float, group: str) -> Any:
    """A numeric dataclass field defaulting to 0 (off) with UI metadata."""
    return field(
        default=0.0,
        metadata={
            "label": label,
            "unit": unit,
            "help": help,
            "min": lo,
            "max": hi,
            "step": step,
            "kind": "float",
            "group": group,
        },
    )


def _flag(label: str, help: str) -> Any:
    """A boolean dataclass field defaulting to False with UI metadata."""
    return field(
        default=False,
        metadata={
            "label": label,
            "unit": "",
            "help": help,
            "min": None,
            "max": None,
            "step": None,
            "kind": "bool",
            "group": "geometric",
        },
    )


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation settings in human units; defaults are the identity (nothing applied)."""

    rotation_deg: float = _num(
        "Rotation",
        "degrees",
        "Rotate by a random angle up to this many degrees either way.",
        0.0,
        180.0,
        1.0,
        "geometric",
    )
    width_shift: float = _num(
        "Horizontal shift",
        "fraction of width",
        "Shift left/right by up to this fraction of the width.",
        0.0,
        1.0,
        0.01,
        "geometric",
    )
    height_shift: float = _num(
        "Vertical shift",
        "fraction of height",
        "Shift up/down by up to this fraction of the height.",
        0.0,
        1.0,
        0.01,
        "geometric",
    )
    shear_deg: float = _num(
        "Shear",
        "degrees",
        "Slant sideways by up to this angle either way (x shear).",
        0.0,
        MAX_SHEAR_DEG,
        0.1,
        "geometric",
    )
    zoom: float = _num(
        "Zoom",
        "fraction",
        "Zoom in or out by up to this fraction (0.2: scale 0.8-1.2).",
        0.0,
        MAX_ZOOM,
        0.01,
        "geometric",
    )
    horizontal_flip: bool = _flag("Flip left-right", "Mirror left-right with probability 1/2.")
    vertical_flip: bool = _flag("Flip upside-down", "Mirror top-bottom with probability 1/2.")
    brightness: float = _num(
        "Brightness",
        "fraction of range",
        "Add or remove up to this fraction of full brightness (255).",
        0.0,
        1.0,
        0.01,
        "photometric",
    )
    contrast: float = _num(
        "Contrast", "fraction", "Scale contrast by a factor in [1 - c, 1 + c].", 0.0, 1.0, 0.01, "photometric"
    )
    saturation: float = _num(
        "Saturation",
        "fraction",
        "Scale saturation by a factor in [1 - s, 1 + s].",
        0.0,
        1.0,
        0.01,
        "photometric",
    )
    hue: float = _num(
        "Hue",
        "fraction of hue circle",
        "Rotate hue by up to this fraction of the colour wheel (0.5 = 180°).",
        0.0,
        0.5,
        0.01,
        "photometric",
    )
    fill_mode: str = field(
        default="reflect",
        metadata={
            "label": "Fill mode",
            "unit": "",
            "kind": "choice",
            "choices": FILL_MODES,
            "group": "fill",
            "min": None,
            "max": None,
            "step": None,
            "help": "How to fill pixels that a rotation/shift/shear/zoom uncovers.",
        },
    )
    fill_value: float = field(
        default=0.0,
        metadata={
            "label": "Fill value",
            "unit": "0-255 grey level",
            "kind": "float",
            "group": "fill",
            "min": 0.0,
            "max": 255.0,
            "step": 1.0,
            "help": "Grey level for uncovered pixels when fill mode is 'constant'.",
        },
    )

    def __post_init__(self) -> None:
        """Normalise numbers to float and validate."""
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.metadata["kind"] == "float" and isinstance(v, int) and not isinstance(v, bool):
                object.__setattr__(self, f.name, float(v))
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the first invalid field."""
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            kind = f.metadata["kind"]
            if kind == "float":
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    raise ValueError(f"{f.name} must be a number, got {v!r}")
                lo, hi = f.metadata["min"], f.metadata["max"]
                if not (lo <= v <= hi):  # also rejects NaN
                    raise ValueError(f"{f.name} must be between {lo:g} and {hi:g}, got {v!r}")
            elif kind == "bool":
                if not isinstance(v, bool):
                    raise ValueError(f"{f.name} must be true or false, got {v!r}")
            elif kind == "choice" and v not in f.metadata["choices"]:
                raise ValueError(f"{f.name} must be one of {', '.join(f.metadata['choices'])}; got {v!r}")

    def is_identity(self) -> bool:
        """True when no layer would be applied."""
        return not _layer_specs(self)

    def to_dict(self) -> dict[str, Any]:
        """All fields as a JSON-serialisable dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AugmentConfig:
        """Config from a dict; missing keys take defaults, unknown keys raise ValueError."""
        if not isinstance(d, dict):
            raise ValueError(f"augmentation config must be a JSON object, got {type(d).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(d) - set(names))
        if unknown:
            raise ValueError(
                f"unknown augmentation setting(s): {', '.join(map(repr, unknown))}; "
                f"expected some of: {', '.join(names)}"
            )
        return cls(**d)

    def to_json(self) -> str:
        """Canonical JSON (stable key order): also the cache key for built layer stacks."""
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> AugmentConfig:
        """Inverse of to_json()."""
        return cls.from_dict(json.loads(text))


def field_specs() -> list[dict[str, Any]]:
    """One dict per config field (name, default and the UI metadata) for generating widgets."""
    return [{"name": f.name, "default": f.default, **f.metadata} for f in dataclasses.fields(AugmentConfig)]


# --------------------------------------------------------------------------- presets

PRESETS: dict[str, AugmentConfig] = {
    "none": AugmentConfig(),
    "seed-000": AugmentConfig(
        rotation_deg=40,
        width_shift=0.2,
        height_shift=0.2,
        shear_deg=0.2,
        zoom=0.2,
        horizontal_flip=True,
        fill_mode="nearest",
    ),
    "seed-001": AugmentConfig(horizontal_flip=True, rotation_deg=36, zoom=0.2),
    "strong": AugmentConfig(
        horizontal_flip=True,
        rotation_deg=30,
        width_shift=0.15,
        height_shift=0.15,
        shear_deg=10,
        zoom=0.3,
        brightness=0.2,
        contrast=0.3,
        saturation=0.3,
        hue=0.05,
        fill_mode="reflect",
    ),
    "photos": AugmentConfig(
        horizontal_flip=True,
        rotation_deg=15,
        width_shift=0.1,
        height_shift=0.1,
        zoom=0.2,
        brightness=0.1,
        contrast=0.2,
        fill_mode="reflect",
    ),
}

PRESET_NOTES: dict[str, str] = {
    "none": "No augmentation: images go to the model unchanged.",
    "seed-000": (
        "The ImageDataGenerator settings of the classic Keras 'Dogs vs Cats' tutorial: rotation_range=40, "
        "width/height_shift_range=0.2, shear_range=0.2, zoom_range=0.2, horizontal_flip=True, "
        "fill_mode='nearest'. ImageDataGenerator reads shear_range in degrees, so 0.2 means a 0.2° shear "
        "(practically none); it is kept at 0.2° here to stay faithful. ImageDataGenerator zooms each axis "
        "independently; here both axes share one zoom factor."
    ),
    "seed-001": (
        "The Keras 3 tutorial stack: RandomFlip('horizontal'), RandomRotation(0.1) = ±36° "
        "(0.1 of a full turn), RandomZoom(0.2), with the layers' default 'reflect' fill; rotation and zoom "
        "are applied here as one affine transform, with the same ranges."
    ),
    "strong": (
        "Stronger geometric and colour changes that still look like real photos: left-right flips only "
        "(upside-down pets are not realistic), ±30° rotation, 15% shifts, 10° shear, ±30% zoom, "
        "brightness/contrast/saturation jitter and a small hue shift."
    ),
    "photos": (
        "What the ResNet recipe trains with on photos: left-right flips, ±15° rotation, 10% shifts, "
        "±20% zoom, a little brightness and contrast change, reflected edges. Milder than 'strong': a "
        "net learning from a few thousand photos needs variety, not pictures it can no longer read."
    ),
}

# --------------------------------------------------------------------------- layer specs


@dataclass(frozen=True)
class _Spec:
    """One layer to build: a stable kind (for seeding), its class (in `module`) and its arguments."""

    kind: str
    cls: str
    kwargs: dict[str, Any]
    comment: str
    module: str = "keras.layers"


def _saturation_factor(s: float) -> tuple[float, float]:
    """RandomSaturation factor range giving a multiplier in [1 - s, 1 + s] (f -> f / (1 - f))."""
    return ((1.0 - s) / (2.0 - s), (1.0 + s) / (2.0 + s))


def _layer_specs(config: AugmentConfig) -> list[_Spec]:
    """The layers (in order) that build() and to_code() produce for `config`."""
    c = config
    fill = {"fill_mode": c.fill_mode, "fill_value": float(c.fill_value), "interpolation": INTERPOLATION}
    vr = VALUE_RANGE
    specs: list[_Spec] = []
    if c.horizontal_flip:
        specs.append(_Spec("flip_horizontal", "RandomFlip", {"mode": "horizontal"}, "flip left-right, p=1/2"))
    if c.vertical_flip:
        specs.append(_Spec("flip_vertical", "RandomFlip", {"mode": "vertical"}, "flip upside-down, p=1/2"))
    if any((c.rotation_deg, c.width_shift, c.height_shift, c.shear_deg, c.zoom)):
        parts = [
            f"rotate ±{c.rotation_deg:g}°" if c.rotation_deg else "",
            f"shift ±{c.width_shift:g} of the width" if c.width_shift else "",
            f"±{c.height_shift:g} of the height" if c.height_shift else "",
            f"x shear ±{c.shear_deg:g}°" if c.shear_deg else "",
            f"scale {1 - c.zoom:g}-{1 + c.zoom:g}" if c.zoom else "",
        ]
        specs.append(
            _Spec(
                "affine",
                "RandomAffine",
                {
                    "rotation": c.rotation_deg,
                    "width_shift": c.width_shift,
                    "height_shift": c.height_shift,
                    "shear": c.shear_deg,
                    "zoom": c.zoom,
                    **fill,
                },
                ", ".join(p for p in parts if p) + ": one resampling",
                module="core.layers",
            )
        )
    if c.saturation > 0:
        specs.append(
            _Spec(
                "saturation",
                "RandomSaturation",
                {"factor": _saturation_factor(c.saturation), "value_range": vr},
                f"saturation x{1 - c.saturation:g}..x{1 + c.saturation:g}: f/(1-f) for f in factor",
            )
        )
    if c.hue > 0:
        specs.append(
            _Spec(
                "hue",
                "RandomHue",
                {"factor": 2.0 * c.hue, "value_range": vr},
                f"hue shift up to ±{c.hue:g} of the colour wheel (Keras shifts by factor/2)",
            )
        )
    if c.brightness > 0:
        specs.append(
            _Spec(
                "brightness",
                "RandomBrightness",
                {"factor": c.brightness, "value_range": vr},
                f"add up to ±{c.brightness:g} x 255",
            )
        )
    if c.contrast > 0:
        specs.append(
            _Spec(
                "contrast",
                "RandomContrast",
                {"factor": (c.contrast, c.contrast), "value_range": vr},
                f"contrast x{1 - c.contrast:g}..x{1 + c.contrast:g}",
            )
        )
    return specs


def layer_seed(seed: int, kind: str) -> int:
    """Deterministic per-layer seed (0..2**31-1) from a user seed and the layer kind, e.g. "rotation"."""
    return zlib.crc32(f"{int(seed)}/{kind}".encode()) & 0x7FFFFFFF


def build(config: AugmentConfig, seed: int | None = None) -> keras.Sequential:
    """keras.Sequential named "augmentation": float (N, H, W, 3) in [0, 255] -> same shape; identity if off."""
    import keras

    specs = _layer_specs(config)
    if not specs:
        # An empty Sequential cannot be called in Keras 3, so the identity is one Identity layer.
        return keras.Sequential([keras.layers.Identity()], name="augmentation")
    layers = [
        getattr(importlib.import_module(s.module), s.cls)(
            **s.kwargs, seed=None if seed is None else layer_seed(seed, s.kind)
        )
        for s in specs
    ]
    return keras.Sequential(layers, name="augmentation")


# --------------------------------------------------------------------------- preview


class _Unbatchable(Exception):
    """A layer's transformation dict has a shape the batched preview path does not know."""


@functools.lru_cache(maxsize=32)
def _cached_stack(config_json: str) -> tuple[list[tuple[str, str, Any]], threading.Lock]:
    """Built layers (kind, draw-cache key, layer) for one config plus a lock guarding their seed state."""
    config = AugmentConfig.from_json(config_json)
    model = build(config, seed=0)
    keys = [json.dumps([s.kind, s.cls, s.kwargs]) for s in _layer_specs(config)]
    kinds = [s.kind for s in _layer_specs(config)]
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


# --------------------------------------------------------------------------- code, text, sweeps


def _py(v: Any) -> str:
    """A Python literal for v (strings in double quotes, floats by repr so they round-trip)."""
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, tuple):
        return "(" + ", ".join(_py(x) for x in v) + ")"
    return repr(v)


def to_code(config: AugmentConfig, seed: int | None = None) -> str:
    """Copy-pasteable Python building the same keras.Sequential as build(config, seed)."""
    specs = _layer_specs(config)
    head = [
        "import keras",
        "",
        "# Input: float images in [0, 255], shape (N, H, W, 3). Active only when training=True.",
    ]
    if not specs:
        return "\n".join(
            [
                "import keras",
                "",
                "# No augmentation: images go to the model unchanged.",
                'augmentation = keras.Sequential([keras.layers.Identity()], name="augmentation")',
                "",
            ]
        )
    ours = sorted({s.cls for s in specs if s.module != "keras.layers"})
    if ours:  # Convnet Workbench's own layers (core/layers.py), e.g. the one-resampling affine transform
        head.insert(1, f"from core.layers import {', '.join(ours)}")
    lines = [*head, "augmentation = keras.Sequential(", "    ["]
    for s in specs:
        kwargs = dict(s.kwargs)
        if seed is not None:
            kwargs["seed"] = layer_seed(seed, s.kind)
        args = ", ".join(f"{k}={_py(v)}" for k, v in kwargs.items())
        name = s.cls if s.module != "keras.layers" else f"keras.layers.{s.cls}"
        lines.append(f"        {name}({args}),  # {s.comment}")
    lines += ["    ],", '    name="augmentation",', ")", ""]
    return "\n".join(lines)


def _pct(x: float) -> str:
    """0.2 -> '20%'."""
    return f"{x * 100:g}%"


def describe(config: AugmentConfig) -> list[str]:
    """Plain-language one-liners, e.g. ["Flip left-right", "Rotate up to ±40°"]."""
    c = config
    out: list[str] = []
    if c.horizontal_flip:
        out.append("Flip left-right (half of the time)")
    if c.vertical_flip:
        out.append("Flip upside-down (half of the time)")
    if c.rotation_deg > 0:
        out.append(f"Rotate up to ±{c.rotation_deg:g}°")
    if c.width_shift > 0:
        out.append(f"Shift sideways up to ±{_pct(c.width_shift)} of the width")
    if c.height_shift > 0:
        out.append(f"Shift up/down up to ±{_pct(c.height_shift)} of the height")
    if c.shear_deg > 0:
        out.append(f"Shear (slant sideways) up to ±{c.shear_deg:g}°")
    if c.zoom > 0:
        out.append(f"Zoom in or out up to {_pct(c.zoom)}")
    if c.saturation > 0:
        out.append(f"Saturation ×{1 - c.saturation:g} to ×{1 + c.saturation:g}")
    if c.hue > 0:
        out.append(f"Shift hue up to ±{c.hue * 360:g}° on the colour wheel")
    if c.brightness > 0:
        out.append(f"Brightness ±{_pct(c.brightness)} of full range")
    if c.contrast > 0:
        out.append(f"Contrast ×{1 - c.contrast:g} to ×{1 + c.contrast:g}")
    if not out:
        return ["No augmentation"]
    if any(s.kind in _GEOMETRIC_KINDS for s in _layer_specs(c)):
        how = {
            "reflect": "mirrored image",
            "nearest": "edge pixels stretched",
            "wrap": "image wrapped around",
            "constant": f"grey level {c.fill_value:g}",
        }[c.fill_mode]
        out.append(f"Fill uncovered areas: {c.fill_mode} ({how})")
    return out


def sweep(base: AugmentConfig, field: str, values: Sequence[Any]) -> list[AugmentConfig]:
    """One config per value of `field`, everything else as in `base`."""
    names = [f.name for f in dataclasses.fields(AugmentConfig)]
    if field not in names:
        raise ValueError(f"unknown augmentation setting {field!r}; expected one of: {', '.join(names)}")
    return [dataclasses.replace(base, **{field: v}) for v in values]


# --------------------------------------------------------------------------- named configs

_NAME_RE = re.compile(r"^[A-Za-z0-9_.\- ]{1,64}$")


def _check_name(name: str) -> str:
    """Return `name` if usable as a saved-config name, else raise ValueError."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or name.strip() != name or name.startswith("."):
        raise ValueError(
            f"invalid config name {name!r}: use 1-64 letters, digits, '-', '_', '.' or spaces, "
            "not starting with '.' or with leading/trailing spaces"
        )
    return name


def _is_preset(name: str) -> bool:
    """Preset names are protected case-insensitively (file systems may ignore case)."""
    return name.lower() in {p.lower() for p in PRESETS}


def _config_path(name: str, workspace: str | os.PathLike | None) -> Path:
    """workspace/augment/<name>.json."""
    return subdir("augment", workspace) / f"{_check_name(name)}.json"


def save_config(name: str, config: AugmentConfig, workspace: str | os.PathLike | None = None) -> Path:
    """Save `config` as workspace/augment/<name>.json (atomic; overwrites a saved config, never a preset)."""
    _check_name(name)
    if _is_preset(name):
        raise ValueError(f"{name!r} is a built-in preset name; choose another name")
    return atomic_write_json(_config_path(name, workspace), {"name": name, "config": config.to_dict()})


def load_config(name: str, workspace: str | os.PathLike | None = None) -> AugmentConfig:
    """A preset or a saved config by name; KeyError if there is none."""
    if name in PRESETS:
        return PRESETS[name]
    path = _config_path(name, workspace)
    if not path.exists():
        raise KeyError(f"no augmentation config named {name!r}")
    data = read_json(path)
    return AugmentConfig.from_dict(data["config"] if isinstance(data, dict) and "config" in data else data)


def list_configs(workspace: str | os.PathLike | None = None) -> list[str]:
    """Preset names (in PRESETS order) then saved names, sorted."""
    saved = sorted(
        p.stem
        for p in subdir("augment", workspace).glob("*.json")
        if _NAME_RE.match(p.stem) and not p.stem.startswith(".") and not _is_preset(p.stem)
    )
    return [*PRESETS, *saved]


def delete_config(name: str, workspace: str | os.PathLike | None = None) -> bool:
    """Delete a saved config; False if it did not exist; ValueError for presets."""
    if _is_preset(name):
        raise ValueError(f"{name!r} is a built-in preset and cannot be deleted")
    path = _config_path(name, workspace)
    if not path.exists():
        return False
    path.unlink()
    return True
