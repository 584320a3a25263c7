"""Model building: scratch convnets, pretrained ImageNet bases, heads, transfer models, fine-tuning.

Every model takes float RGB images in [0, 255] of shape (N, S, S, 3) (the caller casts uint8), so the
same pipeline feeds scratch and transfer models; each model does its own scaling inside.

* Scratch nets (``SCRATCH_NETS``, ``build_scratch``): [augmentation] -> Rescaling(1/255) -> net.
* Transfer models (``BASES``, ``build_transfer``): [augmentation] -> Preprocess(mode) -> base (one
  nested functional model named "base", called with training=False) -> head layers -> output.

Output: Dense(1, sigmoid) for 2 classes, Dense(n, softmax) for more; labels are int class indices.
Only portable Keras 3 (``keras``, ``keras.ops``): runs on the TensorFlow and JAX backends.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import keras
import numpy as np
from keras import layers, ops

import core.layers  # noqa: F401  registers the custom layers that saved models use

__all__ = [
    "BASES",
    "LAST_CONV",
    "PREPROCESS_MODES",
    "SCRATCH_NETS",
    "BaseSpec",
    "Preprocess",
    "ScratchSpec",
    "WeightsError",
    "base_of",
    "base_spec",
    "build_base",
    "build_head",
    "build_scratch",
    "build_transfer",
    "last_conv_layer",
    "loss_for",
    "output_layer",
    "param_counts",
    "parse_base_name",
    "summary_rows",
    "unfreeze",
]

LAST_CONV = "last_conv"  # name of the last conv layer of every scratch net (Grad-CAM target)


class WeightsError(ValueError):
    """Pretrained weights could not be downloaded or loaded; the message is meant for the user."""


# --------------------------------------------------------------------------------------------------
# Output layer and loss


def output_layer(num_classes: int) -> layers.Dense:
    """Dense(1, sigmoid) for 2 classes, Dense(n, softmax) for more: (N, F) -> (N, 1) or (N, n)."""
    if num_classes < 2:
        raise ValueError(f"Need at least 2 classes, got {num_classes}.")
    # float32 even under a mixed_float16 policy: sigmoid/softmax and the loss need the precision.
    if num_classes == 2:
        return layers.Dense(1, activation="sigmoid", name="output", dtype="float32")
    return layers.Dense(num_classes, activation="softmax", name="output", dtype="float32")


def loss_for(num_classes: int, label_smoothing: float = 0.0) -> str | keras.losses.Loss:
    """The loss for int class-index labels: binary cross-entropy for 2 classes, sparse categorical for
    more; with label smoothing, the loss objects that apply it."""
    if num_classes < 2:
        raise ValueError(f"Need at least 2 classes, got {num_classes}.")
    if label_smoothing:
        if num_classes == 2:
            return keras.losses.BinaryCrossentropy(label_smoothing=label_smoothing)
        return core.layers.SparseSmoothedCrossentropy(label_smoothing)
    return "binary_crossentropy" if num_classes == 2 else "sparse_categorical_crossentropy"


# --------------------------------------------------------------------------------------------------
# Scratch nets


@dataclass(frozen=True)
class ScratchSpec:
    """A from-scratch convnet: conv widths, layout, head, default input size and options."""

    description: str
    default_size: int
    convs: Callable[[dict[str, Any]], list[int]]  # options -> filters per conv layer
    padding: str  # "valid" (the seeds) or "same"
    pool_after_last: bool  # MaxPool2 after the last conv too
    head: str  # "flatten_dense" (Flatten, Dropout, Dense units), "gap"/"gmp" (GlobalAvg/MaxPool, Dropout)
    options: dict[str, Any] = field(default_factory=dict)  # option name -> default
    batch_norm: bool = False  # conv (no bias) -> BatchNormalization -> ReLU instead of conv + ReLU
    residual: bool = False  # a strided stem, then one residual block per width (see _residual_net)


SCRATCH_NETS: dict[str, ScratchSpec] = {
    "seed000": ScratchSpec(
        description="Classic Dogs-vs-Cats net: 4 conv+pool blocks (32-64-128-128), Flatten, "
        "Dropout, Dense 512. 3.45 M weights at 150 px.",
        default_size=150,
        convs=lambda o: [32, 64, 128, 128],
        padding="valid",
        pool_after_last=True,
        head="flatten_dense",
        options={"dropout": 0.5, "units": 512},
    ),
    "seed002": ScratchSpec(
        description="5 conv+pool blocks (32-64-128-128-256), Flatten, Dropout, Dense 512. "
        "1.06 M weights at 150 px.",
        default_size=150,
        convs=lambda o: [32, 64, 128, 128, 256],
        padding="valid",
        pool_after_last=True,
        head="flatten_dense",
        options={"dropout": 0.5, "units": 512},
    ),
    "seed003": ScratchSpec(
        description="Deep Learning with Python net: 5 convs (32-64-128-256-512), global average "
        "pooling, Dropout 0.25. 1.57 M weights, at 180 px.",
        default_size=180,
        convs=lambda o: [32, 64, 128, 256, 512],
        padding="valid",
        pool_after_last=False,
        head="gap",
        options={"dropout": 0.25},
    ),
    "small": ScratchSpec(
        description="Small quick net: a few conv blocks, each doubling the filters, global max "
        "pooling (it asks 'is this shape anywhere?'). Learns the demo shapes in about a minute.",
        default_size=64,
        convs=lambda o: [int(o["filters"]) * 2**i for i in range(int(o["depth"]))],
        padding="same",
        pool_after_last=False,
        head="gmp",
        options={"filters": 16, "depth": 3, "dropout": 0.3},
    ),
    "compact": ScratchSpec(
        description="Today's practice, small: 4 conv blocks (32-64-128-128), each with batch "
        "normalisation, global average pooling. 0.24 M weights; learns the demo shapes to about 97% "
        "at 32 px in 12 epochs (under a minute on a 2-core CPU with bfloat16).",
        default_size=32,
        convs=lambda o: [int(o["filters"]) * 2 ** min(i, 2) for i in range(int(o["depth"]))],
        padding="same",
        pool_after_last=False,
        head="gap",
        options={"filters": 32, "depth": 4, "dropout": 0.2},
        batch_norm=True,
    ),
    "resnet": ScratchSpec(
        description="Today's practice for photos: a ResNet-style net (a strided stem, then residual "
        "blocks of 32-64-128-256 filters with batch normalisation, global average pooling). 1.2 M "
        "weights at 128 px; with its recipe (AdamW, cosine schedule with warm-up, label smoothing, "
        "the 'photos' augmentation) it beats seed 000's net at equal training time: 89% on 2,000 cat "
        "and dog photos in about 20 minutes on a 2-core CPU with bfloat16. For the demo shapes, "
        "'Quick demo settings' is faster.",
        default_size=128,
        convs=lambda o: [int(o["filters"]) * 2**i for i in range(int(o["depth"]))],
        padding="same",
        pool_after_last=False,
        head="gap",
        options={"filters": 32, "depth": 4, "dropout": 0.2},
        batch_norm=True,
        residual=True,
    ),
}


def _scratch_options(name: str, options: dict[str, Any]) -> tuple[ScratchSpec, dict[str, Any]]:
    """Spec and options merged with defaults; ValueError on unknown names or options."""
    if name not in SCRATCH_NETS:
        raise ValueError(f"Unknown scratch net {name!r}. Choose one of: {', '.join(SCRATCH_NETS)}.")
    spec = SCRATCH_NETS[name]
    unknown = sorted(set(options) - set(spec.options))
    if unknown:
        valid = ", ".join(spec.options) or "none"
        raise ValueError(f"Unknown option(s) for {name!r}: {', '.join(unknown)}. Valid options: {valid}.")
    opts = {**spec.options, **options}
    if "depth" in opts and int(opts["depth"]) < 1:
        raise ValueError(f"depth must be at least 1, got {opts['depth']}.")
    if "filters" in opts and int(opts["filters"]) < 1:
        raise ValueError(f"filters must be at least 1, got {opts['filters']}.")
    if not 0 <= float(opts.get("dropout", 0)) < 1:
        raise ValueError(f"dropout must be in [0, 1), got {opts['dropout']}.")
    return spec, opts


def _final_size(spec: ScratchSpec, n_convs: int, size: int) -> int:
    """Spatial size after the conv/pool stack (< 1 means the input is too small)."""
    if spec.residual:  # stride 2 in the stem and in every block but the first
        return size // 2**n_convs
    for i in range(n_convs):
        if spec.padding == "valid":
            size -= 2
        if size < 1:
            return 0
        if i < n_convs - 1 or spec.pool_after_last:
            size //= 2
    return size


def build_scratch(
    name: str,
    input_size: int,
    num_classes: int,
    augmentation: keras.Layer | None = None,
    **options: Any,
) -> keras.Model:
    """Scratch convnet `name` (see SCRATCH_NETS): (N, S, S, 3) floats in [0, 255] -> (N, 1) or (N, C)."""
    spec, opts = _scratch_options(name, options)
    filters = spec.convs(opts)
    if _final_size(spec, len(filters), input_size) < 1:
        smallest = next(s for s in range(1, 4096) if _final_size(spec, len(filters), s) >= 1)
        raise ValueError(
            f"Input size {input_size} is too small for {name!r}: it needs at least {smallest} px."
        )

    inputs = keras.Input(shape=(input_size, input_size, 3), name="image")
    x = augmentation(inputs) if augmentation is not None else inputs
    x = layers.Rescaling(1.0 / 255, name="rescaling")(x)
    if spec.residual:
        x = _residual_net(x, filters)
    for i, f in enumerate([] if spec.residual else filters, start=1):
        last = i == len(filters)
        conv_name = LAST_CONV if last else f"conv{i}"
        if spec.batch_norm:
            x = layers.Conv2D(f, 3, padding=spec.padding, use_bias=False, name=conv_name)(x)
            # Momentum 0.9, not Keras' 0.99: short runs (a few hundred steps) otherwise validate
            # with moving statistics that have not caught up, and score near chance.
            x = layers.BatchNormalization(momentum=0.9, name=f"bn{i}")(x)
            x = layers.ReLU(name=f"relu{i}")(x)
        else:
            x = layers.Conv2D(f, 3, activation="relu", padding=spec.padding, name=conv_name)(x)
        if not last or spec.pool_after_last:
            x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
    if spec.head == "flatten_dense":
        x = layers.Flatten(name="flatten")(x)
        if opts["dropout"]:
            x = layers.Dropout(opts["dropout"], name="dropout")(x)
        x = layers.Dense(int(opts["units"]), activation="relu", name="dense")(x)
    else:
        # Max pooling keeps the strongest response anywhere: right for "is there a star?" on busy
        # backgrounds, where averaging drowns a small object (the demo net learns 3x faster).
        pool = (
            layers.GlobalMaxPooling2D(name="max_pool")
            if spec.head == "gmp"
            else layers.GlobalAveragePooling2D(name="avg_pool")
        )
        x = pool(x)
        if opts["dropout"]:
            x = layers.Dropout(opts["dropout"], name="dropout")(x)
    outputs = output_layer(num_classes)(x)
    return keras.Model(inputs, outputs, name=name)


def _conv_bn(x, filters: int, kernel: int, strides: int, name: str, relu: bool = True):
    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")(
        x
    )
    x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)  # 0.9: see build_scratch
    return layers.ReLU(name=f"{name}_relu")(x) if relu else x


def _residual_net(x, filters: list[int]):
    """ResNet's basic blocks, one per width: 3x3 conv-BN-ReLU, 3x3 conv-BN, plus the input (through a
    strided 1x1 conv-BN where the shape changes), then ReLU. The stem halves the side so the first
    block runs at a quarter of the pixels; each later block halves it again. The final ReLU is
    named "last_conv", the Grad-CAM target."""
    x = _conv_bn(x, filters[0], 3, 2, "stem")
    for i, f in enumerate(filters, start=1):
        strides = 1 if i == 1 else 2
        shortcut = x
        if strides != 1 or x.shape[-1] != f:
            shortcut = _conv_bn(x, f, 1, strides, f"block{i}_proj", relu=False)
        y = _conv_bn(x, f, 3, strides, f"block{i}_a")
        y = _conv_bn(y, f, 3, 1, f"block{i}_b", relu=False)
        x = layers.Add(name=f"block{i}_add")([shortcut, y])
        x = layers.ReLU(name=LAST_CONV if i == len(filters) else f"block{i}_out")(x)
    return x


# --------------------------------------------------------------------------------------------------
# Preprocessing layer

PREPROCESS_MODES: tuple[str, ...] = ("caffe", "tf", "torch", "none")
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)


@keras.saving.register_keras_serializable(package="convnet")
class Preprocess(keras.layers.Layer):
    """ImageNet input preprocessing of RGB floats in [0, 255], like keras.applications: (..., 3) -> (..., 3).

    Modes: "caffe" RGB->BGR minus the ImageNet BGR means (VGG16, ResNet50); "tf" x / 127.5 - 1
    (MobileNet, MobileNetV2, Xception); "torch" x / 255 then ImageNet mean/std (DenseNet); "none"
    identity (EfficientNet rescales inside the model).
    """

    def __init__(self, mode: str = "tf", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if mode not in PREPROCESS_MODES:
            raise ValueError(
                f"Unknown preprocessing mode {mode!r}. Choose one of: {', '.join(PREPROCESS_MODES)}."
            )
        self.mode = mode

    def call(self, inputs):
        """Preprocessed images, same shape, in the layer's compute dtype."""
        x = ops.cast(inputs, self.compute_dtype)
        if self.mode == "caffe":
            x = ops.flip(x, axis=-1)
            return x - ops.convert_to_tensor(np.array(_CAFFE_MEAN_BGR), dtype=x.dtype)
        if self.mode == "tf":
            return x / 127.5 - 1.0
        if self.mode == "torch":
            mean = ops.convert_to_tensor(np.array(_TORCH_MEAN), dtype=x.dtype)
            std = ops.convert_to_tensor(np.array(_TORCH_STD), dtype=x.dtype)
            return (x / 255.0 - mean) / std
        return x

    def compute_output_shape(self, input_shape):
        """Same shape as the input."""
        return input_shape

    def get_config(self) -> dict[str, Any]:
        """Layer config including the mode."""
        return {**super().get_config(), "mode": self.mode}


