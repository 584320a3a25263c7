"""The Train form's choices with the words shown for them. Their keys are core's allowed values
(core.config.MODES and POOLINGS, names core.models builds): tests/test_train_form.py checks them."""

from __future__ import annotations

from core import report_text

MODES = report_text.MODES  # the modes in plain words live in core, for the run report too
# The pretrained networks offered, in this order (a curated few of core.models.BASES and variants).
BASE_CHOICES = [
    "vgg16",
    "xception",
    "resnet50",
    "efficientnetb0",
    "densenet121",
    "mobilenetv2",
    "mobilenetv2_0.35",
    "mobilenet",
    "mobilenet_0.5",
    "mobilenet_0.25",
]
WEIGHT_SOURCES = {
    "imagenet": "ImageNet (downloaded once; needs internet)",
    "file": "A local weights file",
    "none": "None: random start (for testing)",
}
# core.config.POOLINGS, labelled, in the order the form offers them
POOLINGS = {"avg": "global average pooling (any network)", "flatten": "flatten (the tutorials, VGG16)"}
