"""Data augmentation: settings in human units, the Keras 3 layer stack they build, fast seeded previews.

* settings.py  AugmentConfig (each setting's unit, range and help text for the widgets), sweep()
* presets.py   the settings that ship with the app (seed-000, seed-001, strong, photos) and notes
* stack.py     one table (LAYERS) from which the layer stack, the exported code and the
               plain-language description are all made
* preview.py   every seeded variant of a batch in one pass per layer
* store.py     settings the user saved by name

Why the stack is built as it is:

* Rotation, shifts, shear and zoom form one ``core.layers.RandomAffine``: one matrix and one
  resampling per image, as ImageDataGenerator does. Four chained Keras layers would resample four
  times, blurring more and costing about a third of a bfloat16 training step. Zoom scales both
  axes alike (ImageDataGenerator draws each axis on its own), so the aspect ratio is kept.
* The default fill is "reflect", the Keras layers' own default (so "seed-001" fills as the Keras
  tutorial does); "seed-000" sets "nearest" to match ImageDataGenerator.
* Saturation goes first among the colour layers: Keras' RandomSaturation clips S to the value
  range (0-255) instead of 0-1, so oversaturated pixels can leave [0, 255]; the later colour
  layers clip back into range. preview() always clips.
* Both flips are separate layers: RandomFlip("horizontal_and_vertical") draws one coin for both
  axes (so it flips both or neither).
"""

from core.augment.presets import PRESET_NOTES, PRESETS
from core.augment.preview import preview
from core.augment.settings import FILL_MODES, AugmentConfig, field_specs, sweep
from core.augment.stack import build, describe, layer_seed, layer_specs, to_code
from core.augment.store import list_configs, load_config, save_config

__all__ = [
    "FILL_MODES",
    "PRESETS",
    "PRESET_NOTES",
    "AugmentConfig",
    "build",
    "describe",
    "field_specs",
    "layer_seed",
    "layer_specs",
    "list_configs",
    "load_config",
    "preview",
    "save_config",
    "sweep",
    "to_code",
]