# --------------------------------------------------------------------------------------------------
# Pretrained bases


@dataclass(frozen=True)
class BaseSpec:
    """A keras.applications convolutional base and how to use it."""

    constructor: Callable[..., keras.Model]  # keras.applications.<Model>
    label: str  # human name, e.g. "VGG16"
    kwargs: dict[str, Any]  # extra constructor kwargs, e.g. {"alpha": 0.25}
    default_size: int
    min_size: int
    preprocess: str  # Preprocess mode
    finetune_from: str  # default first layer to unfreeze (start of the last block)
    last_conv: str  # last convolutional feature map (Grad-CAM target)
    description: str  # one line for non-programmers
    weights_file: str  # Keras's no-top ImageNet file name; may hold {alpha_text}, {alpha}, {rows}
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


_A = keras.applications
BASES: dict[str, BaseSpec] = {
    "vgg16": BaseSpec(
        constructor=_A.VGG16,
        label="VGG16",
        kwargs={},
        default_size=224,
        min_size=32,
        preprocess="caffe",
        finetune_from="block5_conv1",
        last_conv="block5_conv3",
        description="Simple and classic (2014), big (15 M weights) and slow; the Dogs-vs-Cats tutorials' choice.",
        weights_file="vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
    ),
    "xception": BaseSpec(
        constructor=_A.Xception,
        label="Xception",
        kwargs={},
        default_size=299,
        min_size=71,
        preprocess="tf",
        finetune_from="block14_sepconv1",
        last_conv="block14_sepconv2_act",
        description="Accurate (21 M weights), slow on a CPU; used in Deep Learning with Python.",
        weights_file="xception_weights_tf_dim_ordering_tf_kernels_notop.h5",
    ),
    "resnet50": BaseSpec(
        constructor=_A.ResNet50,
        label="ResNet50",
        kwargs={},
        default_size=224,
        min_size=32,
        preprocess="caffe",
        finetune_from="conv5_block3_1_conv",
        last_conv="conv5_block3_out",
        description="The standard deep residual network (24 M weights): accurate, medium speed.",
        weights_file="resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
    ),
    "efficientnetb0": BaseSpec(
        constructor=_A.EfficientNetB0,
        label="EfficientNetB0",
        kwargs={},
        default_size=224,
        min_size=32,
        preprocess="none",
        finetune_from="block7a_expand_conv",
        last_conv="top_activation",
        description="Small (4 M weights) and accurate for its size; a good first choice.",
        weights_file="efficientnetb0_notop.h5",
    ),
    "densenet121": BaseSpec(
        constructor=_A.DenseNet121,
        label="DenseNet121",
        kwargs={},
        default_size=224,
        min_size=32,
        preprocess="torch",
        finetune_from="conv5_block16_0_bn",
        last_conv="relu",
        description="Densely connected network (7 M weights): accurate, many layers, medium speed.",
        weights_file="densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5",
    ),
    "mobilenetv2": BaseSpec(
        constructor=_A.MobileNetV2,
        label="MobileNetV2",
        kwargs={"alpha": 1.0},
        default_size=224,
        min_size=32,
        preprocess="tf",
        finetune_from="block_16_expand",
        last_conv="out_relu",
        description="Made for phones: fast and light (2 M weights at full width); good on a CPU.",
        weights_file="mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{alpha}_{rows}_no_top.h5",
        alphas=(0.35, 0.5, 0.75, 1.0, 1.3, 1.4),
        weights_rows=(96, 128, 160, 192, 224),
    ),
    "mobilenet": BaseSpec(
        constructor=_A.MobileNet,
        label="MobileNet",
        kwargs={"alpha": 1.0},
        default_size=224,
        min_size=32,
        preprocess="tf",
        finetune_from="conv_dw_13",
        last_conv="conv_pw_13_relu",
        description="The first MobileNet: the fastest and smallest here (0.2-3 M weights by width).",
        weights_file="mobilenet_{alpha_text}_{rows}_tf_no_top.h5",
        alphas=(0.25, 0.5, 0.75, 1.0),
        weights_rows=(128, 160, 192, 224),
    ),
}


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


