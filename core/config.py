"""The training config: TrainConfig (what a run's config.json holds and the CLI, the Train page
and core.train all use), the values it allows, and the settings runs start from (the seeds' per
mode, per-network recipes, QUICK_DEMO, default_settings).

No Keras here: the CLI's option lists and the pages read these without starting TensorFlow.
default_settings alone imports core.models (Keras), inside the function, for the networks' sizes.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from core.images import RESIZE_POLICIES

Mode = Literal["scratch", "features", "frozen", "finetune"]
MODES: tuple[str, ...] = ("scratch", "features", "frozen", "finetune")
OPTIMIZERS: tuple[str, ...] = ("rmsprop", "adam", "adamw", "sgd")
SCHEDULES: tuple[str, ...] = ("constant", "cosine", "plateau")
PRECISIONS: tuple[str, ...] = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
POOLINGS: tuple[str, ...] = ("flatten", "avg")
# XLA compilation: auto (on GPUs, and always on JAX), on, off
JIT_CHOICES: tuple[str, ...] = ("auto", "on", "off")

_TEXT_FIELDS = (
    "split", "mode", "model", "resize_policy", "augment_name", "weights", "head_pooling", "optimizer",
    "lr_schedule", "precision", "jit_compile", "name",
)  # fmt: skip
_OPTIONAL_TEXT_FIELDS = ("from_run", "unfreeze_from")
_INT_FIELDS = (
    "image_size", "head_units", "batch_size", "epochs", "warmup_epochs", "patience", "seed", "log_every",
)  # fmt: skip
_FLOAT_FIELDS = ("head_dropout", "learning_rate", "momentum", "weight_decay", "label_smoothing")


class ConfigError(ValueError):
    """A training config that cannot run; the message names the field."""


@dataclass
class TrainConfig:
    """Everything needed to repeat a run; round-trips through JSON (config.json of a run)."""

    split: str = ""
    mode: Mode = "scratch"
    model: str = "seed000"  # a scratch net (mode scratch) or a pretrained base name
    image_size: int = 150
    resize_policy: str = "stretch"
    augment_name: str = "none"
    augment: dict | None = None  # AugmentConfig.to_dict() snapshot; None = from augment_name
    weights: str = "imagenet"  # imagenet | none | path to a weights file (bases only)
    head_pooling: str = "flatten"
    head_units: int = 256
    head_dropout: float = 0.5
    scratch_options: dict = field(default_factory=dict)
    from_run: str | None = None  # finetune: the run whose best model to start from
    unfreeze_from: str | None = None  # finetune: first base layer to train (e.g. block5_conv1)
    unfreeze_top: int | None = None  # finetune: or the top N weight layers of the base
    optimizer: str = "rmsprop"
    learning_rate: float = 1e-4
    momentum: float = 0.9  # SGD only
    weight_decay: float = 0.0  # AdamW only (decoupled: each step shrinks weights by lr * weight_decay)
    lr_schedule: str = "constant"
    warmup_epochs: int = 0  # learning rate rises linearly from 0 over these epochs (constant or cosine)
    label_smoothing: float = 0.0  # targets 1 - s for the true class, s shared by the others
    batch_size: int = 32
    epochs: int = 10
    patience: int = 0  # early stopping on val_loss after this many epochs without gain; 0 = off
    class_weights: bool = False
    seed: int = 0
    precision: str = "auto"
    jit_compile: str = "auto"  # auto (GPU, or always on JAX) | on | off
    log_every: int = 5  # batches between batch-level metric rows
    name: str = ""

    def __post_init__(self) -> None:
        self.validate()
        for name in _FLOAT_FIELDS:  # 1 and 1.0 are the same setting: keep the JSON stable
            setattr(self, name, float(getattr(self, name)))

    def validate(self) -> None:
        """Raise ConfigError naming the first field that cannot run."""

        def bad(field_name: str, why: str) -> ConfigError:
            return ConfigError(f"{field_name}: {why}")

        for name in _TEXT_FIELDS:
            if not isinstance(getattr(self, name), str):
                raise bad(name, f"must be text, got {getattr(self, name)!r}")
        for name in _OPTIONAL_TEXT_FIELDS:
            if getattr(self, name) is not None and not isinstance(getattr(self, name), str):
                raise bad(name, f"must be text or empty, got {getattr(self, name)!r}")
        for name in _INT_FIELDS:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                raise bad(name, f"must be a whole number, got {v!r}")
        for name in _FLOAT_FIELDS:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise bad(name, f"must be a number, got {v!r}")
        if not isinstance(self.class_weights, bool):
            raise bad("class_weights", "must be true or false")
        if not isinstance(self.scratch_options, dict):
            raise bad("scratch_options", "must be a JSON object")
        if self.mode not in MODES:
            raise bad("mode", f"must be one of {', '.join(MODES)}, not {self.mode!r}")
        if not self.model:
            raise bad("model", "choose a network")
        if self.optimizer not in OPTIMIZERS:
            raise bad("optimizer", f"must be one of {', '.join(OPTIMIZERS)}")
        if self.lr_schedule not in SCHEDULES:
            raise bad("lr_schedule", f"must be one of {', '.join(SCHEDULES)}")
        if self.precision not in PRECISIONS:
            raise bad("precision", f"must be one of {', '.join(PRECISIONS)}")
        if self.jit_compile not in JIT_CHOICES:
            raise bad("jit_compile", "must be auto, on or off")
        if self.resize_policy not in RESIZE_POLICIES:
            raise bad("resize_policy", f"must be one of {', '.join(RESIZE_POLICIES)}")
        if self.head_pooling not in POOLINGS:
            raise bad("head_pooling", f"must be one of {', '.join(POOLINGS)}")
        if not self.weights:
            raise bad("weights", "must be imagenet, none or the path of a weights file")
        if not 0 < self.learning_rate < 1:
            raise bad("learning_rate", f"must be between 0 and 1, got {self.learning_rate}")
        if not 0 <= self.momentum < 1:
            raise bad("momentum", f"must be in [0, 1), got {self.momentum}")
        if not 0 <= self.weight_decay < 1:
            raise bad("weight_decay", f"must be in [0, 1), got {self.weight_decay}")
        if self.weight_decay and self.optimizer != "adamw":
            raise bad("weight_decay", "applies to the adamw optimizer only; choose adamw or set it to 0")
        if not 0 <= self.label_smoothing < 0.5:
            raise bad("label_smoothing", f"must be in [0, 0.5), got {self.label_smoothing}")
        if not 0 <= self.warmup_epochs < max(self.epochs, 1) or (self.warmup_epochs and self.epochs == 1):
            raise bad("warmup_epochs", f"must be 0 or fewer than the {self.epochs} epochs")
        if self.warmup_epochs and self.lr_schedule == "plateau":
            raise bad("warmup_epochs", "works with the constant or cosine schedule, not plateau")
        if not 1 <= self.batch_size <= 4096:
            raise bad("batch_size", f"must be between 1 and 4096, got {self.batch_size}")
        if not 1 <= self.epochs <= 10_000:
            raise bad("epochs", f"must be between 1 and 10000, got {self.epochs}")
        if not 16 <= self.image_size <= 1024:
            raise bad("image_size", f"must be between 16 and 1024 pixels, got {self.image_size}")
        if not 0 <= self.head_dropout < 1:
            raise bad("head_dropout", "must be in [0, 1)")
        if self.head_units < 0:
            raise bad("head_units", "must not be negative (0 leaves the hidden layer out)")
        if self.patience < 0:
            raise bad("patience", "must not be negative")
        if self.seed < 0:
            raise bad("seed", "must not be negative")
        if self.log_every < 1:
            raise bad("log_every", f"must be at least 1, got {self.log_every}")
        if self.augment is not None:
            from core.augment import AugmentConfig

            try:
                AugmentConfig.from_dict(self.augment)
            except ValueError as e:
                raise bad("augment", str(e)) from None
        if self.unfreeze_top is not None and (
            isinstance(self.unfreeze_top, bool)
            or not isinstance(self.unfreeze_top, int)
            or self.unfreeze_top < 1
        ):
            raise bad("unfreeze_top", f"must be a whole number of at least 1, got {self.unfreeze_top!r}")
        if self.unfreeze_top is not None and self.unfreeze_from:
            raise bad("unfreeze_top", "give unfreeze_from or unfreeze_top, not both")
        if self.mode == "finetune" and not self.from_run:
            raise bad("from_run", "fine-tuning starts from a feature-extraction run; choose one")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        if not isinstance(d, dict):
            raise ConfigError(f"a training config must be a JSON object, got {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown training setting(s): {', '.join(unknown)}")
        return cls(**d)


def tutorial_settings(mode: str) -> dict[str, Any]:
    """The tutorials' settings per mode (seed 000: RMSprop, 1e-4 scratch, 2e-5 heads, 1e-5 fine-tune)."""
    common = {"optimizer": "rmsprop", "batch_size": 20, "epochs": 30, "head_units": 256, "head_dropout": 0.5}
    return {
        "scratch": {
            **common,
            "model": "seed000",
            "image_size": 150,
            "learning_rate": 1e-4,
            "augment_name": "seed-000",
        },
        "features": {
            **common,
            "model": "vgg16",
            "image_size": 150,
            "learning_rate": 2e-5,
            "augment_name": "none",
            "weights": "imagenet",
        },
        "frozen": {
            **common,
            "model": "vgg16",
            "image_size": 150,
            "learning_rate": 2e-5,
            "augment_name": "seed-000",
            "weights": "imagenet",
        },
        "finetune": {
            **common,
            "learning_rate": 1e-5,
            "unfreeze_from": "block5_conv1",
            "epochs": 100,
            "augment_name": "seed-000",
        },
    }[mode]


