"""core.train in this process: finalize, model building, fine-tuning, and small runs through
worker.worker_main (no subprocess) for the switches (precision, schedules, data parallelism)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core import augment, modelfile, models, rundir, runs, train, worker
from core.config import ConfigError, TrainConfig, default_settings
from tests.conftest import MOBILENET_025, make_demo_split, needs_mobilenet


def mobilenet_config(**kw) -> TrainConfig:
    values = dict(
        split="demo", mode="features", model="mobilenet_0.25", image_size=64, weights=str(MOBILENET_025)
    )
    return TrainConfig(**{**values, **kw})


@pytest.fixture
def float32_policy():
    """Runs in this process set the global dtype policy; put it back."""
    import keras

    yield
    keras.mixed_precision.set_dtype_policy("float32")


def run_in_process(config: TrainConfig, ws: Path) -> tuple[str, dict]:
    """A run through the worker's own code (queue, train, final state), without a subprocess."""
    run_id = runs.create_run(config.to_dict(), ws)
    worker.worker_main(rundir.run_dir(run_id, ws), resume=False)
    return run_id, runs.status(run_id, ws)


# ---------------------------------------------------------------------------- finalize


def test_finalize_records_the_augmentation_snapshot(workspace):
    make_demo_split(workspace)
    preset = train.finalize(TrainConfig(split="demo", model="small", augment_name="seed-001"), workspace)
    assert preset.augment == augment.PRESETS["seed-001"].to_dict()
    mine = augment.AugmentConfig(vertical_flip=True, zoom=0.3)
    augment.save_config("mine", mine, workspace)
    final = train.finalize(TrainConfig(split="demo", model="small", augment_name="mine"), workspace)
    augment.save_config("mine", augment.AugmentConfig(), workspace)  # a later edit does not change the run
    assert TrainConfig.from_dict(json.loads(json.dumps(final.to_dict()))).augment == mine.to_dict()
    with pytest.raises(ConfigError, match="^augment_name: "):
        train.finalize(TrainConfig(split="demo", model="small", augment_name="nope"), workspace)
    with pytest.raises(ConfigError, match="^split: "):
        train.finalize(TrainConfig(model="small"), workspace)
    with pytest.raises(ConfigError, match="^model: "):
        train.finalize(TrainConfig(split="demo", model="vgg16"), workspace)  # not a scratch net
    with pytest.raises(ConfigError, match="^model: "):
        train.finalize(TrainConfig(split="demo", mode="features", model="small"), workspace)
    with pytest.raises(ConfigError, match="^weights: "):
        train.finalize(mobilenet_config(weights=str(workspace / "missing.h5")), workspace)


@needs_mobilenet
def test_finalize_finetune_copies_the_source_and_refuses_scratch(workspace):
    make_demo_split(workspace)
    make_demo_split(workspace, name="other")
    source = train.finalize(
        mobilenet_config(resize_policy="crop", head_pooling="avg", head_units=32, head_dropout=0.2), workspace
    )
    source_id = runs.create_run(source.to_dict(), workspace)
    ft = train.finalize(
        TrainConfig(split="other", mode="finetune", from_run=source_id, augment_name="seed-001"), workspace
    )
    assert (ft.model, ft.image_size, ft.resize_policy, ft.split) == ("mobilenet_0.25", 64, "crop", "demo")
    assert (ft.head_pooling, ft.head_units, ft.head_dropout) == ("avg", 32, 0.2)
    assert ft.unfreeze_from == models.base_spec("mobilenet_0.25").finetune_from and ft.unfreeze_top is None
    assert ft.augment == augment.PRESETS["seed-001"].to_dict() and ft.weights == "none"
    top = train.finalize(TrainConfig(mode="finetune", from_run=source_id, unfreeze_top=3), workspace)
    assert (top.unfreeze_from, top.unfreeze_top) == (None, 3)
    with pytest.raises(ConfigError, match="^unfreeze_from: .*conv_dw_13"):
        train.finalize(
            TrainConfig(mode="finetune", from_run=source_id, unfreeze_from="block5_conv1"), workspace
        )
    scratch_id = runs.create_run(
        train.finalize(TrainConfig(split="demo", model="small"), workspace).to_dict(), workspace
    )
    with pytest.raises(ConfigError, match="^from_run: .*scratch"):
        train.finalize(TrainConfig(mode="finetune", from_run=scratch_id), workspace)
    with pytest.raises(ConfigError, match="^from_run: "):
        train.finalize(TrainConfig(mode="finetune", from_run="no-such-run"), workspace)


# ---------------------------------------------------------------------------- augmentation in the model


def _layer_configs(seq) -> list[tuple[str, dict]]:
    def strip(c: dict) -> dict:
        return {k: v for k, v in c.items() if k not in ("name", "seed")}

    return [(type(layer).__name__, strip(layer.get_config())) for layer in seq.layers]


