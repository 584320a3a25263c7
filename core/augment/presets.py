"""Named augmentation settings that ship with the app, each with a note saying where it comes from."""

from __future__ import annotations

from core.augment.settings import AugmentConfig

PRESETS: dict[str, AugmentConfig] = {
    "none": AugmentConfig(),
    "seed-000": AugmentConfig(
        rotation_deg=40,
        width_shift=0.2,
        height_shift=0.2,
        shear_deg=0.2,
        zoom=0.2,
        horizontal_flip=True,
        fill_mode="nearest",
    ),
    "seed-001": AugmentConfig(horizontal_flip=True, rotation_deg=36, zoom=0.2),
    "strong": AugmentConfig(
        horizontal_flip=True,
        rotation_deg=30,
        width_shift=0.15,
        height_shift=0.15,
        shear_deg=10,
        zoom=0.3,
        brightness=0.2,
        contrast=0.3,
        saturation=0.3,
        hue=0.05,
        fill_mode="reflect",
    ),
    "photos": AugmentConfig(
        horizontal_flip=True,
        rotation_deg=15,
        width_shift=0.1,
        height_shift=0.1,
        zoom=0.2,
        brightness=0.1,
        contrast=0.2,
        fill_mode="reflect",
    ),
}

PRESET_NOTES: dict[str, str] = {
    "none": "No augmentation: images go to the model unchanged.",
    "seed-000": (
        "The ImageDataGenerator settings of the classic Keras 'Dogs vs Cats' tutorial: rotation_range=40, "
        "width/height_shift_range=0.2, shear_range=0.2, zoom_range=0.2, horizontal_flip=True, "
        "fill_mode='nearest'. ImageDataGenerator reads shear_range in degrees, so 0.2 means a 0.2° shear "
        "(practically none); it is kept at 0.2° here to stay faithful. ImageDataGenerator zooms each axis "
        "independently; here both axes share one zoom factor."
    ),
    "seed-001": (
        "The Keras 3 tutorial stack: RandomFlip('horizontal'), RandomRotation(0.1) = ±36° "
        "(0.1 of a full turn), RandomZoom(0.2), with the layers' default 'reflect' fill; rotation and zoom "
        "are applied here as one affine transform, with the same ranges."
    ),
    "strong": (
        "Stronger geometric and colour changes that still look like real photos: left-right flips only "
        "(upside-down pets are not realistic), ±30° rotation, 15% shifts, 10° shear, ±30% zoom, "
        "brightness/contrast/saturation jitter and a small hue shift."
    ),
    "photos": (
        "What the ResNet recipe trains with on photos: left-right flips, ±15° rotation, 10% shifts, "
        "±20% zoom, a little brightness and contrast change, reflected edges. Milder than 'strong': a "
        "net learning from a few thousand photos needs variety, not pictures it can no longer read."
    ),
}
