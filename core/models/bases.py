"""Pretrained convolutional bases from keras.applications: the table of bases, name parsing (width
variants such as "mobilenet_0.25") and building a base with ImageNet, random or local-file weights."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import keras


class WeightsError(ValueError):
    """Pretrained weights could not be downloaded or loaded; the message is meant for the user."""


@dataclass(frozen=True)
class BaseSpec:
    """A keras.applications convolutional base and how to use it."""

    constructor: Callable[..., keras.Model]  # keras.applications.<Model>
    label: str  # human name, e.g. "VGG16"
    preprocess: str  # Preprocess mode
    finetune_from: str  # default first layer to unfreeze (start of the last block)
    last_conv: str  # last convolutional feature map (Grad-CAM target)
    description: str  # one line for non-programmers
    weights_file: str  # Keras's no-top ImageNet file name; may hold {alpha_text}, {alpha}, {rows}
    kwargs: dict[str, Any] = field(default_factory=dict)  # extra constructor kwargs, e.g. {"alpha": 0.25}
    default_size: int = 224
    min_size: int = 32
    alphas: tuple[float, ...] = ()  # width multipliers with ImageNet weights (MobileNets)
    weights_rows: tuple[int, ...] = ()  # input sizes with their own weights file (MobileNets)

    @property
    def alpha(self) -> float | None:
        """Width multiplier, for the MobileNets."""
        return self.kwargs.get("alpha")

    @property
    def title(self) -> str:
        """Human name including the width multiplier, e.g. "MobileNet (alpha 0.25)"."""
        return self.label if self.alpha is None else f"{self.label} (alpha {self.alpha:g})"

    def keras_weights_file(self, input_size: int | None = None) -> str:
        """File name Keras downloads for weights="imagenet" (no top) at this input size."""
        size = input_size or self.default_size
        rows = size if size in self.weights_rows else 224
        alpha = float(self.alpha) if self.alpha is not None else 1.0
        alpha_text = {1.0: "1_0", 0.75: "7_5", 0.5: "5_0"}.get(alpha, "2_5")
        return self.weights_file.format(alpha=alpha, alpha_text=alpha_text, rows=rows)


def _keras_base(constructor, preprocess, finetune_from, last_conv, description, **details: Any) -> BaseSpec:
    """A BaseSpec labelled like its keras.applications constructor; by default with the one no-top
    ImageNet file the older applications use for every input size."""
    label = constructor.__name__
    details.setdefault("weights_file", f"{label.lower()}_weights_tf_dim_ordering_tf_kernels_notop.h5")
    return BaseSpec(constructor, label, preprocess, finetune_from, last_conv, description, **details)


def _mobilenet(constructor, finetune_from, last_conv, description, weights_file, alphas, rows) -> BaseSpec:
    """A MobileNet: "tf" preprocessing, width multipliers `alphas` (1.0 unless a "name_alpha" variant
    is asked for), an ImageNet file per width and input size in `rows`."""
    return _keras_base(
        constructor, "tf", finetune_from, last_conv, description, weights_file=weights_file,
        kwargs={"alpha": 1.0}, alphas=alphas, weights_rows=rows,
    )  # fmt: skip


_A = keras.applications
# One row per base: constructor, preprocessing, first layer to fine-tune, Grad-CAM target, description.
# fmt: off
BASES: dict[str, BaseSpec] = {
    "vgg16": _keras_base(_A.VGG16, "caffe", "block5_conv1", "block5_conv3",
        "Simple and classic (2014), big (15 M weights) and slow; the Dogs-vs-Cats tutorials' choice."),
    "xception": _keras_base(_A.Xception, "tf", "block14_sepconv1", "block14_sepconv2_act",
        "Accurate (21 M weights), slow on a CPU; used in Deep Learning with Python.",
        default_size=299, min_size=71),
    "resnet50": _keras_base(_A.ResNet50, "caffe", "conv5_block3_1_conv", "conv5_block3_out",
        "The standard deep residual network (24 M weights): accurate, medium speed."),
    "efficientnetb0": _keras_base(_A.EfficientNetB0, "none", "block7a_expand_conv", "top_activation",
        "Small (4 M weights) and accurate for its size; a good first choice.",
        weights_file="efficientnetb0_notop.h5"),
    "densenet121": _keras_base(_A.DenseNet121, "torch", "conv5_block16_0_bn", "relu",
        "Densely connected network (7 M weights): accurate, many layers, medium speed."),
    "mobilenetv2": _mobilenet(_A.MobileNetV2, "block_16_expand", "out_relu",
        "Made for phones: fast and light (2 M weights at full width); good on a CPU.",
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{alpha}_{rows}_no_top.h5",
        alphas=(0.35, 0.5, 0.75, 1.0, 1.3, 1.4), rows=(96, 128, 160, 192, 224)),
    "mobilenet": _mobilenet(_A.MobileNet, "conv_dw_13", "conv_pw_13_relu",
        "The first MobileNet: the fastest and smallest here (0.2-3 M weights by width).",
        "mobilenet_{alpha_text}_{rows}_tf_no_top.h5",
        alphas=(0.25, 0.5, 0.75, 1.0), rows=(128, 160, 192, 224)),
}
# fmt: on


def parse_base_name(name: str) -> tuple[str, float | None]:
    """("mobilenet_0.25") -> ("mobilenet", 0.25); ("vgg16") -> ("vgg16", None)."""
    m = re.fullmatch(r"(.+?)_(\d+(?:\.\d+)?)", name.strip().lower())
    if m and m.group(1) in BASES:
        return m.group(1), float(m.group(2))
    return name.strip().lower(), None


def base_spec(name: str) -> BaseSpec:
    """BaseSpec for a base name, with "name_alpha" variants ("mobilenetv2_0.35") resolved."""
    key, alpha = parse_base_name(name)
    if key not in BASES:
        raise ValueError(f"Unknown base {name!r}. Choose one of: {', '.join(BASES)}.")
    spec = BASES[key]
    if alpha is None:
        return spec
    if not spec.alphas:
        raise ValueError(f"{spec.label} has no width variants; use {key!r}.")
    if alpha not in spec.alphas:
        choices = ", ".join(f"{key}_{a:g}" for a in spec.alphas)
        raise ValueError(f"{spec.label} has no width {alpha:g}. Choose one of: {choices}.")
    return replace(spec, kwargs={**spec.kwargs, "alpha": alpha})


def _short(exc: BaseException) -> str:
    """First line of an exception message, trimmed, for user-facing messages."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return text if len(text) <= 200 else text[:197] + "..."


