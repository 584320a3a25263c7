"""The Keras layer stack for an AugmentConfig, its copy-pasteable code and its plain-language description.

All three come from one table, LAYERS: which settings make which layer, with what arguments, and
what each setting does in words (a short comment for the code, a sentence for people).
"""

from __future__ import annotations

import importlib
import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.augment.settings import INTERPOLATION, VALUE_RANGE, AugmentConfig

if TYPE_CHECKING:  # keras is imported lazily: configs and presets load without starting TensorFlow
    import keras

Text = Callable[[AugmentConfig], str]


@dataclass(frozen=True)
class Setting:
    """What one setting does: a short comment for the exported code and a sentence for people."""

    field: str
    comment: Text
    says: Text


@dataclass(frozen=True)
class LayerKind:
    """A layer made from some settings: a stable kind (for seeding), its class and its arguments."""

    kind: str
    cls: str
    settings: tuple[Setting, ...]
    kwargs: Callable[[AugmentConfig], dict[str, Any]]
    module: str = "keras.layers"
    geometric: bool = False  # uncovers pixels: the fill settings apply


@dataclass(frozen=True)
class LayerSpec:
    """One layer to build for a config."""

    kind: str
    cls: str
    kwargs: dict[str, Any]
    comment: str
    module: str


def _pct(x: float) -> str:
    """0.2 -> '20%'."""
    return f"{x * 100:g}%"


def _saturation_factor(s: float) -> tuple[float, float]:
    """RandomSaturation factor range giving a multiplier in [1 - s, 1 + s] (f -> f / (1 - f))."""
    return ((1.0 - s) / (2.0 - s), (1.0 + s) / (2.0 + s))


def _affine(c: AugmentConfig) -> dict[str, Any]:
    return {
        "rotation": c.rotation_deg,
        "width_shift": c.width_shift,
        "height_shift": c.height_shift,
        "shear": c.shear_deg,
        "zoom": c.zoom,
        "fill_mode": c.fill_mode,
        "fill_value": float(c.fill_value),
        "interpolation": INTERPOLATION,
    }


# Layer order: flips, the affine transform, then saturation, hue, brightness, contrast (see
# core/augment/__init__.py for why saturation comes first).
LAYERS: tuple[LayerKind, ...] = (
    LayerKind(
        "flip_horizontal",
        "RandomFlip",
        (
            Setting(
                "horizontal_flip",
                lambda c: "flip left-right, p=1/2",
                lambda c: "Flip left-right (half of the time)",
            ),
        ),
        lambda c: {"mode": "horizontal"},
    ),
    LayerKind(
        "flip_vertical",
        "RandomFlip",
        (
            Setting(
                "vertical_flip",
                lambda c: "flip upside-down, p=1/2",
                lambda c: "Flip upside-down (half of the time)",
            ),
        ),
        lambda c: {"mode": "vertical"},
    ),
    LayerKind(
        "affine",
        "RandomAffine",
        (
            Setting(
                "rotation_deg",
                lambda c: f"rotate ±{c.rotation_deg:g}°",
                lambda c: f"Rotate up to ±{c.rotation_deg:g}°",
            ),
            Setting(
                "width_shift",
                lambda c: f"shift ±{c.width_shift:g} of the width",
                lambda c: f"Shift sideways up to ±{_pct(c.width_shift)} of the width",
            ),
            Setting(
                "height_shift",
                lambda c: f"±{c.height_shift:g} of the height",
                lambda c: f"Shift up/down up to ±{_pct(c.height_shift)} of the height",
            ),
            Setting(
                "shear_deg",
                lambda c: f"x shear ±{c.shear_deg:g}°",
                lambda c: f"Shear (slant sideways) up to ±{c.shear_deg:g}°",
            ),
            Setting(
                "zoom",
                lambda c: f"scale {1 - c.zoom:g}-{1 + c.zoom:g}",
                lambda c: f"Zoom in or out up to {_pct(c.zoom)}",
            ),
        ),
        _affine,
        module="core.layers",
        geometric=True,
    ),
    LayerKind(
        "saturation",
        "RandomSaturation",
        (
            Setting(
                "saturation",
                lambda c: f"saturation x{1 - c.saturation:g}..x{1 + c.saturation:g}: f/(1-f) for f in factor",
                lambda c: f"Saturation ×{1 - c.saturation:g} to ×{1 + c.saturation:g}",
            ),
        ),
        lambda c: {"factor": _saturation_factor(c.saturation), "value_range": VALUE_RANGE},
    ),
    LayerKind(
        "hue",
        "RandomHue",
        (
            Setting(
                "hue",
                lambda c: f"hue shift up to ±{c.hue:g} of the colour wheel (Keras shifts by factor/2)",
                lambda c: f"Shift hue up to ±{c.hue * 360:g}° on the colour wheel",
            ),
        ),
        lambda c: {"factor": 2.0 * c.hue, "value_range": VALUE_RANGE},
    ),
    LayerKind(
        "brightness",
        "RandomBrightness",
        (
            Setting(
                "brightness",
                lambda c: f"add up to ±{c.brightness:g} x 255",
                lambda c: f"Brightness ±{_pct(c.brightness)} of full range",
            ),
        ),
        lambda c: {"factor": c.brightness, "value_range": VALUE_RANGE},
    ),
    LayerKind(
        "contrast",
        "RandomContrast",
        (
            Setting(
                "contrast",
                lambda c: f"contrast x{1 - c.contrast:g}..x{1 + c.contrast:g}",
                lambda c: f"Contrast ×{1 - c.contrast:g} to ×{1 + c.contrast:g}",
            ),
        ),
        # A plain float would give [1, 1 + c] only (Keras' base factor handling), hence the pair.
        lambda c: {"factor": (c.contrast, c.contrast), "value_range": VALUE_RANGE},
    ),
)

