"""Custom Keras layers that saved models need; registered so .keras files load in safe mode."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="convnet")
class RandomShear(keras.layers.RandomShear):
    """keras.layers.RandomShear whose saved config loads back.

    Keras 3.15 saves a symmetric factor f as the pair (-f, f) and then refuses the negative value
    when loading; from_config turns such a pair back into f. Behaviour is otherwise unchanged.
    """

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("x_factor", "y_factor"):
            value = config.get(key)
            if isinstance(value, (list, tuple)) and len(value) == 2 and value[0] == -value[1]:
                config[key] = abs(float(value[1]))
        return super().from_config(config)


# Keras does not export its image-augmentation base class; keras is pinned in requirements.txt.
from keras.src.layers.preprocessing.image_preprocessing.base_image_preprocessing_layer import (  # noqa: E402
    BaseImagePreprocessingLayer,
)


@keras.saving.register_keras_serializable(package="convnet")
class RandomAffine(BaseImagePreprocessingLayer):
    """Rotation, shift, shear and zoom as one random affine transform per image: one resampling.

    Chaining RandomRotation, RandomTranslation, RandomShear and RandomZoom resamples (and blurs) the
    image four times; ImageDataGenerator, like this layer, composes one matrix. Per image, with u
    uniform in [-1, 1] for each part: angle u * rotation degrees, shift u * width_shift of the width
    and u * height_shift of the height, x shear by angle u * shear degrees, scale 1 + u * zoom on both
    axes (> 1 zooms out), all about the image centre. The five draws come from one (N, 5) uniform
    tensor whatever the settings, so for a given seed changing one setting leaves the other parts of
    each image's transform as they were (side-by-side previews stay comparable).
    """

    _USE_BASE_FACTOR = False
    _SUPPORTED_FILL_MODE = ("reflect", "wrap", "constant", "nearest")
    _SUPPORTED_INTERPOLATION = ("nearest", "bilinear")

    def __init__(
        self,
        rotation: float = 0.0,
        width_shift: float = 0.0,
        height_shift: float = 0.0,
        shear: float = 0.0,
        zoom: float = 0.0,
        fill_mode: str = "reflect",
        fill_value: float = 0.0,
        interpolation: str = "bilinear",
        seed: int | None = None,
        data_format: str | None = None,
        **kwargs,
    ):
        super().__init__(data_format=data_format, **kwargs)
        checks = {
            "rotation": (rotation, 180.0),
            "width_shift": (width_shift, 1.0),
            "height_shift": (height_shift, 1.0),
            "shear": (shear, 89.0),
            "zoom": (zoom, 0.99),
        }
        for name, (value, top) in checks.items():
            if not 0.0 <= float(value) <= top:
                raise ValueError(f"RandomAffine: {name} must be between 0 and {top:g}, got {value!r}")
        if fill_mode not in self._SUPPORTED_FILL_MODE:
            raise ValueError(
                f"RandomAffine: fill_mode must be one of {self._SUPPORTED_FILL_MODE}, got {fill_mode!r}"
            )
        if interpolation not in self._SUPPORTED_INTERPOLATION:
            raise ValueError(
                f"RandomAffine: interpolation must be one of {self._SUPPORTED_INTERPOLATION}, got {interpolation!r}"
            )
        self.rotation = float(rotation)
        self.width_shift = float(width_shift)
        self.height_shift = float(height_shift)
        self.shear = float(shear)
        self.zoom = float(zoom)
        self.fill_mode = fill_mode
        self.fill_value = float(fill_value)
        self.interpolation = interpolation
        self.seed = seed
        self.generator = keras.random.SeedGenerator(seed)
        self.supports_jit = False  # affine_transform has no XLA kernel on the TensorFlow backend

    def get_random_transformation(self, data, training=True, seed=None):
        """{"matrix": (N, 8) output -> input transforms, "unit": (N, 5) draws}; None when not training."""
        if not training:
            return None
        ops = self.backend
        images = data["images"] if isinstance(data, dict) else data
        shape = ops.core.shape(images)
        batched = len(shape) == 4
        if self.data_format == "channels_last":
            height, width = (shape[1], shape[2]) if batched else (shape[0], shape[1])
        else:
            height, width = (shape[2], shape[3]) if batched else (shape[1], shape[2])
        batch_size = shape[0] if batched else 1
        if seed is None:
            seed = self._get_seed_generator(ops._backend)
        unit = ops.random.uniform((batch_size, 5), minval=-1.0, maxval=1.0, seed=seed)
        matrix = self._compute_affine_matrix(
            center_x=0.5,
            center_y=0.5,
            angle=unit[:, 0] * self.rotation,
            translate_x=unit[:, 1] * self.width_shift * ops.cast(width, unit.dtype),
            translate_y=unit[:, 2] * self.height_shift * ops.cast(height, unit.dtype),
            scale=1.0 + unit[:, 4] * self.zoom,
            shear_x=unit[:, 3] * self.shear,
            shear_y=ops.numpy.zeros_like(unit[:, 3]),
            height=height,
            width=width,
        )
        if not batched:
            matrix = ops.numpy.squeeze(matrix, axis=0)
        return {"matrix": matrix, "unit": unit}

    def _transform_images(self, images, transformation, interpolation):
        return self.backend.image.affine_transform(
            images=images,
            transform=transformation["matrix"],
            interpolation=interpolation,
            fill_mode=self.fill_mode,
            fill_value=self.fill_value,
            data_format=self.data_format,
        )

    def transform_labels(self, labels, transformation, training=True):
        return labels

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "rotation": self.rotation,
            "width_shift": self.width_shift,
            "height_shift": self.height_shift,
            "shear": self.shear,
            "zoom": self.zoom,
            "fill_mode": self.fill_mode,
            "fill_value": self.fill_value,
            "interpolation": self.interpolation,
            "seed": self.seed,
        }


@keras.saving.register_keras_serializable(package="convnet")
class SparseSmoothedCrossentropy(keras.losses.Loss):
    """Categorical cross-entropy with label smoothing for int class labels.

    keras.losses.SparseCategoricalCrossentropy has no label_smoothing; this one-hot encodes the
    labels and calls keras.losses.categorical_crossentropy, which has it.
    """

    def __init__(self, label_smoothing: float = 0.0, name: str = "sparse_smoothed_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        y_true = keras.ops.reshape(keras.ops.cast(y_true, "int32"), (-1,))
        one_hot = keras.ops.one_hot(y_true, keras.ops.shape(y_pred)[-1], dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(one_hot, y_pred, label_smoothing=self.label_smoothing)

    def get_config(self) -> dict:
        return {**super().get_config(), "label_smoothing": self.label_smoothing}