# --------------------------------------------------------------------------------------------------
# Heads and transfer models


def build_head(
    feature_shape: tuple[int, ...],
    num_classes: int,
    pooling: str = "flatten",
    units: int = 256,
    dropout: float = 0.5,
) -> keras.Model:
    """Classifier "head": features (N, *feature_shape) -> [Flatten|GAP] -> [Dense relu] -> [Dropout] -> output.

    units=0 leaves out the hidden Dense, dropout=0 the Dropout; 1-D features get no pooling.
    """
    if pooling not in ("flatten", "avg"):
        raise ValueError(f"pooling must be 'flatten' or 'avg', got {pooling!r}.")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}.")
    inputs = keras.Input(shape=tuple(feature_shape), name="features")
    x = inputs
    if len(feature_shape) > 1:
        if pooling == "avg":
            x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        else:
            x = layers.Flatten(name="flatten")(x)
    if units:
        x = layers.Dense(int(units), activation="relu", name="dense")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    outputs = output_layer(num_classes)(x)
    return keras.Model(inputs, outputs, name="head")


def build_transfer(
    base_name: str,
    input_size: int,
    num_classes: int,
    weights: str | os.PathLike | None = "imagenet",
    augmentation: keras.Layer | None = None,
    pooling: str = "flatten",
    units: int = 256,
    dropout: float = 0.5,
    base: keras.Model | None = None,
    head: keras.Model | None = None,
) -> keras.Model:
    """Frozen pretrained base + new head: (N, S, S, 3) floats in [0, 255] -> (N, 1) or (N, C).

    `base` reuses an already built base (e.g. the one that made cached features; it is renamed
    "base" and frozen); `head` reuses a head trained on cached features (its layers are shared), in
    which case pooling/units/dropout are ignored. Unfreeze with unfreeze() (not base.trainable = True,
    which would let BatchNormalization statistics drift) and recompile.
    """
    spec = base_spec(base_name)
    if base is None:
        base = build_base(base_name, input_size, weights)
    elif tuple(base.input.shape[1:]) != (input_size, input_size, 3):
        raise ValueError(
            f"The given base takes {tuple(base.input.shape[1:])} images, not ({input_size}, {input_size}, 3)."
        )
    base.name = "base"
    _set_trainable(base, False)
    if head is not None and int(head.output.shape[-1]) != (1 if num_classes == 2 else num_classes):
        raise ValueError(
            f"The given head has {head.output.shape[-1]} outputs, which does not fit {num_classes} classes."
        )
    if head is None:
        head = build_head(
            tuple(base.output.shape[1:]), num_classes, pooling=pooling, units=units, dropout=dropout
        )

    inputs = keras.Input(shape=(input_size, input_size, 3), name="image")
    x = augmentation(inputs) if augmentation is not None else inputs
    x = Preprocess(spec.preprocess, name="preprocess")(x)
    # Keras 3 lets the outer call's training flag (True in fit) override this recorded
    # training=False (keras-team/keras#20285). BatchNormalization stays in inference mode because
    # Keras 3 runs a non-trainable BN layer in inference mode: the base is frozen here and
    # unfreeze() keeps every BN layer frozen. training=False still covers calls with training=None.
    x = base(x, training=False)
    for layer in head.layers:
        if not isinstance(layer, layers.InputLayer):
            x = layer(x)
    return keras.Model(inputs, x, name=f"{parse_base_name(base_name)[0]}_transfer")