RECIPES: dict[str, str] = {
    "default": "fitted to the chosen network: its own image size; pretrained bases get a global "
    "average pooling head trained with Adam at 3e-4",
    "seed": "the tutorials' settings, number for number (VGG16 at 150 px, RMSprop 2e-5 heads)",
}
HEAD_DEFAULTS: dict[str, Any] = {"head_pooling": "avg", "optimizer": "adam", "learning_rate": 3e-4}
FINETUNE_EPOCHS = 10


# "Quick demo settings": the compact net at 32 px learns the demo shapes to ~97% test accuracy in
# 12 epochs (23 s of training on a 2-core Zen 4; benchmarks/bench_quick_demo.py).
QUICK_DEMO: dict[str, Any] = {
    "mode": "scratch",
    "model": "compact",
    "image_size": 32,
    "optimizer": "adam",
    "learning_rate": 3e-3,
    "lr_schedule": "cosine",
    "epochs": 12,
    "batch_size": 64,
    "augment_name": "none",
}


# The ResNet recipe: what today's practice trains a small residual net from scratch with. AdamW
# with decoupled weight decay, a short linear warm-up (BatchNorm statistics are noise in the first
# steps) and a cosine decay to 0; label smoothing keeps the net from chasing the last few
# hard photos. 100 epochs of 2,000 photos at 128 px take ~25 min on a 2-core CPU with bf16
# (benchmarks/bench_scratch.py).
NET_RECIPES: dict[str, dict[str, Any]] = {
    "compact": {
        k: QUICK_DEMO[k] for k in ("optimizer", "learning_rate", "lr_schedule", "epochs", "batch_size")
    },
    "resnet": {
        "optimizer": "adamw",
        "learning_rate": 2e-3,
        "weight_decay": 0.05,
        "lr_schedule": "cosine",
        "warmup_epochs": 3,
        "label_smoothing": 0.1,
        "batch_size": 32,
        "epochs": 100,
        "augment_name": "photos",
    },
}


