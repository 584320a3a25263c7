"""From-scratch convnets: the seeds' nets, the small and compact nets and a ResNet-style net.

A scratch net takes float RGB images in [0, 255], (N, S, S, 3): [augmentation] -> Rescaling(1/255)
-> convs -> pooling head -> output. Its last feature map is named ``LAST_CONV`` (the Grad-CAM target).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import keras
from keras import layers

from core.models.outputs import output_layer

LAST_CONV = "last_conv"  # name of the last conv layer of every scratch net (Grad-CAM target)


@dataclass(frozen=True)
class ScratchSpec:
    """A from-scratch convnet: conv widths, layout, head, default input size and options."""

    description: str
    default_size: int
    convs: Callable[[dict[str, Any]], list[int]]  # options -> filters per conv layer
    padding: str = "same"  # "valid" (the seeds) or "same"
    pool_after_last: bool = False  # MaxPool2 after the last conv too
    head: str = (
        "gap"  # "flatten_dense" (Flatten, Dropout, Dense units), "gap"/"gmp" (GlobalAvg/MaxPool, Dropout)
    )
    options: dict[str, Any] = field(default_factory=dict)  # option name -> default
    batch_norm: bool = False  # conv (no bias) -> BatchNormalization -> ReLU instead of conv + ReLU
    residual: bool = False  # a strided stem, then one residual block per width (see _residual_net)


def _flatten_dense_net(description: str, widths: list[int]) -> ScratchSpec:
    """A Dogs-vs-Cats seed net at 150 px: conv+pool blocks of `widths` ("valid" padding), Flatten,
    Dropout 0.5, Dense 512."""
    return ScratchSpec(
        description,
        150,
        lambda o: list(widths),
        padding="valid",
        pool_after_last=True,
        head="flatten_dense",
        options={"dropout": 0.5, "units": 512},
    )


SCRATCH_NETS: dict[str, ScratchSpec] = {
    "seed000": _flatten_dense_net(
        "Classic Dogs-vs-Cats net: 4 conv+pool blocks (32-64-128-128), Flatten, "
        "Dropout, Dense 512. 3.45 M weights at 150 px.",
        [32, 64, 128, 128],
    ),
    "seed002": _flatten_dense_net(
        "5 conv+pool blocks (32-64-128-128-256), Flatten, Dropout, Dense 512. 1.06 M weights at 150 px.",
        [32, 64, 128, 128, 256],
    ),
    "seed003": ScratchSpec(
        description="Deep Learning with Python net: 5 convs (32-64-128-256-512), global average "
        "pooling, Dropout 0.25. 1.57 M weights, at 180 px.",
        default_size=180,
        convs=lambda o: [32, 64, 128, 256, 512],
        padding="valid",
        options={"dropout": 0.25},
    ),
    "small": ScratchSpec(
        description="Small quick net: a few conv blocks, each doubling the filters, global max "
        "pooling (it asks 'is this shape anywhere?'). Learns the demo shapes in about a minute.",
        default_size=64,
        convs=lambda o: [int(o["filters"]) * 2**i for i in range(int(o["depth"]))],
        head="gmp",
        options={"filters": 16, "depth": 3, "dropout": 0.3},
    ),
    "compact": ScratchSpec(
        description="Today's practice, small: 4 conv blocks (32-64-128-128), each with batch "
        "normalisation, global average pooling. 0.24 M weights; learns the demo shapes to about 97% "
        "at 32 px in 12 epochs (under a minute on a 2-core CPU with bfloat16).",
        default_size=32,
        convs=lambda o: [int(o["filters"]) * 2 ** min(i, 2) for i in range(int(o["depth"]))],
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