_FILLS = {
    "reflect": "mirrored image",
    "nearest": "edge pixels stretched",
    "wrap": "image wrapped around",
    "constant": "grey level {value:g}",
}


def _active(config: AugmentConfig) -> list[tuple[LayerKind, list[Setting]]]:
    """The layers `config` turns on, each with the settings of it that are on, in LAYERS order."""
    out = []
    for layer in LAYERS:
        on = [s for s in layer.settings if getattr(config, s.field)]
        if on:
            out.append((layer, on))
    return out


def layer_specs(config: AugmentConfig) -> list[LayerSpec]:
    """The layers (in order) that build() and to_code() produce for `config`."""
    specs = []
    for layer, on in _active(config):
        comment = ", ".join(s.comment(config) for s in on) + (": one resampling" if layer.geometric else "")
        specs.append(LayerSpec(layer.kind, layer.cls, layer.kwargs(config), comment, layer.module))
    return specs


def layer_seed(seed: int, kind: str) -> int:
    """Deterministic per-layer seed (0..2**31-1) from a user seed and the layer kind, e.g. "affine"."""
    return zlib.crc32(f"{int(seed)}/{kind}".encode()) & 0x7FFFFFFF


def build(config: AugmentConfig, seed: int | None = None) -> keras.Sequential:
    """keras.Sequential named "augmentation": float (N, H, W, 3) in [0, 255] -> same shape; identity if off."""
    import keras

    specs = layer_specs(config)
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


def describe(config: AugmentConfig) -> list[str]:
    """Plain-language one-liners, e.g. ["Flip left-right (half of the time)", "Rotate up to ±40°"]."""
    active = _active(config)
    out = [s.says(config) for _, on in active for s in on]
    if not out:
        return ["No augmentation"]
    if any(layer.geometric for layer, _ in active):
        how = _FILLS[config.fill_mode].format(value=config.fill_value)
        out.append(f"Fill uncovered areas: {config.fill_mode} ({how})")
    return out


def _py(v: Any) -> str:
    """A Python literal for v (strings in double quotes, floats by repr so they round-trip)."""
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, tuple):
        return "(" + ", ".join(_py(x) for x in v) + ")"
    return repr(v)


def to_code(config: AugmentConfig, seed: int | None = None) -> str:
    """Copy-pasteable Python building the same keras.Sequential as build(config, seed)."""
    specs = layer_specs(config)
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
