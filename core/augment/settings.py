"""AugmentConfig: augmentation settings in human units, with the metadata the Augment page's widgets use."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

FILL_MODES: tuple[str, ...] = ("reflect", "nearest", "wrap", "constant")
VALUE_RANGE: tuple[int, int] = (0, 255)
INTERPOLATION = "bilinear"
MAX_SHEAR_DEG = 45.0  # beyond 45 degrees a shear squashes the image more than it slants it
MAX_ZOOM = 0.95  # the scale 1 - zoom must stay > 0


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
        """True when no layer would be applied (the fill settings alone change nothing)."""
        return not any(
            getattr(self, f.name) for f in dataclasses.fields(self) if f.metadata["group"] != "fill"
        )

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


def sweep(base: AugmentConfig, field: str, values: Sequence[Any]) -> list[AugmentConfig]:
    """One config per value of `field`, everything else as in `base`."""
    names = [f.name for f in dataclasses.fields(AugmentConfig)]
    if field not in names:
        raise ValueError(f"unknown augmentation setting {field!r}; expected one of: {', '.join(names)}")
    return [dataclasses.replace(base, **{field: v}) for v in values]
