"""What does the network look at? Layer activations and class activation maps (CAMs).

Every explainer has the call shape ``(model, images, layer=None, class_index=None)``:

* ``model``: any model of this project (``core.models``): float RGB in [0, 255] of shape (N, S, S, 3)
  -> (N, 1) sigmoid or (N, C) softmax; built here, loaded from a ``.keras`` file, float32 or mixed
  precision.
* ``images``: (N, H, W, 3) or one (H, W, 3) image, uint8 or float in [0, 255]; resized to the
  model's input size when they differ.
* ``layer``: a layer *path* (``layer_paths``); None = the last convolutional feature map
  (``core.models.last_conv_layer``: "last_conv" in scratch nets, e.g. "base/block5_conv3" in a
  VGG16 transfer model).
* ``class_index``: None (the predicted class of each image), one int for all images, or one int per
  image.

They return heatmaps of shape (N, h, w), float32 in [0, 1], at the *resolution of the chosen layer*
(e.g. (N, 14, 14) for block5_conv3 at 224 px). All three methods return that same size, so maps are
comparable and cheap to store; ``upsample`` / ``overlay`` bring a map to the image size. Each map is
divided by its maximum; a map with no positive evidence stays all zero.

Modules: ``layer_paths`` (naming layers), ``graph`` (models replayed from the model's graph, cached),
``scores`` (logits and probabilities), ``cams`` (the three methods), ``channels`` (activations as
channel grids), ``heatmaps`` (maps as pictures). Only portable Keras 3 (``keras``, ``keras.ops``)
except ``cams._gradients``, the one function with TensorFlow and JAX branches.
"""

from core.explain.cams import METHODS, gradcam, gradcam_plus_plus, scorecam
from core.explain.channels import activations, channel_grid, channel_pages, normalize_channel
from core.explain.graph import activation_model
from core.explain.heatmaps import heat_image, overlay, upsample
from core.explain.layer_paths import conv_layers, default_layer, find_layer, layer_info
from core.explain.scores import class_scores, predict

__all__ = [
    "METHODS",
    "activation_model",
    "activations",
    "channel_grid",
    "channel_pages",
    "class_scores",
    "conv_layers",
    "default_layer",
    "find_layer",
    "gradcam",
    "gradcam_plus_plus",
    "heat_image",
    "layer_info",
    "normalize_channel",
    "overlay",
    "predict",
    "scorecam",
    "upsample",
]