def base_of(model: keras.Model) -> keras.Model:
    """The nested pretrained base (layer "base") of a transfer model."""
    try:
        base = model.get_layer("base")
    except ValueError:
        raise ValueError(f"Model {model.name!r} has no pretrained base (not a transfer model).") from None
    if not isinstance(base, keras.Model):
        raise ValueError(f"Layer 'base' of {model.name!r} is not a model.")
    return base


def last_conv_layer(model: keras.Model) -> keras.Layer:
    """Last layer with a spatial (N, h, w, C) output, looking inside the base for transfer models.

    The Grad-CAM target: "last_conv" for scratch nets, e.g. block5_conv3 / out_relu in a base. Its
    .output belongs to the base's own graph, so build Grad-CAM models from base.input, not model.input.
    """
    try:
        source = base_of(model)
    except ValueError:
        source = model
    for layer in reversed(source.layers):
        is_pool = isinstance(layer, layers.MaxPooling2D | layers.AveragePooling2D)
        if not is_pool and not isinstance(layer, layers.InputLayer) and len(_output_shape(layer)) == 4:
            return layer
    raise ValueError(f"Model {model.name!r} has no convolutional layer.")


def _set_trainable(layer: keras.Layer, value: bool) -> None:
    """Set `trainable` on a layer and all its sublayers, whatever their current state."""
    # On the TensorFlow backend `layer.trainable = v` is skipped when layer.trainable is already v
    # (KerasAutoTrackable short-circuits `self.x = self.x`), so sublayers frozen one by one would
    # stay frozen. Flipping first makes the second assignment always propagate.
    layer.trainable = not value
    layer.trainable = value