# From scratch, the default recipe trains today's net; seed 000's stays one click away (recipe "seed").
DEFAULT_SCRATCH_NET = "resnet"


def scratch_net(name: str):
    """The ScratchSpec of a scratch net; ConfigError naming the choices for any other name."""
    from core import models

    if name not in models.SCRATCH_NETS:
        raise ConfigError(
            f"model: '{name}' is not a scratch net; choose one of {', '.join(models.SCRATCH_NETS)}"
        )
    return models.SCRATCH_NETS[name]


def default_settings(mode: str, model: str | None = None, recipe: str = "default") -> dict[str, Any]:
    """The settings a run of `mode` on `model` starts from (the mode's usual network when None).

    recipe "seed": tutorial_settings(mode) as the tutorials ran it (a chosen model keeps their 150 px).
    recipe "default": from scratch, the ResNet and its recipe (NET_RECIPES) unless another net is
    chosen; the image size the network was made for (a base's ImageNet size, a scratch
    net's own), and for pretrained bases a head that suits features of any size: global average
    pooling (a Flatten head on a 7x7x1024 map has 12 M weights and overfits 2,000 photos) trained
    from scratch at Adam 3e-4 (1e-3 overfits within a few epochs; the seeds' 2e-5 suits VGG16's
    small 4x4 maps and 100 epochs). MobileNet 0.5 on the shared photos: 97.8% test on two splits.
    Fine-tuning keeps the seeds' low rate and unfreezes the base's own last block. Imports Keras
    (the networks' sizes live with the networks in core.models).
    """
    if mode not in MODES:
        raise ConfigError(f"mode: must be one of {', '.join(MODES)}, not {mode!r}")
    if recipe not in RECIPES:
        raise ConfigError(f"recipe: must be one of {', '.join(RECIPES)}, not {recipe!r}")
    settings = dict(tutorial_settings(mode))
    if model and mode != "finetune":
        settings["model"] = model
    if recipe == "seed":
        return settings
    from core import models

    if mode == "scratch" and not model:
        settings["model"] = DEFAULT_SCRATCH_NET

    if mode == "scratch":
        settings["image_size"] = scratch_net(settings["model"]).default_size
        settings.update(NET_RECIPES.get(settings["model"], {}))
    elif mode in ("features", "frozen"):
        settings.update(HEAD_DEFAULTS, image_size=models.base_spec(settings["model"]).default_size)
    else:
        settings.pop("unfreeze_from")  # finalize picks the source base's own last block
        settings["epochs"] = FINETUNE_EPOCHS
    return settings
