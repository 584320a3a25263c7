"""The ImageNet input preprocessing layer that transfer models put in front of their base."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

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