def _has_weights(layer: keras.Layer) -> bool:
    """True if the layer owns weights (trainable when unfrozen)."""
    return bool(layer.weights)


def unfreeze(model: keras.Model, from_layer: str | None = None, top_n: int | None = None) -> list[str]:
    """Make the top of the base trainable for fine-tuning; returns the base layers now trainable.

    from_layer: first base layer to train (e.g. BASES[name].finetune_from); top_n: train the last n
    base layers that have weights (BatchNormalization not counted); neither: the whole base.
    BatchNormalization layers always stay frozen. Recompile the model afterwards.
    """
    if from_layer is not None and top_n is not None:
        raise ValueError("Give from_layer or top_n, not both.")
    base = base_of(model)
    base_layers = base.layers
    weighted = [i for i, layer in enumerate(base_layers) if _has_weights(layer)]
    if from_layer is not None:
        names = [layer.name for layer in base_layers]
        if from_layer not in names:
            examples = ", ".join(base_layers[i].name for i in weighted[-8:])
            raise ValueError(
                f"No layer named {from_layer!r} in the base ({len(names)} layers). "
                f"Valid names near the top include: {examples}."
            )
        start = names.index(from_layer)
    elif top_n is not None:
        if top_n < 1:
            raise ValueError(f"top_n must be at least 1, got {top_n}.")
        trainable_kinds = [i for i in weighted if not isinstance(base_layers[i], layers.BatchNormalization)]
        start = trainable_kinds[-top_n] if top_n <= len(trainable_kinds) else 0
    else:
        start = 0

    _set_trainable(base, True)  # every base layer trainable; the loop below refreezes
    for i, layer in enumerate(base_layers):
        # Frozen BatchNormalization runs in inference mode: fine-tuning with small batches would
        # otherwise wreck the ImageNet statistics.
        if i < start or isinstance(layer, layers.BatchNormalization):
            layer.trainable = False
    return [layer.name for layer in base_layers if layer.trainable and layer.trainable_weights]