@pytest.mark.parametrize("mode", ["scratch", "frozen"])
def test_training_model_holds_the_configured_augmentation(mode):
    aug = augment.AugmentConfig(
        horizontal_flip=True, rotation_deg=20, zoom=0.1, contrast=0.2, fill_mode="nearest"
    )
    model_name = "small" if mode == "scratch" else "mobilenet_0.25"
    config = TrainConfig(
        split="s", mode=mode, model=model_name, image_size=64, weights="none", augment=aug.to_dict()
    )
    model = train.build_model(config, num_classes=3)
    inside = model.get_layer("augmentation")
    expected = augment.build(aug, seed=config.seed)
    assert len(inside.layers) == len(expected.layers) == 3  # flip, affine (rotation + zoom), contrast
    assert _layer_configs(inside) == _layer_configs(expected)
    names = [layer.name for layer in model.layers]
    after = "rescaling" if mode == "scratch" else "preprocess"
    assert names.index("augmentation") < names.index(after)  # on raw 0-255 pixels, before scaling
    # The other direction: a changed config changes the layers (not only the names).
    other = augment.build(
        augment.AugmentConfig(horizontal_flip=True, rotation_deg=30, zoom=0.1, contrast=0.2)
    )
    assert _layer_configs(inside) != _layer_configs(other)


def test_no_augmentation_layer_for_identity_or_features():
    plain = train.build_model(TrainConfig(split="s", model="small", image_size=64, augment_name="none"), 2)
    assert "augmentation" not in [layer.name for layer in plain.layers]
    features = TrainConfig(
        split="s",
        mode="features",
        model="mobilenet_0.25",
        image_size=64,
        weights="none",
        augment_name="seed-001",
    )
    assert "augmentation" not in [layer.name for layer in train.build_model(features, 2).layers]


# ---------------------------------------------------------------------------- fine-tuning


@pytest.fixture
def features_run(workspace) -> str:
    """A features run's directory holding an untrained MobileNet transfer model as best.keras."""
    make_demo_split(workspace, per_class=4)
    config = train.finalize(mobilenet_config(), workspace)
    run_id = runs.create_run(config.to_dict(), workspace)
    modelfile.save_atomic(train.build_model(config, 4), rundir.run_dir(run_id, workspace) / "best.keras")
    return run_id


def _weighted(base) -> list:
    return [layer for layer in base.layers if layer.weights]


@needs_mobilenet
@pytest.mark.parametrize("how", [{"unfreeze_from": "conv_pw_12"}, {"unfreeze_top": 3}, {}])
def test_finetune_unfreezes_exactly_the_requested_layers_and_no_batchnorm(workspace, features_run, how):
    import keras

    config = train.finalize(TrainConfig(mode="finetune", from_run=features_run, **how), workspace)
    model = train.build_model(config, 4, workspace)
    base = models.base_of(model)
    names = [layer.name for layer in base.layers]
    if "unfreeze_top" in how:
        not_bn = [
            layer for layer in _weighted(base) if not isinstance(layer, keras.layers.BatchNormalization)
        ]
        expected = {layer.name for layer in not_bn[-3:]}
    else:
        start = names.index(config.unfreeze_from)
        expected = {
            layer.name
            for layer in base.layers[start:]
            if layer.weights and not isinstance(layer, keras.layers.BatchNormalization)
        }
    trainable = {layer.name for layer in _weighted(base) if layer.trainable}
    assert trainable == expected and expected
    assert not any(
        layer.trainable for layer in base.layers if isinstance(layer, keras.layers.BatchNormalization)
    )
    # What the optimizer will see: the unfrozen base layers' kernels plus the head, nothing else.
    base_weights = {id(w) for layer in base.layers if layer.name in expected for w in layer.trainable_weights}
    head_weights = {id(w) for w in train.head_of(model).trainable_weights}
    assert {id(w) for w in model.trainable_weights} == base_weights | head_weights
    assert "augmentation" not in [layer.name for layer in model.layers]  # finalize took augment_name "none"


@needs_mobilenet
def test_build_model_for_finetune_takes_base_and_size_from_the_source(workspace, features_run):
    """The Train page builds a summary before finalize: model/size fields still hold defaults."""
    model = train.build_model(
        TrainConfig(mode="finetune", from_run=features_run, unfreeze_top=1), 4, workspace
    )
    assert tuple(model.input.shape[1:]) == (64, 64, 3)
    assert tuple(model.output.shape[1:]) == (4,)


# ---------------------------------------------------------------------------- data parallelism


_MIRRORED_WORKER = """
import sys
from pathlib import Path

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]  # two logical CPUs stand in for two GPUs
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from core import train, worker

devices = [d.name for d in tf.config.list_logical_devices("CPU")]
from core.devices import distribution_scope

with distribution_scope(devices):
    assert tf.distribute.get_strategy().num_replicas_in_sync == 2
train.replica_devices = lambda n_gpus: devices
sys.exit(worker.worker_main(Path(sys.argv[1]), resume=False))
"""


