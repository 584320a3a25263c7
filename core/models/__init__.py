"""Model building: scratch convnets, pretrained ImageNet bases, heads, transfer models, fine-tuning.

Every model takes float RGB images in [0, 255] of shape (N, S, S, 3) (the caller casts uint8), so the
same pipeline feeds scratch and transfer models; each model does its own scaling inside.

* Scratch nets (``scratch``: ``SCRATCH_NETS``, ``build_scratch``): [augmentation] -> Rescaling(1/255)
  -> net.
* Transfer models (``bases``: ``BASES``, ``build_base``; ``transfer``: ``build_transfer``):
  [augmentation] -> Preprocess(mode) (``preprocess``) -> base (one nested functional model named
  "base", called with training=False) -> head layers -> output.
* ``outputs``: the output layer and loss; ``summary``: parameter counts and layer rows;
  ``prediction``: class probabilities in batches.

Output: Dense(1, sigmoid) for 2 classes, Dense(n, softmax) for more; labels are int class indices.
Only portable Keras 3 (``keras``, ``keras.ops``): runs on the TensorFlow and JAX backends.
"""

import core.layers  # noqa: F401  registers the custom layers that saved models use
from core.models.bases import BASES, BaseSpec, WeightsError, base_spec, build_base, parse_base_name
from core.models.outputs import loss_for, output_layer
from core.models.prediction import probabilities
from core.models.preprocess import PREPROCESS_MODES, Preprocess
from core.models.scratch import LAST_CONV, SCRATCH_NETS, ScratchSpec, build_scratch
from core.models.summary import output_shape, param_counts, summary_rows
from core.models.transfer import base_of, build_head, build_transfer, last_conv_layer, unfreeze

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
    "output_shape",
    "param_counts",
    "parse_base_name",
    "probabilities",
    "summary_rows",
    "unfreeze",
]
