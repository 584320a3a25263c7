"""core.config: the training config's checks and JSON round trip, the seeds' settings, the
recipes and default_settings, and that the config loads without Keras."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from core.config import MODES, QUICK_DEMO, ConfigError, TrainConfig, default_settings, tutorial_settings
from tests.conftest import REPO


def test_config_imports_neither_keras_nor_tensorflow():
    """The CLI's option lists and the pages read core.config without starting TensorFlow."""
    check = "import core.config, sys; assert 'keras' not in sys.modules and 'tensorflow' not in sys.modules"
    done = subprocess.run(
        [sys.executable, "-c", check], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]


def test_config_round_trips_through_json():
    config = TrainConfig(
        split="s",
        mode="frozen",
        model="mobilenet_0.25",
        image_size=96,
        augment={"horizontal_flip": True},
        scratch_options={"depth": 2},
        learning_rate=3e-4,
        momentum=0,  # an int in JSON is the same setting
        unfreeze_top=None,
        class_weights=True,
        name="Ünïcode",
    )
    text = json.dumps(config.to_dict())
    again = TrainConfig.from_dict(json.loads(text))
    assert again == config
    assert json.dumps(again.to_dict()) == text
    assert isinstance(again.momentum, float)


@pytest.mark.parametrize(
    "field, value",
    [
        ("mode", "transfer"),
        ("optimizer", "adagrad"),
        ("lr_schedule", "step"),
        ("precision", "float64"),
        ("jit_compile", "yes"),
        ("learning_rate", 0),
        ("learning_rate", 1.5),
        ("learning_rate", float("nan")),
        ("learning_rate", "1e-4"),
        ("batch_size", 0),
        ("batch_size", 8.5),
        ("epochs", 0),
        ("epochs", True),
        ("image_size", 8),
        ("head_dropout", 1.0),
        ("head_units", -1),
        ("head_pooling", "max"),
        ("resize_policy", "squash"),
        ("patience", -1),
        ("momentum", 1.0),
        ("log_every", 0),
        ("seed", -1),
        ("weights", ""),
        ("model", ""),
        ("augment", {"rotation_deg": 1000}),
        ("augment", {"spin": 1}),
        ("unfreeze_top", 0),
        ("class_weights", "yes"),
        ("split", None),
    ],
)
def test_invalid_values_raise_config_error_naming_the_field(field, value):
    with pytest.raises(ConfigError, match=rf"^{field}: "):
        TrainConfig(**{field: value})
    with pytest.raises(ConfigError, match=rf"^{field}: "):
        TrainConfig.from_dict({**TrainConfig().to_dict(), field: value})


def test_every_xla_choice_is_accepted_and_the_cli_offers_exactly_those():
    from core.cli import build_parser
    from core.config import JIT_CHOICES

    assert [TrainConfig(jit_compile=j).jit_compile for j in JIT_CHOICES] == list(JIT_CHOICES)
    for command in (["train", "--split", "s"], ["doctor"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args([*command, "--xla", "yes"])
        for choice in JIT_CHOICES:
            assert build_parser().parse_args([*command, "--xla", choice]).xla == choice


def test_finetune_needs_a_source_and_one_way_to_unfreeze():
    with pytest.raises(ConfigError, match="^from_run: "):
        TrainConfig(mode="finetune")
    with pytest.raises(ConfigError, match="^unfreeze_top: "):
        TrainConfig(mode="finetune", from_run="r", unfreeze_from="conv_pw_13", unfreeze_top=2)


def test_unknown_keys_are_rejected():
    with pytest.raises(ConfigError, match="unknown training setting.*colour"):
        TrainConfig.from_dict({"split": "s", "colour": "red"})
    with pytest.raises(ConfigError):
        TrainConfig.from_dict(["not", "a", "dict"])


def test_seed_defaults_match_the_seeds():
    scratch, features, frozen, finetune = (tutorial_settings(m) for m in MODES)
    assert (scratch["optimizer"], scratch["learning_rate"], scratch["model"]) == ("rmsprop", 1e-4, "seed000")
    assert scratch["augment_name"] == "seed-000" and scratch["image_size"] == 150
    for d in (features, frozen):
        assert (d["optimizer"], d["learning_rate"], d["model"], d["weights"]) == (
            "rmsprop",
            2e-5,
            "vgg16",
            "imagenet",
        )
    assert features["augment_name"] == "none" and frozen["augment_name"] == "seed-000"
    assert (finetune["optimizer"], finetune["learning_rate"]) == ("rmsprop", 1e-5)
    assert finetune["unfreeze_from"] == "block5_conv1"
    for mode in MODES:  # every mode's defaults make a valid config
        extra = {"from_run": "r"} if mode == "finetune" else {}
        TrainConfig.from_dict({"split": "s", "mode": mode, **tutorial_settings(mode), **extra})


def test_default_settings_fit_the_network_and_the_seed_recipe_is_exact():
    for mode in MODES:
        assert default_settings(mode, recipe="seed") == tutorial_settings(mode)
    features = default_settings("features", "mobilenet_0.5")
    assert features["image_size"] == 224 and features["head_pooling"] == "avg"
    assert features["optimizer"] == "adam" and features["learning_rate"] == 3e-4
    assert default_settings("frozen", "xception")["image_size"] == 299
    assert default_settings("scratch", "compact")["image_size"] == 32
    finetune = default_settings("finetune")
    assert finetune["learning_rate"] == 1e-5 and "unfreeze_from" not in finetune  # the base's own block
    with pytest.raises(ValueError, match="not a scratch net"):
        default_settings("scratch", "vgg16")
    with pytest.raises(ValueError, match="recipe"):
        default_settings("features", recipe="magic")
    TrainConfig.from_dict({"split": "s", "mode": "scratch", **QUICK_DEMO})  # the demo settings are valid


def test_resnet_recipe_is_a_named_choice_with_its_own_settings():
    resnet = default_settings("scratch", "resnet")
    assert resnet["model"] == "resnet" and resnet["image_size"] == 128
    assert resnet["optimizer"] == "adamw" and resnet["weight_decay"] > 0
    assert resnet["lr_schedule"] == "cosine" and resnet["warmup_epochs"] > 0
    assert resnet["label_smoothing"] == 0.1 and resnet["augment_name"] == "photos"
    TrainConfig.from_dict({"split": "s", "mode": "scratch", **resnet})  # valid as it stands
    seed = default_settings("scratch", "seed000")
    assert seed["optimizer"] == "rmsprop" and "warmup_epochs" not in seed  # other nets keep theirs
    assert default_settings("scratch", "resnet", recipe="seed")["optimizer"] == "rmsprop"
    assert default_settings("scratch") == resnet  # the default from scratch
    assert default_settings("scratch", recipe="seed")["model"] == "seed000"  # the tutorials' net


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"optimizer": "adam", "weight_decay": 0.05}, "weight_decay: applies to the adamw"),
        ({"optimizer": "adamw", "weight_decay": 1.5}, "weight_decay: must be in"),
        ({"lr_schedule": "plateau", "warmup_epochs": 2}, "warmup_epochs: works with"),
        ({"epochs": 3, "warmup_epochs": 3}, "warmup_epochs: must be 0 or fewer"),
        ({"label_smoothing": 0.5}, "label_smoothing: must be in"),
        ({"label_smoothing": "a bit"}, "label_smoothing: must be a number"),
    ],
)
def test_recipe_settings_that_cannot_run_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(split="s", **settings)