def _is_hdf5(path: Path) -> bool:
    """True if the file starts with the HDF5 signature (at 0 or a power-of-two user-block offset)."""
    signature = b"\x89HDF\r\n\x1a\n"
    with path.open("rb") as f:
        for offset in (0, 512, 1024, 2048):
            f.seek(offset)
            if f.read(8) == signature:
                return True
    return False


def build_base(name: str, input_size: int, weights: str | os.PathLike | None = "imagenet") -> keras.Model:
    """Convolutional base without top: (N, S, S, 3) preprocessed -> feature maps (N, h, w, C).

    weights: "imagenet" (downloaded by Keras, cached in ~/.keras/models), None / "none" (random),
    or the path of a local .h5 / .weights.h5 file. Failures raise WeightsError with a plain message.
    """
    spec = base_spec(name)
    if input_size < spec.min_size:
        raise ValueError(f"{spec.label} needs images of at least {spec.min_size} px, got {input_size}.")
    kwargs = {"include_top": False, "input_shape": (input_size, input_size, 3), **spec.kwargs}
    keras_file = spec.keras_weights_file(input_size)

    if weights is None or (isinstance(weights, str) and weights.strip().lower() in ("", "none")):
        return spec.constructor(weights=None, **kwargs)

    if isinstance(weights, str) and weights.strip().lower() == "imagenet":
        try:
            return spec.constructor(weights="imagenet", **kwargs)
        except ValueError as exc:  # e.g. a corrupted download (hash mismatch)
            raise WeightsError(
                f"Could not load the ImageNet weights for {spec.title}: {_short(exc)} "
                f"Choose 'local weights file' and give the path of {keras_file}, "
                "or train without pretrained weights."
            ) from exc
        except Exception as exc:  # Keras raises a bare Exception("URL fetch failure ...") offline
            raise WeightsError(
                f"Could not download the ImageNet weights for {spec.title} (no internet connection?). "
                f"Choose 'local weights file' and give the path of {keras_file}, "
                "or train without pretrained weights."
            ) from exc

    path = Path(weights).expanduser()
    if not path.is_file():
        raise WeightsError(f"The weights file {path} does not exist (expected a file like {keras_file}).")
    if not path.name.endswith((".h5", ".hdf5", ".keras")):
        raise WeightsError(
            f"{path.name} is not a Keras weights file: expected a .h5 or .weights.h5 file like {keras_file}."
        )
    if path.name.endswith((".h5", ".hdf5")) and not _is_hdf5(path):
        raise WeightsError(
            f"{path.name} is not a Keras weights file (not in HDF5 format; damaged or something else). "
            f"Expected a file like {keras_file}."
        )
    base = spec.constructor(weights=None, **kwargs)
    try:
        base.load_weights(str(path))
    except Exception as exc:  # h5py OSError for non-HDF5 files, ValueError for another architecture
        raise WeightsError(
            f"Could not load {path.name} into {spec.title}: the file does not hold weights for this "
            f"model (expected {keras_file}). Details: {_short(exc)}"
        ) from exc
    return base
