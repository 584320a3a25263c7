"""The Train form's choices with the words shown for them. Their keys are core's allowed values
(core.config.MODES and POOLINGS, names core.models builds): tests/test_train_form.py checks them."""

from __future__ import annotations

MODES = {
    "scratch": (
        "From scratch",
        "A new network learns everything from your pictures. Needs many pictures "
        "and time; augmentation helps it not to memorise them.",
    ),
    "features": (
        "Pretrained features (fast)",
        "A network trained on ImageNet's 1.2 million photos looks at each "
        "picture once; only a small new classifier on top learns your classes. Fast and accurate.",
    ),
    "frozen": (
        "Pretrained + augmentation",
        "Like the fast way, but every epoch shows the pretrained network "
        "freshly varied pictures. Slower, a little more accurate.",
    ),
    "finetune": (
        "Fine-tune a previous run",
        "Start from a pretrained-features run and gently retrain the top "
        "layers of the pretrained network too, at a low learning rate.",
    ),
}
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
