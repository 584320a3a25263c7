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
