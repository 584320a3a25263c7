"""Transfer models: a classifier head on a frozen pretrained base, and unfreezing the base's top for
fine-tuning.

A transfer model: [augmentation] -> Preprocess(mode) -> base (one nested functional model named
"base", called with training=False) -> head layers -> output.
"""

from __future__ import annotations

import os

import keras
from keras import layers

from core.models.bases import base_spec, build_base, parse_base_name
from core.models.outputs import output_layer
from core.models.preprocess import Preprocess
from core.models.summary import output_shape


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
        if not is_pool and not isinstance(layer, layers.InputLayer) and len(output_shape(layer)) == 4:
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