@pytest.mark.slow
def test_a_run_trains_data_parallel_under_mirrored_strategy(workspace):
    """The multi-GPU path (MirroredStrategy) end to end, on two logical CPU devices."""
    import subprocess
    import sys

    from tests.conftest import REPO

    make_demo_split(workspace, per_class=8, size=32)
    config = TrainConfig(
        split="demo",
        model="small",
        image_size=32,
        augment_name="seed-000",
        precision="float32",
        epochs=2,
        batch_size=8,
        optimizer="adam",
        learning_rate=1e-3,
    )
    run_id = runs.create_run(train.finalize(config, workspace).to_dict(), workspace)
    path = rundir.run_dir(run_id, workspace)
    done = subprocess.run(
        [sys.executable, "-c", _MIRRORED_WORKER, str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    status = runs.status(run_id, workspace)
    assert done.returncode == 0 and status["state"] == "done", (
        status,
        done.stdout[-3000:],
        done.stderr[-3000:],
    )
    assert status["plan"]["replicas"] == 2
    epochs = [r for r in runs.metrics(run_id, workspace) if r["kind"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2] and all(np.isfinite(r["val_loss"]) for r in epochs)
    model = modelfile.load_model(path / "best.keras")
    assert model.predict(np.zeros((2, 32, 32, 3), np.uint8), verbose=0).shape == (2, 4)


# ---------------------------------------------------------------------------- switches in a run


def test_mixed_bfloat16_run_trains_on_cpu(workspace, float32_policy):
    make_demo_split(workspace, per_class=8, size=48)
    config = TrainConfig(
        split="demo",
        model="small",
        image_size=48,
        precision="mixed_bfloat16",
        augment_name="seed-001",
        epochs=1,
        batch_size=8,
        optimizer="adam",
        learning_rate=1e-3,
    )
    run_id, status = run_in_process(train.finalize(config, workspace), workspace)
    assert status["state"] == "done", status
    assert status["plan"]["precision"] == "mixed_bfloat16"
    [epoch] = [r for r in runs.metrics(run_id, workspace) if r["kind"] == "epoch"]
    assert np.isfinite(epoch["loss"]) and np.isfinite(epoch["val_loss"])
    model = modelfile.load_model(rundir.run_dir(run_id, workspace) / "best.keras")
    assert model.get_layer("last_conv").compute_dtype == "bfloat16"
    assert model.get_layer("output").compute_dtype == "float32"  # the softmax stays in float32


@pytest.mark.parametrize("schedule", ["cosine", "plateau"])
def test_lr_schedules_run_and_log_the_learning_rate(workspace, schedule, float32_policy):
    make_demo_split(workspace, per_class=8, size=48)
    config = TrainConfig(
        split="demo",
        model="small",
        image_size=48,
        lr_schedule=schedule,
        epochs=3,
        batch_size=8,
        learning_rate=0.01,
        optimizer="sgd",
        class_weights=True,
        log_every=1,
    )
    run_id, status = run_in_process(train.finalize(config, workspace), workspace)
    assert status["state"] == "done", status
    rows = runs.metrics(run_id, workspace)
    assert all(isinstance(r["lr"], float) for r in rows)
    lrs = [r["lr"] for r in rows if r["kind"] == "batch"]
    if schedule == "cosine":
        assert lrs[0] < 0.01 and lrs == sorted(lrs, reverse=True) and lrs[-1] < 0.001  # decays to ~0
    else:
        assert lrs[0] == pytest.approx(0.01) and min(lrs) >= 0.01 * 0.2**2 - 1e-9


def test_resnet_recipe_trains_in_a_run_and_logs_the_warmup(workspace, float32_policy):
    """The whole recipe (residual net, AdamW, warm-up, cosine, label smoothing, 'photos') runs end to
    end in a run process; the logged rate climbs through the warm-up and falls after it."""
    make_demo_split(workspace, per_class=8, size=48)
    settings = {
        **default_settings("scratch", "resnet"),
        "image_size": 32, "epochs": 3, "batch_size": 8, "warmup_epochs": 1,
    }  # fmt: skip
    config = TrainConfig(split="demo", **settings, log_every=1, scratch_options={"filters": 8})
    run_id, status = run_in_process(train.finalize(config, workspace), workspace)
    assert status["state"] == "done", status
    lrs = [r["lr"] for r in runs.metrics(run_id, workspace) if r["kind"] == "batch"]
    peak = lrs.index(max(lrs))
    assert 0 < peak < len(lrs) - 1 and lrs[:peak] == sorted(lrs[:peak])  # up, then down
    assert max(lrs) == pytest.approx(settings["learning_rate"], rel=0.2)
    model = modelfile.load_model(rundir.run_dir(run_id, workspace) / "best.keras")
    assert model.loss.get_config()["label_smoothing"] == 0.1