# --------------------------------------------------------------------------------------------------
# Summaries


def _n_params(weights: list) -> int:
    """Total number of scalars in a list of variables."""
    return int(sum(math.prod(int(d) for d in w.shape) for w in weights))


def param_counts(model: keras.Model) -> tuple[int, int]:
    """(trainable, non-trainable) parameter counts, as in model.summary()."""
    return _n_params(model.trainable_weights), _n_params(model.non_trainable_weights)


def _output_shape(layer: keras.Layer) -> tuple:
    """Output shape of a layer inside a functional model (batch dim None), () if unknown."""
    try:
        out = layer.output
    except (AttributeError, ValueError):  # e.g. a layer shared by several models
        try:
            out = layer._inbound_nodes[-1].outputs[0]
        except (AttributeError, IndexError):
            return ()
    return tuple(out.shape) if hasattr(out, "shape") else ()


def summary_rows(model: keras.Model, nested: bool = False) -> list[dict[str, Any]]:
    """One row per layer: name, type, output_shape, params, trainable_params, depth (1 inside nested models)."""
    rows: list[dict[str, Any]] = []

    def add(layer: keras.Layer, depth: int, prefix: str) -> None:
        rows.append(
            {
                "name": prefix + layer.name,
                "type": type(layer).__name__,
                "output_shape": str(_output_shape(layer)),
                "params": _n_params(layer.weights),
                "trainable_params": _n_params(layer.trainable_weights),
                "depth": depth,
            }
        )
        if nested and isinstance(layer, keras.Model):
            for inner in layer.layers:
                if not isinstance(inner, layers.InputLayer):
                    add(inner, depth + 1, f"{prefix}{layer.name}/")

    for layer in model.layers:
        add(layer, 0, "")
    return rows
